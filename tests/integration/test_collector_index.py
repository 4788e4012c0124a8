"""A person who opens the collector's address in a browser gets an index, not a bare 404."""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.errors import ConfigError
from collector.config import CollectorConfig, HttpConfig
from collector.http import index_page
from tests.support import CollectorProcess

pytestmark = pytest.mark.integration

DOCS_URL = "https://wiki.bank.example/branchwatch/docs/"
_ids = itertools.count()


class PageRefs(HTMLParser):
    """Every href, and every attribute that would make a browser load something."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.loads: list[tuple[str, str, str | None]] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if tag == "a" and name == "href" and value:
                self.hrefs.append(value)
            elif name in ("src", "srcset") or (tag == "link" and name == "href"):
                self.loads.append((tag, name, value))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def fetch(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.fixture
def collector(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[CollectorProcess]:
    config = tmp_path / "collector.toml"
    config.write_text(f'[http]\ndocs_url = "{DOCS_URL}"\n')
    proc = CollectorProcess(
        mosquitto.url, tmp_path, f"test-index-{next(_ids)}", extra=["--config", str(config)]
    ).start()
    yield proc
    proc.kill()


def test_index_links_every_endpoint_and_the_docs(collector: CollectorProcess) -> None:
    status, headers, body = fetch(collector.url + "/")
    assert status == 200
    assert headers.get_content_type() == "text/html"
    page = PageRefs()
    page.feed(body.decode())
    assert page.title == "branchwatch collector"
    assert "subscribed to the broker; branches known: 0" in body.decode()
    assert page.loads == []  # offline-safe: no script, style sheet, image or font to fetch
    assert DOCS_URL in page.hrefs
    local = [href for href in page.hrefs if href != DOCS_URL]
    assert {urljoin(collector.url + "/", href) for href in local} == {
        collector.url + path for path in ("/metrics", "/healthz", "/readyz", "/api/v1/branches")
    }
    for href in local:  # every link of the page works
        assert fetch(urljoin(collector.url + "/", href))[0] == 200, href


def test_head_of_index_and_unknown_paths(collector: CollectorProcess) -> None:
    status, headers, body = fetch(collector.url + "/", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0
    status, headers, body = fetch(collector.url + "/nope")
    assert status == 404
    assert headers.get_content_type() == "text/plain"
    assert body == b"not found: /nope (the endpoints are listed at /)\n"


def test_index_without_docs_url_links_nothing_outside() -> None:
    page = PageRefs()
    page.feed(index_page(ready=False, branches=3, docs_url="").decode())
    assert not [href for href in page.hrefs if "//" in href]
    assert len(page.hrefs) == 4
    escaped = index_page(True, 0, 'https://x.example/"><script>').decode()
    assert "<script>" not in escaped


def test_docs_url_must_be_a_web_address() -> None:
    with pytest.raises(ConfigError, match=r"http\.docs_url"):
        CollectorConfig(http=HttpConfig(docs_url="docs/architecture.md")).validate()

"""Doctor checks that need no broker: clock, spool directory, the table, devices."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from pathlib import Path

import pytest

from agent.devices.base import UNSTAMPED, DeviceConfig, DeviceContext
from agent.devices.registry import DEVICE_KINDS
from agent.doctor import Check, check_clock, check_devices, check_spool_dir, report
from agent.errors import DeviceConfigError
from branchwatch.contract import Notify
from branchwatch.contract.events import TicketWalkout


@pytest.mark.parametrize(
    ("now", "ok"),
    [(1_764_053_400.0, True), (0.0, False), (1_600_000_000.0, False), (4_102_444_800.0, False)],
)
def test_clock(now: float, ok: bool) -> None:
    assert check_clock(now).ok is ok


def test_spool_dir_writable(tmp_path: Path) -> None:
    check = check_spool_dir(tmp_path / "spool.db")
    assert check.ok and "writable" in check.detail
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_spool_dir_missing_is_not_created(tmp_path: Path) -> None:
    check = check_spool_dir(tmp_path / "state" / "spool.db")
    assert check.ok and "does not exist yet" in check.detail
    assert not (tmp_path / "state").exists()


def test_spool_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    assert not check_spool_dir(tmp_path / "file" / "spool.db").ok


def test_spool_dir_not_writable(tmp_path: Path) -> None:
    # /proc exists and takes no new files, not even from root (CI runs as root).
    check = check_spool_dir(Path("/proc/spool.db"))
    assert not check.ok and "not writable" in check.detail
    if os.geteuid() != 0:  # a plain read-only directory stops only an unprivileged user
        tmp_path.chmod(0o555)
        try:
            assert not check_spool_dir(tmp_path / "spool.db").ok
        finally:
            tmp_path.chmod(0o755)


def test_report_exit_code_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert report([Check("config", True, "fine"), Check("clock", True, "fine")]) == 0
    assert "ready to run" in capsys.readouterr().out
    assert report([Check("config", True, "fine"), Check("broker", False, "refused")]) == 1
    out = capsys.readouterr().out
    assert "broker  FAIL    refused" in out and "1 failed: broker" in out


def test_a_check_that_cannot_be_verified_warns_and_does_not_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    checks = [Check("config", True, "fine"), Check("read", None, "not verifiable: why")]
    assert report(checks) == 0
    out = capsys.readouterr().out
    assert "read    WARN    not verifiable: why" in out
    assert "1 passed, 1 not verifiable, 0 failed - this agent is ready to run" in out


# -- devices ---------------------------------------------------------------------------------


class Chatty:
    """Reports two events, then its link drops: it worked during the probe."""

    kind = "fake"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        self.context = context

    async def run(self) -> None:
        self.context.set_link(True)
        for ticket in ("A1", "A2"):
            event = TicketWalkout(**UNSTAMPED, ts=self.context.now(), ticket=ticket)
            self.context.emit(event)
        self.context.set_link(False)
        await asyncio.Event().wait()

    async def notify(self, command: Notify) -> bool:
        return False


def probe(*devices: DeviceConfig, seconds: float = 0.3) -> list[Check]:
    return asyncio.run(check_devices(devices, seconds, {**DEVICE_KINDS, "chatty": Chatty}))


def test_a_listening_http_device_passes(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    config = DeviceConfig(id="qms-1", protocol="http", url="127.0.0.1:0",
                          options={"token_file": str(token)})  # fmt: skip
    (check,) = probe(config)
    assert check.ok, check.detail
    assert re.search(r"listening on 127\.0\.0\.1:\d+, 0 events parsed", check.detail)


def test_an_http_device_that_cannot_listen_fails(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        url = f"127.0.0.1:{taken.getsockname()[1]}"
        config = DeviceConfig(id="qms-1", protocol="http", url=url,
                              options={"token_file": str(token)})  # fmt: skip
        (check,) = probe(config)
    assert not check.ok and "cannot listen" in check.detail


def test_parsed_events_are_a_pass_whatever_the_link_says_at_the_end() -> None:
    (check,) = probe(DeviceConfig(id="q1", protocol="chatty"))
    assert check.ok, check.detail
    assert "link down, 2 events parsed, 0 bad frames" in check.detail


def test_a_serial_device_that_is_not_there_fails(tmp_path: Path) -> None:
    config = DeviceConfig(id="q1", protocol="queue-line", url=str(tmp_path / "ttyNONE"))
    (check,) = probe(config)
    assert not check.ok and "link down, 0 events parsed" in check.detail


def test_an_unknown_kind_is_a_config_error_naming_the_known_ones() -> None:
    with pytest.raises(DeviceConfigError, match=r"q1: unknown device protocol 'telex'.*chatty"):
        probe(DeviceConfig(id="q1", protocol="telex"))

"""Doctor checks that need no broker or device: clock, spool directory, the table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.doctor import Check, check_clock, check_spool_dir, report


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

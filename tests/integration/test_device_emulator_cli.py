"""``python -m agent.emulators``: prints the endpoint, plays a script, prints notices."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agent.devices.base import DeviceConfig
from agent.devices.registry import build_device
from agent.devices.testing import RecordingContext
from branchwatch.contract import Notify

ROOT = Path(__file__).resolve().parents[2]


def test_cli_pty_emulator_feeds_an_intercom_device(tmp_path: Path) -> None:
    script = tmp_path / "floor.txt"
    script.write_text("# a morning\nIN 1 s.li\nhex 00ff0a\nCALL 1 7 vip\n")

    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.emulators", "intercom-line", "--pty",
            "--link", str(tmp_path / "ttyI"), "--script", str(script), "--delay", "0.5",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        context = RecordingContext("intercom-1")
        task: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(10):
                endpoint = (await proc.stdout.readline()).decode().strip()
                assert endpoint == str(tmp_path / "ttyI")
                config = DeviceConfig(id="intercom-1", protocol="intercom-line", url=endpoint)
                device = build_device(config, context)
                task = asyncio.create_task(device.run())
                await context.wait_for(lambda: len(context.events) == 2)
                assert await device.notify(Notify(v=1, id="n-7", position=7, text="VIP at door"))
                assert await proc.stdout.readline() == b"NOTE n-7 7 VIP at door\n"
        finally:
            if task is not None:
                task.cancel()
            proc.terminate()
            await proc.wait()
        assert context.types() == ["position.staffed", "intercom.call"]
        assert context.bad_reasons() == ["not_ascii"]

    asyncio.run(main())


def test_cli_tcp_emulator_plays_the_script_to_every_client(tmp_path: Path) -> None:
    """The doctor connects first and sees the script; the agent then gets it whole again."""
    script = tmp_path / "queue.txt"
    script.write_text("OPEN\nsleep 0.05\nISSUE A001 cash\n")
    played = b"OPEN\r\nISSUE A001 cash\r\n"

    async def main() -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent.emulators", "queue-line", "--tcp", "0",
            "--script", str(script), "--delay", "0", "--repeat", "2",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(10):
                endpoint = (await proc.stdout.readline()).decode().strip()
                host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
                for _ in range(2):
                    reader, writer = await asyncio.open_connection(host, int(port))
                    assert await reader.readexactly(2 * len(played)) == 2 * played
                    writer.close()
        finally:
            proc.terminate()
            await proc.wait()

    asyncio.run(main())

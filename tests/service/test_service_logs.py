"""The application's log buffer: one write per event-loop turn, and no line lost when gunicorn
aborts a worker that stopped answering its heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

from prostudio.logs import LineBuffer, build_logger
from service_helpers import parse_json_lines, start_test_app_gunicorn, wait_until

from devtools.processes import free_port, http_get


class CountingStream(io.StringIO):
    """A stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_lines_of_one_loop_turn_are_written_together_at_its_end() -> None:
    stream = CountingStream()
    logger = build_logger("info", LineBuffer(stream))

    async def log_three() -> str:
        for number in range(3):
            logger.info("line", number=number)
        written_during_the_turn = stream.getvalue()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert written_during_the_turn == ""
        return stream.getvalue()

    written = asyncio.run(log_three())

    assert [json.loads(line)["number"] for line in written.splitlines()] == [0, 1, 2]
    assert stream.writes == 1


def test_outside_an_event_loop_each_line_is_written_at_once() -> None:
    stream = CountingStream()
    logger = build_logger("info", LineBuffer(stream))

    logger.warning("first")
    assert json.loads(stream.getvalue())["event"] == "first"
    logger.error("second")
    assert stream.writes == 2


def test_a_worker_aborted_by_the_heartbeat_timeout_writes_its_buffered_lines(
    tmp_path: Path,
) -> None:
    port = free_port()
    log = tmp_path / "gunicorn.log"
    server = start_test_app_gunicorn(
        tmp_path,
        "blocking_app:app",
        port,
        REDIS_PORT=str(free_port()),
        GUNICORN_CMD_ARGS="--timeout 2 --workers 1",
    )
    try:
        wait_until(lambda: "Booting worker" in log.read_text(), what="the worker to boot")
        request = threading.Thread(
            target=lambda: _ignore_errors(lambda: http_get(port, "/api/v1/tracks/t/waveform")),
            daemon=True,
        )
        request.start()
        wait_until(lambda: "WORKER TIMEOUT" in log.read_text(), what="gunicorn's abort")
        wait_until(lambda: "render_blocked" in log.read_text(), what="the buffered line")
    finally:
        server.terminate()
        server.wait(timeout=30)

    records = parse_json_lines(log)
    blocked = [r for r in records if r.get("event") == "render_blocked"]
    assert [r["track_id"] for r in blocked] == ["t"]


def _ignore_errors(action: Callable[[], object]) -> None:
    with contextlib.suppress(OSError):
        action()

"""make rehearse's live progress: the phase, its time, and the running counts of requests."""

from __future__ import annotations

import io

from rehearsal.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_phase_with_the_running_counts() -> None:
    counts = [(0, 0)]
    clock, stream = Clock(), io.StringIO()
    progress = Progress(lambda: counts[-1], stream=stream, clock=clock)
    progress.phase("stand up")
    clock.now, counts[-1] = 112.0, (480, 0)
    progress.phase("copy + follow")
    clock.now, counts[-1] = 130.0, (1920, 3)
    progress.stop()

    lines = stream.getvalue().splitlines()
    assert [line.split("]")[1].split()[0:2] for line in lines] == [
        ["stand", "up"], ["stand", "up"], ["copy", "+"], ["copy", "+"],
    ]  # fmt: skip
    assert lines[1].startswith("[    12s] stand up") and " done    12s" in lines[1]
    assert lines[1].endswith("requests     480  failed     0")
    assert lines[3].startswith("[    30s] copy + follow") and " done    18s" in lines[3]
    assert lines[3].endswith("requests   1,920  failed     3")


def test_a_terminal_gets_one_status_line_redrawn_in_place() -> None:
    clock, stream = Clock(), Terminal()
    progress = Progress(lambda: (7, 1), stream=stream, clock=clock)
    progress.phase("warm (old tier only)")
    clock.now = 101.0
    progress._write()
    text = stream.getvalue()
    assert text.count("\r\x1b[2K") == 2 and "\n" not in text
    assert text.endswith("requests       7  failed     1")

"""Live progress of a rehearsal on stderr: the phase, its time, the requests sent and failed.

On a terminal one status line is redrawn every second; otherwise (a log, CI) a line is written
when a phase starts and every `log_interval` seconds. Only the display: nothing here judges
the run (a failed request here is any answer other than 200, deliberate 5xx included).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

Counts = Callable[[], tuple[int, int]]


class Progress:
    def __init__(
        self,
        counts: Counts,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_interval: float = 10.0,
    ) -> None:
        self.counts = counts
        self.stream = stream or sys.stderr
        self.clock = clock
        self.origin = clock()
        self.live = self.stream.isatty()
        self.interval = 1.0 if self.live else log_interval
        self.name = ""
        self.phase_started = self.origin
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._tick, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def phase(self, name: str) -> None:
        with self.lock:
            if self.name:
                self._write(done=True)
            self.name, self.phase_started = name, self.clock()
            self._write()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        with self.lock:
            if self.name:
                self._write(done=True)
            self.name = ""

    def line(self, *, done: bool = False) -> str:
        now = self.clock()
        sent, failed = self.counts()
        state = "done" if done else "…"
        elapsed, in_phase = now - self.origin, now - self.phase_started
        return (
            f"[{elapsed:6.0f}s] {self.name:<40} {state:>4} {in_phase:5.0f}s"
            f"  requests {sent:>7,}  failed {failed:>5,}"
        )

    def _tick(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.lock:
                if self.name:
                    self._write()

    def _write(self, *, done: bool = False) -> None:
        text = self.line(done=done)
        if self.live:
            self.stream.write(f"\r\x1b[2K{text}" + ("\n" if done else ""))
        else:
            self.stream.write(f"{text}\n")
        self.stream.flush()

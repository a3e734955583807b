"""The gunicorn worker class: uvicorn's, tuned for a service behind nginx or the ALB."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
from types import FrameType
from typing import Any, ClassVar, NoReturn

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

# Seconds a worker's shutdown keeps for the lifespan shutdown (pools closed, logs flushed)
# inside gunicorn's graceful_timeout, after which the arbiter kills it.
SHUTDOWN_MARGIN_SECONDS = 2
# How long a stopping worker keeps reading after it stops accepting, before it closes its
# idle connections: long enough for a request already sent on one to be read and answered.
READ_BEFORE_CLOSING_SECONDS = 0.05
# How long an aborted worker waits for its event loop's turn before it exits regardless; well
# under the second after which gunicorn's arbiter follows SIGABRT with SIGKILL.
ABORT_GRACE_SECONDS = 0.5


class DrainingServer(Server):
    """uvicorn's server, except that a shutdown stops accepting first and closes idle
    connections only after READ_BEFORE_CLOSING_SECONDS. uvicorn closes them at once, and a
    connection just accepted whose request was not read yet is then reset: nginx retries
    that only on a connection it had cached, and answers 502 for a new one."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        await asyncio.sleep(READ_BEFORE_CLOSING_SECONDS)
        # A worker descheduled past the window (a busy machine) wakes with its timer due
        # before it has polled the requests that arrived meanwhile: poll once more first.
        await asyncio.sleep(0)
        await super().shutdown(sockets)


class ServiceWorker(UvicornWorker):
    """uvloop and httptools; no access log (the application writes one JSON line per
    request), no proxy-header rewriting (nothing reads the client address), no Server or
    Date header (nginx and the ALB set their own). A worker gunicorn aborts for a missed
    heartbeat writes its buffered log lines before it dies.
    """

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        "date_header": False,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config.timeout_graceful_shutdown = max(
            1, self.cfg.graceful_timeout - SHUTDOWN_MARGIN_SECONDS
        )

    async def _serve(self) -> None:
        """UvicornWorker's, with the DrainingServer."""
        self.config.app = self.wsgi
        server = DrainingServer(config=self.config)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    def init_signals(self) -> None:
        """uvicorn's signals, plus SIGABRT: flush the logs, then exit like gunicorn's."""
        super().init_signals()
        signal.signal(signal.SIGABRT, self.handle_abort)

    def handle_abort(self, sig: int, frame: FrameType | None) -> None:
        """Write the application's buffered log lines, then exit without cleaning up. A clean
        exit would cancel the requests in flight and answer each with a 500; exiting resets
        their connections instead, and nginx resends those GETs to the next worker.

        The signal lands between any two bytecodes, possibly between a response's headers and
        its body: the exit waits for the event loop's current turn to end, so a response already
        started is finished. A loop that is stuck (gunicorn's reason to abort) gets
        ABORT_GRACE_SECONDS.
        """
        self._flush_logs()
        self.alive = False
        self.cfg.worker_abort(self)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._exit_now()
        loop.call_soon_threadsafe(self._exit_now)
        threading.Timer(ABORT_GRACE_SECONDS, self._exit_now).start()

    def _flush_logs(self) -> None:
        # A worker still booting has no application (and no buffered line) yet.
        log_buffer = getattr(getattr(self, "wsgi", None), "log_buffer", None)
        if log_buffer is not None:
            log_buffer.flush()

    def _exit_now(self) -> NoReturn:
        self._flush_logs()
        sys.stderr.flush()
        os._exit(1)

"""An ASGI app for the abort test: it sends a response's headers, then holds the event loop for
a moment before the body, the window in which a worker's SIGABRT once cut the response. Where
the hold ended (a CLOCK_MONOTONIC reading) goes to the file named by HOLD_ENDED_FILE.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prostudio.worker import ABORT_GRACE_SECONDS

# Shorter than the aborted worker's grace: the body must get out however late the signal lands.
HOLD_SECONDS = ABORT_GRACE_SECONDS * 0.9
BODY = b"the body after the headers"

Message = MutableMapping[str, Any]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    headers = [(b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    time.sleep(HOLD_SECONDS)
    Path(os.environ["HOLD_ENDED_FILE"]).write_text(str(time.monotonic()))
    await send({"type": "http.response.body", "body": BODY})

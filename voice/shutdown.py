"""Live conversations end cleanly when the server process is told to stop.

Daphne (Twisted) answers SIGTERM by dropping every connection and exiting: browsers would see a
bare 1006, and a conversation's last records and its end would never be written. So the first
voice connection of a process puts Koe's handler in front of the server's: on SIGTERM or SIGINT
it stops taking new conversations, tells every live one (error `server_restarting`, close 4503,
after which the page reconnects), flushes and ends them, then hands the signal to the server's
own handler. A second signal hands over at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

logger = logging.getLogger(__name__)

# Under the usual 30 s grace of systemd and Kubernetes before they send SIGKILL.
DRAIN_TIMEOUT_S = 25.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drainable(Protocol):
    async def server_stopping(self) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_state = {"installed": False, "draining": False}


def conversation_live(consumer: Drainable) -> None:
    """A conversation started in this process: end it cleanly if the process is stopped."""
    _install_once()
    _live.add(consumer)


def conversation_gone(consumer: Drainable) -> None:
    _live.discard(consumer)


def draining() -> bool:
    """True once the process was told to stop: new conversations belong elsewhere."""
    return _state["draining"]


def _install_once() -> None:
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        return
    _state["installed"] = True
    loop = asyncio.get_running_loop()
    for signum in SIGNALS:
        previous = signal.getsignal(signum)
        # Only in front of Twisted's handlers (daphne): other servers (uvicorn) already close
        # WebSockets with a disconnect on shutdown, and a test runner keeps its own.
        if getattr(getattr(previous, "__self__", None), "__module__", "").startswith("twisted"):
            signal.signal(signum, functools.partial(_on_signal, loop, previous))


def _on_signal(loop: asyncio.AbstractEventLoop, previous: Any, signum: int, frame: Any) -> None:
    if _state["draining"]:
        _hand_over(previous, signum, frame)  # asked twice: stop now
        return
    _state["draining"] = True
    loop.call_soon_threadsafe(lambda: loop.create_task(_drain_then_stop(previous, signum)))


async def _drain_then_stop(previous: Any, signum: int) -> None:
    consumers = list(_live)
    if consumers:
        logger.warning(
            "%s: ending %d live conversation(s) first", signal.Signals(signum).name, len(consumers)
        )
        tasks = [asyncio.ensure_future(c.server_stopping()) for c in consumers]
        _done, pending = await asyncio.wait(tasks, timeout=DRAIN_TIMEOUT_S)
        if pending:
            logger.error("%d conversation(s) did not end in time", len(pending))
    _hand_over(previous, signum, None)


def _hand_over(previous: Any, signum: int, frame: FrameType | None) -> None:
    if callable(previous):
        previous(signum, frame)
    else:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

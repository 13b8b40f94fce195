"""SIGTERM, SIGINT and SIGHUP for a policy server, from the first moment of start-up until it stops.

    with ServerSignals() as signals:          # in place before anything loads
        server = PolicyServer(config)         # SIGTERM/SIGINT here: StartupCancelled is raised
        server.wait_for_shutdown_signal(signals)  # starts it; SIGTERM/SIGINT: drain, stop; SIGHUP: rescan

Loading policies can take minutes, and a SIGHUP's default action ends the process, so the
handlers go in before loading. A SIGTERM/SIGINT while loading cancels the start (there is
nothing to drain yet); a SIGHUP while loading is kept and rescans as soon as the server runs.
A second SIGTERM/SIGINT, while stopping or cancelling, exits at once with status 128 + its number.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from gymserve.serving.server.logs import log_event


class StartupCancelled(BaseException):
    """SIGTERM or SIGINT arrived before the server ran.

    A BaseException, like KeyboardInterrupt, so that code guarding one policy's load against any
    Exception lets it through.
    """


class ServerSignals:
    """The handlers of one server's life; a context manager restoring the previous handlers."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._rescan: Callable[[], None] | None = None  # set once the server runs
        self._rescan_pending = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> ServerSignals:
        handlers = {
            signal.SIGTERM: self._on_stop,
            signal.SIGINT: self._on_stop,
            signal.SIGHUP: self._on_hangup,
        }
        self._previous = {number: signal.signal(number, handler) for number, handler in handlers.items()}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def running(self, rescan: Callable[[], None]) -> None:
        """The server runs: a stop signal now drains it, and SIGHUP calls `rescan` (at once if one came)."""
        self._rescan = rescan
        if self._rescan_pending:
            rescan()

    def wait_for_stop(self) -> None:
        """Block the main thread until SIGTERM or SIGINT, waking often so that handlers run."""
        while not self._stop.wait(0.5):
            pass

    def _on_stop(self, signal_number: int, frame: FrameType | None) -> None:
        name = signal.Signals(signal_number).name
        if self._stop.is_set():
            log_event(logging.WARNING, "server_exit_forced", signal=name)
            logging.shutdown()
            os._exit(128 + signal_number)
        log_event(logging.INFO, "signal_received", signal=name)
        self._stop.set()
        if self._rescan is None:
            raise StartupCancelled(name)

    def _on_hangup(self, signal_number: int, frame: FrameType | None) -> None:
        log_event(logging.INFO, "signal_received", signal="SIGHUP", action="rescan")
        if self._rescan is None:
            self._rescan_pending = True
        else:
            self._rescan()

"""The server's RPC threads: a pool whose `submit` costs a queue put, not a Future's locks.

grpc's synchronous server hands every call to its executor and uses the returned object only
for `add_done_callback`. `concurrent.futures.ThreadPoolExecutor` builds a Future (a condition
and its lock) and takes an idle semaphore and a shutdown lock on every call, and the worker
takes the Future's lock twice more; on 2 cores under 16 and 64 clients that was 2-11% of the
server's CPU per call, 10-50 us (benchmarks/RESULTS.md, the floor against "futures").
`RpcThreads` keeps the same contract for the server: at most `max_workers` threads, started as
calls need them; calls beyond that wait in order; `shutdown` lets running calls finish.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from gymserve.serving.server.logs import log_event


class SubmittedCall:
    """A call handed to `RpcThreads`: runs its done-callbacks once, after the call returned."""

    __slots__ = ("_arguments", "_callbacks", "_done", "_function")

    def __init__(self, function: Callable[..., Any], arguments: tuple[Any, ...]):
        self._function: Callable[..., Any] | None = function
        self._arguments = arguments
        self._done = False
        self._callbacks: list[Callable[[SubmittedCall], Any]] = []

    def add_done_callback(self, callback: Callable[[SubmittedCall], Any]) -> None:
        """Call `callback(self)` when the call has returned: at once if it already has."""
        self._callbacks.append(callback)
        if self._done:
            self._run_callbacks()

    def run(self) -> None:
        """Run the call on this thread, then its callbacks; errors are logged, never raised."""
        try:
            self._function(*self._arguments)
        except BaseException as error:  # grpc answers the RPC itself: this is a bug, and the thread stays
            _log_error("rpc_call_error", error)
        finally:
            self._function, self._arguments = None, ()  # an idle thread keeps no call's objects alive
            self._done = True
            self._run_callbacks()

    def _run_callbacks(self) -> None:
        # The worker and `add_done_callback` may both get here; each pop is atomic, so every
        # callback runs exactly once, on whichever thread takes it, in the order they came.
        while True:
            try:
                callback = self._callbacks.pop(0)
            except IndexError:
                return
            try:
                callback(self)
            except BaseException as error:
                _log_error("rpc_callback_error", error)


def _log_error(event: str, error: BaseException) -> None:
    log_event(logging.ERROR, event, error=f"{type(error).__name__}: {error}", exc_info=error)


class RpcThreads:
    """An executor for `grpc.server`: up to `max_workers` threads, started when no thread is free."""

    def __init__(self, max_workers: int, thread_name_prefix: str = "rpc"):
        if max_workers < 1:
            raise ValueError(f"max_workers is {max_workers}; it must be at least 1")
        self._max_workers = max_workers
        self._name_prefix = thread_name_prefix
        self._calls: queue.SimpleQueue[SubmittedCall | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        # Threads free for a new call. Below `max_workers` every call takes a free thread or a
        # new one; at the limit a finished thread also takes queued calls, so the count runs
        # high there, where it no longer decides anything.
        self._idle = 0
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, function: Callable[..., Any], *arguments: Any) -> SubmittedCall:
        call = SubmittedCall(function, arguments)
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot run new calls after shutdown")
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max_workers:
                self._start_thread()
            self._calls.put(call)  # with every thread busy, waits for the first one free
        return call

    def shutdown(self, wait: bool = True) -> None:
        """Take no more calls; each thread exits after the calls queued before this one."""
        with self._lock:
            if not self._shut_down:
                self._shut_down = True
                for _ in self._threads:
                    self._calls.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._name_prefix}_{len(self._threads)}", daemon=True
        )
        thread.start()
        self._threads.append(thread)

    def _work(self) -> None:
        calls = self._calls
        while (call := calls.get()) is not None:
            call.run()
            with self._lock:
                self._idle += 1

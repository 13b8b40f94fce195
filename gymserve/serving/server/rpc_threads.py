"""The server's RPC threads: a pool whose `submit` costs a queue put, not a Future's locks.

grpc's synchronous server hands every call to its executor and uses the returned object only
for `add_done_callback`. `concurrent.futures.ThreadPoolExecutor` builds a Future (a condition
and its lock) and takes an idle semaphore and a shutdown lock on every call, and the worker
takes the Future's lock twice more; on 2 cores under 16 and 64 clients that was 2-11% of the
server's CPU per call, 10-50 us (benchmarks/RESULTS.md, the floor against "futures").
`RpcThreads` keeps the same contract for the server: at most `max_workers` threads, started as
calls need them; calls beyond that wait in order; `shutdown` lets running calls finish.

grpc takes a thread for a unary-request call when the call's headers arrive, and that thread
waits for the request message: a client that sends headers and part of a body, then stalls,
holds it for as long as it likes. With `max_parked` > 0 a call that has waited for its request
for `PARK_AFTER` seconds is parked: its thread no longer counts against `max_workers`, so
another thread starts for the calls behind it. Parked threads sleep, costing memory only, and at
most `max_parked` of them are kept apart. `RequestReadInterceptor` tells the pool when a call's
request has been read (its behavior starts).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from gymserve.serving.server.handlers import HandlerWrapper, behavior_of, rebuild_handler
from gymserve.serving.server.logs import log_event

PARK_AFTER = 0.02  # seconds a call may wait for its request before its thread stops counting


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


class _Worker:
    """One RPC thread's state: when its call began waiting for a request, and whether it is parked."""

    __slots__ = ("parked", "reading_since")

    def __init__(self) -> None:
        self.reading_since: float | None = None
        self.parked = False


class RpcThreads:
    """An executor for `grpc.server`: up to `max_workers` threads, started when no thread is free.

    Threads whose call still waits for its request after `PARK_AFTER` seconds stop counting
    against `max_workers` (at most `max_parked` of them; 0 turns this off).
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "rpc", max_parked: int = 0):
        if max_workers < 1:
            raise ValueError(f"max_workers is {max_workers}; it must be at least 1")
        self._max_workers, self._max_parked = max_workers, max_parked
        self._name_prefix = thread_name_prefix
        self._calls: queue.SimpleQueue[SubmittedCall | None] = queue.SimpleQueue()
        self._threads: dict[threading.Thread, _Worker] = {}
        self._started = 0  # threads ever started: names stay unique while threads come and go
        # Threads free for a new call. Below the limit every call takes a free thread or a new
        # one; at the limit a finished thread also takes queued calls, so the count runs high
        # there, where it no longer decides anything.
        self._idle = 0
        self._parked = 0
        self._lock = threading.Lock()
        self._shut_down = False
        self._local = threading.local()
        self._stopping = threading.Event()
        self._parking: threading.Thread | None = (
            None  # started with the first call: a pool never used runs none
        )

    def submit(self, function: Callable[..., Any], *arguments: Any) -> SubmittedCall:
        call = SubmittedCall(function, arguments)
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot run new calls after shutdown")
            if self._max_parked and self._parking is None:
                name = f"{self._name_prefix}-parking"
                self._parking = threading.Thread(target=self._park_waiting_calls, name=name, daemon=True)
                self._parking.start()
            if self._idle:
                self._idle -= 1
            elif len(self._threads) < self._max_workers + self._parked:
                self._start_thread()
            self._calls.put(call)  # with every thread busy, waits for the first one free
        return call

    def request_read(self) -> None:
        """Called on an RPC thread when its call's request has arrived and its behavior starts."""
        worker = getattr(self._local, "worker", None)
        if worker is None:
            return
        worker.reading_since = None
        if worker.parked:
            with self._lock:
                self._unpark(worker)

    def set_aside(self) -> None:
        """Stop counting this RPC thread against `max_workers` until its call ends.

        For calls that wait on their client for long by design (a health Watch), whose number
        a slot limit bounds instead.
        """
        worker = getattr(self._local, "worker", None)
        if worker is not None:
            with self._lock:
                if not worker.parked:
                    worker.parked = True
                    self._parked += 1

    def parked(self) -> int:
        """Threads not counted against `max_workers`: waiting for a request, or set aside."""
        return self._parked

    def shutdown(self, wait: bool = True) -> None:
        """Take no more calls; each thread exits after the calls queued before this one."""
        with self._lock:
            if not self._shut_down:
                self._shut_down = True
                self._stopping.set()
                for _ in self._threads:
                    self._calls.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                thread.join()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, name=f"{self._name_prefix}_{self._started}", daemon=True)
        self._started += 1
        self._threads[thread] = _Worker()
        thread.start()

    def _unpark(self, worker: _Worker) -> None:
        if worker.parked:
            worker.parked = False
            self._parked -= 1

    def _work(self) -> None:
        calls, lock = self._calls, self._lock
        worker = self._local.worker = self._threads[threading.current_thread()]
        while (call := calls.get()) is not None:
            worker.reading_since = time.monotonic() if self._max_parked else None
            call.run()
            with lock:
                worker.reading_since = None
                self._unpark(worker)
                if len(self._threads) > self._max_workers + self._parked and calls.empty():
                    del self._threads[threading.current_thread()]  # started for parked calls: not needed now
                    return
                self._idle += 1

    def _park_waiting_calls(self) -> None:
        while not self._stopping.wait(PARK_AFTER):
            deadline = time.monotonic() - PARK_AFTER
            with self._lock:
                if self._shut_down:
                    return
                # A call whose request arrives while it is being parked stays counted as parked
                # until it ends: `request_read` takes no lock on its fast path.
                for worker in self._threads.values():
                    if self._parked >= self._max_parked:
                        break
                    since = worker.reading_since
                    if since is not None and since < deadline and not worker.parked:
                        worker.parked = True
                        self._parked += 1
                # calls that queued while every counted thread was busy get the freed capacity
                room = self._max_workers + self._parked - len(self._threads)
                for _ in range(min(room, self._calls.qsize())):
                    self._start_thread()


class RequestReadInterceptor(HandlerWrapper):
    """Tells `threads` when each call's behavior starts, that is, when its request has arrived."""

    def __init__(self, threads: RpcThreads):
        super().__init__()
        self._threads = threads

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        behavior, request_read = behavior_of(handler), self._threads.request_read

        def started(request: Any, context: grpc.ServicerContext) -> Any:
            request_read()
            return behavior(request, context)

        return rebuild_handler(handler, started)

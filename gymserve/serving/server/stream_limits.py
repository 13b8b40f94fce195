"""Idle streams cannot starve unary calls: slot limits over every streaming RPC, and idle timeouts.

Each open stream holds one server thread for as long as it stays open. StreamAct and reflection
share `max_streams` slots, so a quarter of the threads always stays free for unary calls; health
Watch streams, which need no token, have their own `max_watches` slots (and threads), so watchers
cannot lock authenticated streams out; their threads are set aside from the workers' count
(`RpcThreads.set_aside`). A stream beyond its limit is refused at once with
RESOURCE_EXHAUSTED. A watchdog thread closes with DEADLINE_EXCEEDED, freeing its slot, a stream
whose client sent nothing for `idle_timeout` seconds, and a Watch stream that was sent nothing
(no status change) for `watch_idle_timeout` seconds. Refusals and closes are logged rate-limited:
a client can cause them at will.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from grpc_health.v1 import health

from gymserve.serving.server.handlers import HandlerWrapper, behavior_of, is_streaming, rebuild_handler
from gymserve.serving.server.logs import RateLimitedLog

WATCH_METHOD = f"/{health.SERVICE_NAME}/Watch"


class _Slots:
    """Streams of one kind: how many may be open, and how long one may stay idle."""

    def __init__(self, limit: int, idle_timeout: float, refusal: str, idle_close: str):
        self.limit, self.idle_timeout = limit, idle_timeout
        self.refusal, self.idle_close = refusal, idle_close  # status details, formatted per stream
        self.open: set[_OpenStream] = set()


class _OpenStream:
    def __init__(self, slots: _Slots, method: str, timed: bool, context: grpc.ServicerContext):
        self.slots, self.method, self.timed, self.context = slots, method, timed, context
        self.last_message = time.monotonic()


class StreamLimitInterceptor(HandlerWrapper):
    """Refuses streams beyond their kind's limit and closes streams idle beyond their kind's timeout."""

    def __init__(
        self,
        max_streams: int,
        idle_timeout: float,
        max_watches: int,
        watch_idle_timeout: float,
        set_thread_aside: Callable[[], None] = lambda: None,
    ):
        super().__init__()
        self._set_thread_aside = set_thread_aside
        self._streams = _Slots(
            max_streams,
            idle_timeout,
            f"all {max_streams} stream slots are in use; retry later or use unary calls "
            "(open streams hold a server thread each)",
            f"{{rpc}} stream sent nothing for {idle_timeout:g} s; the server closed it to free its slot "
            "(open a new stream to go on)",
        )
        self._watches = _Slots(
            max_watches,
            watch_idle_timeout,
            f"all {max_watches} health Watch slots are in use; retry later or poll with Check",
            f"health Watch saw no status change for {watch_idle_timeout:g} s; the server closed it to free "
            "its slot (watch again to go on)",
        )
        self._refusals, self._idle_closes = RateLimitedLog(), RateLimitedLog()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="gymserve-stream-watchdog", daemon=True)
        self._watchdog.start()

    def open_streams(self) -> int:
        """Open streams of every kind, health Watch included."""
        return len(self._streams.open) + len(self._watches.open)

    def stop(self) -> None:
        self._stopping.set()
        self._watchdog.join(timeout=5)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if not is_streaming(handler):
            return handler
        behavior = behavior_of(handler)
        watch = method == WATCH_METHOD
        slots = self._watches if watch else self._streams
        # a stream of requests is idle when they stop; a Watch when its responses do
        timed = handler.request_streaming or watch

        if handler.response_streaming:

            def limited_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                stream = self._claim(slots, method, timed, context)
                if watch:
                    self._set_thread_aside()
                try:
                    requests = _touching(request, stream) if handler.request_streaming else request
                    responses = behavior(requests, context)
                    yield from _touching(responses, stream) if watch else responses
                finally:
                    self._release(stream)

            return rebuild_handler(handler, limited_stream)

        def limited(request: Any, context: grpc.ServicerContext) -> Any:
            stream = self._claim(slots, method, timed, context)
            try:
                return behavior(_touching(request, stream), context)
            finally:
                self._release(stream)

        return rebuild_handler(handler, limited)

    def _claim(self, slots: _Slots, method: str, timed: bool, context: grpc.ServicerContext) -> _OpenStream:
        with self._lock:
            if len(slots.open) < slots.limit:
                stream = _OpenStream(slots, method, timed, context)
                slots.open.add(stream)
                return stream
        self._refusals.log(
            logging.WARNING, "stream_refused", method=method, peer=context.peer(), open=slots.limit
        )
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, slots.refusal)
        raise AssertionError("unreachable: abort raises")

    def _release(self, stream: _OpenStream) -> None:
        with self._lock:
            stream.slots.open.discard(stream)

    def _watch(self) -> None:
        period = min(1.0, self._streams.idle_timeout / 4, self._watches.idle_timeout / 4)
        while not self._stopping.wait(period):
            now = time.monotonic()
            with self._lock:
                idle = [
                    stream
                    for slots in (self._streams, self._watches)
                    for stream in slots.open
                    if stream.timed and stream.last_message < now - slots.idle_timeout
                ]
            for stream in idle:
                stream.last_message = float("inf")  # close it once
                self._close_idle(stream)

    def _close_idle(self, stream: _OpenStream) -> None:
        details = stream.slots.idle_close.format(rpc=stream.method.rsplit("/", 1)[-1])
        self._idle_closes.log(
            logging.INFO, "stream_idle_closed", method=stream.method, peer=stream.context.peer()
        )
        cancel_with_status(stream.context, grpc.StatusCode.DEADLINE_EXCEEDED, details)


def _touching(messages: Iterator[Any], stream: _OpenStream) -> Iterator[Any]:
    """`messages`, marking the stream active at each one."""
    for message in messages:
        stream.last_message = time.monotonic()
        yield message


def cancel_with_status(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> None:
    """End a call from another thread with `code` and `details`.

    `context.abort` only works in the thread that runs the handler, which is blocked waiting for
    the client's next message. grpcio's public `cancel()` can only say CANCELLED, so the core
    call's cancel-with-status is used where this grpcio version has it.
    """
    context.set_code(code)
    context.set_details(details)
    call = getattr(getattr(context, "_rpc_event", None), "call", None)
    try:
        from grpc._cython import cygrpc

        call.cancel(getattr(cygrpc.StatusCode, code.name.lower()), details)
    except (AttributeError, ImportError, TypeError):
        context.cancel()

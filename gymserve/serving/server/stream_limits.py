"""Idle streams cannot starve unary calls: a slot limit over every streaming RPC, and an idle timeout.

Each open stream holds one server thread for as long as it stays open. The slot limit covers
every streaming RPC the server has (StreamAct, reflection, health Watch), so a quarter of the
threads always stays free for unary calls; a stream beyond the limit is refused at once with
RESOURCE_EXHAUSTED. A stream whose client sends nothing for `idle_timeout` seconds is closed
with DEADLINE_EXCEEDED by a watchdog thread, freeing its slot. (Health Watch streams are exempt
from the timeout: a watcher sends one request and then only listens.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from gymserve.serving.server.handlers import HandlerWrapper, behavior_of, is_streaming, rebuild_handler
from gymserve.serving.server.logs import log_event


class _OpenStream:
    def __init__(self, method: str, timed: bool, context: grpc.ServicerContext):
        self.method, self.timed, self.context = method, timed, context
        self.last_message = time.monotonic()


class StreamLimitInterceptor(HandlerWrapper):
    """Refuses streams beyond `max_streams` and closes request streams idle for `idle_timeout` s."""

    def __init__(self, max_streams: int, idle_timeout: float):
        super().__init__()
        self.max_streams, self.idle_timeout = max_streams, idle_timeout
        self._open: set[_OpenStream] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name="gymserve-stream-watchdog", daemon=True)
        self._watchdog.start()

    def open_streams(self) -> int:
        return len(self._open)

    def stop(self) -> None:
        self._stopping.set()
        self._watchdog.join(timeout=5)

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        if not is_streaming(handler):
            return handler
        behavior = behavior_of(handler)
        timed = handler.request_streaming  # only a stream of requests can be idle

        if handler.response_streaming:

            def limited_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                stream = self._claim(method, timed, context)
                try:
                    yield from behavior(self._touching(request, stream) if timed else request, context)
                finally:
                    self._release(stream)

            return rebuild_handler(handler, limited_stream)

        def limited(request: Any, context: grpc.ServicerContext) -> Any:
            stream = self._claim(method, timed, context)
            try:
                return behavior(self._touching(request, stream), context)
            finally:
                self._release(stream)

        return rebuild_handler(handler, limited)

    def _claim(self, method: str, timed: bool, context: grpc.ServicerContext) -> _OpenStream:
        with self._lock:
            if len(self._open) < self.max_streams:
                stream = _OpenStream(method, timed, context)
                self._open.add(stream)
                return stream
        message = (
            f"all {self.max_streams} stream slots are in use; retry later or use unary calls "
            "(open streams hold a server thread each)"
        )
        log_event(
            logging.WARNING, "stream_refused", method=method, peer=context.peer(), open=self.max_streams
        )
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, message)
        raise AssertionError("unreachable: abort raises")

    def _release(self, stream: _OpenStream) -> None:
        with self._lock:
            self._open.discard(stream)

    @staticmethod
    def _touching(requests: Iterator[Any], stream: _OpenStream) -> Iterator[Any]:
        for request in requests:
            stream.last_message = time.monotonic()
            yield request

    def _watch(self) -> None:
        period = min(1.0, self.idle_timeout / 4)
        while not self._stopping.wait(period):
            deadline = time.monotonic() - self.idle_timeout
            with self._lock:
                idle = [s for s in self._open if s.timed and s.last_message < deadline]
            for stream in idle:
                stream.last_message = float("inf")  # close it once
                self._close_idle(stream)

    def _close_idle(self, stream: _OpenStream) -> None:
        rpc = stream.method.rsplit("/", 1)[-1]
        details = (
            f"{rpc} stream sent nothing for {self.idle_timeout:g} s; the server closed it to free its slot "
            "(open a new stream to go on)"
        )
        log_event(logging.INFO, "stream_idle_closed", method=stream.method, peer=stream.context.peer())
        cancel_with_status(stream.context, grpc.StatusCode.DEADLINE_EXCEEDED, details)


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

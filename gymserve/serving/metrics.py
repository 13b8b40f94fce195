"""Prometheus metrics of a policy server, served over HTTP by `prometheus_client`.

Every RPC (PolicyService, health, reflection) is counted under the names py-grpc-prometheus
uses, so existing gRPC dashboards work unchanged:

    grpc_server_started_total{grpc_type,grpc_service,grpc_method}
    grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
    grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}   (histogram)

and the policies under `gymserve_`: requests and their latency per policy version (buckets
from 50 µs), model inference time, observations per step and per model call (dynamic
batching merges steps), loaded versions by state, open streams.
Each server has its own registry (with the process collector), so servers in one process do
not mix their counts.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from gymserve.serving.handlers import HandlerWrapper, behavior_of, is_streaming, rebuild_handler

if TYPE_CHECKING:
    from gymserve.serving.served_policies import ServedPolicies

LATENCY_BUCKETS = (
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    7.5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
_VERSION_LABELS = ("policy", "version")


class ServerMetrics:
    """The metrics of one server and, once `serve` is called, the HTTP endpoint that exposes them."""

    def __init__(self, policies: ServedPolicies):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_VersionStates(policies))
        metric = {"registry": self.registry}
        self.started = Counter("grpc_server_started", "RPCs started on the server.", _GRPC_LABELS, **metric)
        self.handled = Counter(
            "grpc_server_handled", "RPCs completed on the server.", (*_GRPC_LABELS, "grpc_code"),
            **metric,
        )  # fmt: skip
        self.handling_seconds = Histogram(
            "grpc_server_handling_seconds", "Time the server took to answer an RPC.", _GRPC_LABELS,
            buckets=LATENCY_BUCKETS, **metric,
        )  # fmt: skip
        self.open_streams = Gauge("gymserve_open_streams", "Streams open now.", ("grpc_method",), **metric)
        self.policy_requests = Counter(
            "gymserve_policy_requests", "Act steps answered, per policy version.", _VERSION_LABELS, **metric
        )
        self.policy_seconds = Histogram(
            "gymserve_policy_request_seconds", "Time of an Act step, from parsed request to response.",
            _VERSION_LABELS, buckets=LATENCY_BUCKETS, **metric,
        )  # fmt: skip
        self.inference_seconds = Histogram(
            "gymserve_model_inference_seconds", "Time the policy took to compute the actions.",
            _VERSION_LABELS, buckets=LATENCY_BUCKETS, **metric,
        )  # fmt: skip
        self.batch_size = Histogram(
            "gymserve_batch_size", "Observations per Act step.", ("policy",), buckets=BATCH_BUCKETS, **metric
        )
        self.model_batch_size = Histogram(
            "gymserve_model_batch_size", "Observations per model call (steps merged by dynamic batching).",
            ("policy",), buckets=BATCH_BUCKETS, **metric,
        )  # fmt: skip
        self._http: Any = None

    def serve(self, address: str) -> str:
        """Serve the metrics at http://ADDRESS/metrics; returns HOST:PORT (the real port for port 0)."""
        host, _, port = address.rpartition(":")
        self._http, _ = start_http_server(int(port), host, registry=self.registry)
        return f"{host}:{self._http.server_address[1]}"

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()

    def observe_step(
        self, name: str, version: int, batch_size: int, seconds: float, inference: float
    ) -> None:
        requests, step_seconds, inference_seconds, batch_sizes = self._step_series(name, version)
        requests.inc()
        step_seconds.observe(seconds)
        inference_seconds.observe(inference)
        batch_sizes.observe(batch_size)

    def observe_model_batch(self, name: str, batch_size: int) -> None:
        self._model_batch_series(name).observe(batch_size)

    @functools.cache  # noqa: B019 - one entry per policy version ever served, as in the registry
    def _step_series(self, name: str, version: int) -> tuple[Counter, Histogram, Histogram, Histogram]:
        """The labelled series of one policy version (`labels()` is a locked lookup; a step is hot)."""
        labels = (name, str(version))
        return (
            self.policy_requests.labels(*labels),
            self.policy_seconds.labels(*labels),
            self.inference_seconds.labels(*labels),
            self.batch_size.labels(name),
        )

    @functools.cache  # noqa: B019 - one entry per policy name
    def _model_batch_series(self, name: str) -> Histogram:
        return self.model_batch_size.labels(name)


class MetricsInterceptor(HandlerWrapper):
    """Counts every RPC started and handled, with its status code and duration."""

    def __init__(self, metrics: ServerMetrics):
        super().__init__()
        self._metrics = metrics

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        service, _, method = method.lstrip("/").rpartition("/")
        labels = (_grpc_type(handler), service, method)
        started, handled = self._metrics.started.labels(*labels), self._metrics.handled
        seconds = self._metrics.handling_seconds.labels(*labels)
        open_streams = self._metrics.open_streams.labels(method)
        behavior = behavior_of(handler)

        handled_by_code: dict[str, Counter] = {}

        def finish(context: grpc.ServicerContext, begin: float, error: BaseException | None) -> None:
            seconds.observe(time.perf_counter() - begin)
            code = _status_code(context, error)
            counter = handled_by_code.get(code)
            if counter is None:
                counter = handled_by_code[code] = handled.labels(*labels, code)
            counter.inc()

        if handler.response_streaming:

            def counted_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                started.inc()
                begin, error = time.perf_counter(), None
                open_streams.inc()
                try:
                    yield from behavior(request, context)
                except BaseException as raised:
                    error = raised
                    raise
                finally:
                    open_streams.dec()
                    finish(context, begin, error)

            return rebuild_handler(handler, counted_stream)

        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            started.inc()
            begin, error = time.perf_counter(), None
            if is_streaming(handler):
                open_streams.inc()
            try:
                return behavior(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                if is_streaming(handler):
                    open_streams.dec()
                finish(context, begin, error)

        return rebuild_handler(handler, counted)


def _grpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _status_code(context: grpc.ServicerContext, error: BaseException | None) -> str:
    """The status the call ends with: the one set (or aborted with), OK, CANCELLED or UNKNOWN."""
    code = context.code()
    if code is not None:
        return code.name if isinstance(code, grpc.StatusCode) else grpc.StatusCode(code).name
    if error is None:
        return "OK"
    if isinstance(error, GeneratorExit | grpc.RpcError):
        return "CANCELLED"  # the client went away, or the stream was cancelled under the handler
    return "UNKNOWN"


class _VersionStates:
    """`gymserve_policy_versions{policy,state}`: versions by state, read from the catalog at scrape time."""

    def __init__(self, policies: ServedPolicies):
        self._policies = policies

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gymserve_policy_versions",
            "Policy versions known to the server, by state.",
            labels=("policy", "state"),
        )
        for name in self._policies.names():
            versions = self._policies.versions(name)
            available = sum(v.available for v in versions)
            family.add_metric((name, "available"), available)
            family.add_metric((name, "failed"), len(versions) - available)
        yield family

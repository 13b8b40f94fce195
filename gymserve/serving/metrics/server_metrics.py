"""Prometheus metrics of a policy server, served over HTTP by `prometheus_client`.

Every RPC (PolicyService, health, reflection) is counted under the names py-grpc-prometheus
uses, so existing gRPC dashboards work unchanged:

    grpc_server_started_total{grpc_type,grpc_service,grpc_method}
    grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
    grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}   (histogram)

calls to the HTTP port (when it is open) per route, method and HTTP status,

    gymserve_http_requests_total{route,method,code}
    gymserve_http_request_seconds{route,method,code}   (histogram)

and the policies under `gymserve_`: requests and their latency per policy version (buckets
from 50 µs), model inference time, observations per step and per model call (dynamic
batching merges steps), loaded versions by state, open streams. The per-call series are kept by
`rpc_metrics`, `http_metrics` and `step_metrics`, cheaper per update than prometheus_client's own.
Each server has its own registry (with the process collector), so servers in one process do
not mix their counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily

from gymserve.serving.metrics.http_metrics import HttpMetrics
from gymserve.serving.metrics.rpc_metrics import RpcMetrics
from gymserve.serving.metrics.step_metrics import StepMetrics
from gymserve.serving.server.handlers import HandlerWrapper, behavior_of, is_streaming, rebuild_handler

if TYPE_CHECKING:
    from gymserve.serving.server.served_policies import ServedPolicies

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


class ServerMetrics:
    """The metrics of one server and, once `serve` is called, the HTTP endpoint that exposes them."""

    def __init__(self, policies: ServedPolicies):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_VersionStates(policies))
        self.rpcs = RpcMetrics(LATENCY_BUCKETS)
        self.registry.register(self.rpcs)
        self.open_streams = Gauge(
            "gymserve_open_streams", "Streams open now.", ("grpc_method",), registry=self.registry
        )
        self.steps = StepMetrics(LATENCY_BUCKETS, BATCH_BUCKETS)
        self.registry.register(self.steps)
        self.http = HttpMetrics(LATENCY_BUCKETS)
        self.registry.register(self.http)
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

    def observe_model_batch(self, name: str, batch_size: int) -> None:
        self.steps.observe_model_batch(name, batch_size)


class MetricsInterceptor(HandlerWrapper):
    """Counts every RPC started and handled, with its status code and duration."""

    def __init__(self, metrics: ServerMetrics):
        super().__init__()
        self._metrics = metrics

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        service, _, method = method.lstrip("/").rpartition("/")
        labels = (_grpc_type(handler), service, method)
        rpcs = self._metrics.rpcs
        rpcs.add_method(labels)
        open_streams = self._metrics.open_streams.labels(method)
        behavior = behavior_of(handler)

        if handler.response_streaming:

            def counted_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                rpcs.started(labels)
                begin, error = time.perf_counter(), None
                open_streams.inc()
                try:
                    yield from behavior(request, context)
                except BaseException as raised:
                    error = raised
                    raise
                finally:
                    open_streams.dec()
                    rpcs.handled(labels, _status_code(context, error), time.perf_counter() - begin)

            return rebuild_handler(handler, counted_stream)

        streaming = is_streaming(handler)

        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            rpcs.started(labels)
            begin, error = time.perf_counter(), None
            if streaming:
                open_streams.inc()
            try:
                return behavior(request, context)
            except BaseException as raised:
                error = raised
                raise
            finally:
                if streaming:
                    open_streams.dec()
                rpcs.handled(labels, _status_code(context, error), time.perf_counter() - begin)

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

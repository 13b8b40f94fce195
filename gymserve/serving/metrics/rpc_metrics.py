"""The gRPC server series under py-grpc-prometheus's names, recorded with one append per event.

    grpc_server_started_total{grpc_type,grpc_service,grpc_method}
    grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
    grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}   (histogram)

Counted in bulk (see `queued_metrics`) rather than with three prometheus_client updates per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import Metric

from gymserve.serving.metrics.queued_metrics import (
    Buckets,
    QueuedMetrics,
    counter_family,
    histogram_family,
    observe,
)

GRPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
RpcLabels = tuple[str, str, str]  # the values of GRPC_LABELS


class RpcMetrics(QueuedMetrics):
    """A Prometheus collector of the RPCs started and handled, with their status codes and durations."""

    def __init__(self, latency_buckets: Sequence[float]):
        super().__init__()
        self._bounds = tuple(latency_buckets)
        self._started: dict[RpcLabels, int] = {}
        self._handled: dict[tuple[str, str, str, str], int] = {}
        self._seconds: dict[RpcLabels, Buckets] = {}

    def add_method(self, labels: RpcLabels) -> None:
        """Show `labels`' started count and duration at zero from now on, as prometheus_client's would."""
        self._record((labels, "", 0.0))

    def started(self, labels: RpcLabels) -> None:
        self._record((labels, None, 0.0))

    def handled(self, labels: RpcLabels, code: str, seconds: float) -> None:
        self._record((labels, code, seconds))

    def _count(self, events: list[tuple[RpcLabels, str | None, float]]) -> None:
        for labels, code, seconds in events:
            if code is None:
                self._started[labels] = self._started.get(labels, 0) + 1
            elif code:
                key = (*labels, code)
                self._handled[key] = self._handled.get(key, 0) + 1
                observe(self._seconds, labels, self._bounds, seconds)
            else:
                self._started.setdefault(labels, 0)
                self._seconds.setdefault(labels, Buckets(self._bounds))

    def _families(self) -> Iterable[Metric]:
        yield counter_family("grpc_server_started", "RPCs started on the server.", GRPC_LABELS, self._started)
        yield counter_family(
            "grpc_server_handled", "RPCs completed on the server.", (*GRPC_LABELS, "grpc_code"), self._handled
        )
        yield histogram_family(
            "grpc_server_handling_seconds", "Time the server took to answer an RPC.", GRPC_LABELS,
            self._bounds, self._seconds,
        )  # fmt: skip

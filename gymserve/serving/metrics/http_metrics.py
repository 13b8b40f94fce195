"""The HTTP port's series, recorded with one append per request.

    gymserve_http_requests_total{route,method,code}
    gymserve_http_request_seconds{route,method,code}   (histogram)

Counted in bulk (see `queued_metrics`) rather than with two prometheus_client label lookups and
three locks per request, which took 4% of the server CPU of a small policy's HTTP call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import Metric

from gymserve.serving.metrics.queued_metrics import (
    Buckets,
    QueuedMetrics,
    counter_family,
    histogram_family,
    observe_all,
)

HTTP_LABELS = ("route", "method", "code")


class HttpMetrics(QueuedMetrics):
    """A Prometheus collector of the HTTP requests answered (route, method, status) and their durations."""

    def __init__(self, latency_buckets: Sequence[float]):
        super().__init__()
        self._bounds = tuple(latency_buckets)
        self._seconds: dict[tuple[str, str, str], Buckets] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self._record((route, method, status, seconds))

    def _count(self, events: list[tuple[str, str, int, float]]) -> None:
        keys = [(route, method, str(status)) for route, method, status, _ in events]
        observe_all(self._seconds, keys, self._bounds, [seconds for *_, seconds in events])

    def _families(self) -> Iterable[Metric]:
        yield counter_family(
            "gymserve_http_requests",
            "HTTP requests answered, by route, method and status.",
            HTTP_LABELS,
            {key: sum(buckets.counts) for key, buckets in self._seconds.items()},
        )
        yield histogram_family(
            "gymserve_http_request_seconds", "Seconds from an HTTP request's arrival to its answer.",
            HTTP_LABELS, self._bounds, self._seconds,
        )  # fmt: skip

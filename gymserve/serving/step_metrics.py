"""The per-step policy metrics, counted under one lock and turned into Prometheus families when scraped.

Every Act step updates a counter and four histograms. prometheus_client takes a lock per
counter and per histogram (and two for a histogram: its sum and its bucket) and scans the
buckets in Python: a fifth of a small model's whole unary Act on the server. Here a step takes
one lock and a bisection per histogram; the scrape builds the same families and samples a
`Counter` and `Histogram` of these names would.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

VERSION_LABELS = ("policy", "version")


class _Buckets:
    """One histogram series: observations per bucket (the last one +Inf) and their sum."""

    def __init__(self, bounds: Sequence[float]):
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0


class StepMetrics:
    """A Prometheus collector of `gymserve_policy_*`, `gymserve_model_*` and `gymserve_*batch_size`."""

    def __init__(self, latency_buckets: Sequence[float], batch_buckets: Sequence[float]):
        self._latency_bounds, self._batch_bounds = tuple(latency_buckets), tuple(batch_buckets)
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._step_seconds: dict[tuple[str, str], _Buckets] = {}
        self._inference_seconds: dict[tuple[str, str], _Buckets] = {}
        self._batch_sizes: dict[tuple[str], _Buckets] = {}
        self._model_batch_sizes: dict[tuple[str], _Buckets] = {}

    def observe_step(
        self, name: str, version: int, batch_size: int, seconds: float, inference: float
    ) -> None:
        version_key, name_key = (name, str(version)), (name,)
        with self._lock:
            self._requests[version_key] = self._requests.get(version_key, 0) + 1
            self._add(self._step_seconds, version_key, self._latency_bounds, seconds)
            self._add(self._inference_seconds, version_key, self._latency_bounds, inference)
            self._add(self._batch_sizes, name_key, self._batch_bounds, batch_size)

    def observe_model_batch(self, name: str, batch_size: int) -> None:
        with self._lock:
            self._add(self._model_batch_sizes, (name,), self._batch_bounds, batch_size)

    @staticmethod
    def _add(series: dict, key: tuple[str, ...], bounds: tuple[float, ...], value: float) -> None:
        buckets = series.get(key)
        if buckets is None:
            buckets = series[key] = _Buckets(bounds)
        buckets.counts[bisect.bisect_left(bounds, value)] += 1  # a bucket counts values <= its bound
        buckets.sum += value

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            requests = dict(self._requests)
            histograms = [
                (name, doc, labels, bounds, {k: (list(b.counts), b.sum) for k, b in series.items()})
                for name, doc, labels, bounds, series in self._histograms()
            ]
        family = CounterMetricFamily(
            "gymserve_policy_requests", "Act steps answered, per policy version.", labels=VERSION_LABELS
        )
        for key, count in requests.items():
            family.add_metric(key, count)
        yield family
        for name, doc, labels, bounds, series in histograms:
            family = HistogramMetricFamily(name, doc, labels=labels)
            for key, (counts, total) in series.items():
                cumulative, buckets = 0, []
                for bound, count in zip((*bounds, float("inf")), counts, strict=True):
                    cumulative += count
                    buckets.append((floatToGoString(bound), cumulative))
                family.add_metric(key, buckets, total)
            yield family

    def _histograms(self) -> list[tuple[str, str, tuple[str, ...], tuple[float, ...], dict]]:
        latency, batch = self._latency_bounds, self._batch_bounds
        return [
            (
                "gymserve_policy_request_seconds",
                "Time of an Act step, from parsed request to response.",
                VERSION_LABELS, latency, self._step_seconds,
            ),
            (
                "gymserve_model_inference_seconds",
                "Time the policy took to compute the actions.",
                VERSION_LABELS, latency, self._inference_seconds,
            ),
            ("gymserve_batch_size", "Observations per Act step.", ("policy",), batch, self._batch_sizes),
            (
                "gymserve_model_batch_size",
                "Observations per model call (steps merged by dynamic batching).",
                ("policy",), batch, self._model_batch_sizes,
            ),
        ]  # fmt: skip

"""The per-step policy metrics, recorded with one append and turned into Prometheus families when scraped.

Every Act step updates a counter and four histograms. prometheus_client takes a lock per
counter and per histogram (and two for a histogram: its sum and its bucket) and scans the
buckets in Python: a fifth of a small model's whole unary Act on the server. Here a step only
appends its figures to a queue (atomic under the GIL, no lock); they are counted into the
buckets, a bisection per histogram, in bulk when the queue holds `FOLD_EVERY` steps and at
every scrape. The scrape builds the same families and samples a `Counter` and `Histogram` of
these names would.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

VERSION_LABELS = ("policy", "version")
FOLD_EVERY = 1024  # steps queued before they are counted into the buckets


class _Buckets:
    """One histogram series: observations per bucket (the last one +Inf) and their sum."""

    def __init__(self, bounds: Sequence[float]):
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0


class StepMetrics:
    """A Prometheus collector of `gymserve_policy_*`, `gymserve_model_*` and `gymserve_*batch_size`."""

    def __init__(self, latency_buckets: Sequence[float], batch_buckets: Sequence[float]):
        self._latency_bounds, self._batch_bounds = tuple(latency_buckets), tuple(batch_buckets)
        self._queue: deque[tuple[str, int | None, int, float, float, bool]] = deque()
        self._lock = threading.Lock()  # over the folding into the series, and their reading
        self._requests: dict[tuple[str, str], int] = {}
        self._step_seconds: dict[tuple[str, str], _Buckets] = {}
        self._inference_seconds: dict[tuple[str, str], _Buckets] = {}
        self._batch_sizes: dict[tuple[str], _Buckets] = {}
        self._model_batch_sizes: dict[tuple[str], _Buckets] = {}

    def observe_step(
        self,
        name: str,
        version: int,
        batch_size: int,
        seconds: float,
        inference: float,
        model_call: bool = False,
    ) -> None:
        """One Act step of `batch_size` observations; `model_call` when it ran the model alone (unbatched)."""
        self._queue.append((name, version, batch_size, seconds, inference, model_call))
        if len(self._queue) >= FOLD_EVERY and self._lock.acquire(blocking=False):  # else one folds already
            try:
                self._fold()
            finally:
                self._lock.release()

    def observe_model_batch(self, name: str, batch_size: int) -> None:
        self._queue.append((name, None, batch_size, 0.0, 0.0, True))

    def _fold(self) -> None:
        """Count the queued steps into the series (the lock held); later steps wait for the next fold."""
        latency, batch = self._latency_bounds, self._batch_bounds
        for _ in range(len(self._queue)):
            name, version, batch_size, seconds, inference, model_call = self._queue.popleft()
            name_key = (name,)
            if version is not None:
                version_key = (name, str(version))
                self._requests[version_key] = self._requests.get(version_key, 0) + 1
                self._add(self._step_seconds, version_key, latency, seconds)
                self._add(self._inference_seconds, version_key, latency, inference)
                self._add(self._batch_sizes, name_key, batch, batch_size)
            if model_call:
                self._add(self._model_batch_sizes, name_key, batch, batch_size)

    @staticmethod
    def _add(series: dict, key: tuple[str, ...], bounds: tuple[float, ...], value: float) -> None:
        buckets = series.get(key)
        if buckets is None:
            buckets = series[key] = _Buckets(bounds)
        buckets.counts[bisect.bisect_left(bounds, value)] += 1  # a bucket counts values <= its bound
        buckets.sum += value

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            self._fold()
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

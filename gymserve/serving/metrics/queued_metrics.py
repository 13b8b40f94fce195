"""Prometheus series recorded with one append per event and counted in bulk, for the per-call metrics.

prometheus_client takes a lock per counter update and two per histogram observation, and scans
a histogram's buckets in Python. A server counts several series on every call, so here a call
only appends its figures to a queue (atomic under the GIL, no lock). The queue is counted into
the series in bulk (histograms with `observe_all`, a few numpy calls a fold) once it holds
`FOLD_EVERY` events and at every scrape; the scrape yields the families and samples a `Counter`
and `Histogram` of the same names would (without their `_created` samples).
"""

from __future__ import annotations

import abc
import bisect
import operator
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

FOLD_EVERY = 1024  # events queued before they are counted into the series


class Buckets:
    """One histogram series: observations per bucket (the last one +Inf) and their sum."""

    def __init__(self, bounds: Sequence[float]):
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0


def observe(series: dict[tuple, Buckets], key: tuple, bounds: tuple[float, ...], value: float) -> None:
    """Count `value` into the histogram series `key` of `series`."""
    buckets = series.get(key)
    if buckets is None:
        buckets = series[key] = Buckets(bounds)
    buckets.counts[bisect.bisect_left(bounds, value)] += 1  # a bucket counts values <= its bound
    buckets.sum += value


def observe_all(
    series: dict[tuple, Buckets], keys: Sequence[tuple], bounds: tuple[float, ...], values: Sequence[float]
) -> None:
    """Count each of `values` into the histogram series of its key in `keys`, in a few numpy calls
    for a whole fold instead of a bisection each (a small call's server CPU, 1-2 us, went to this)."""
    if not keys:
        return
    groups: dict[tuple, int] = {}
    group_of = np.array([groups.setdefault(key, len(groups)) for key in keys])
    per_group = len(bounds) + 1
    buckets_of = np.searchsorted(bounds, values, side="left")  # as bisect_left: a bucket counts values <= it
    counts = np.bincount(group_of * per_group + buckets_of, minlength=len(groups) * per_group)
    sums = np.bincount(group_of, weights=values, minlength=len(groups))
    rows = counts.reshape(-1, per_group).tolist()
    for key, group_counts, total in zip(groups, rows, sums.tolist(), strict=True):
        buckets = series.get(key)
        if buckets is None:
            buckets = series[key] = Buckets(bounds)
        buckets.counts = [*map(operator.add, buckets.counts, group_counts)]
        buckets.sum += total


def counter_family(
    name: str, doc: str, labels: Sequence[str], counts: dict[tuple, int]
) -> CounterMetricFamily:
    """The family of `counts` as prometheus_client's `Counter` would expose it (call with the lock held)."""
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, count in counts.items():
        family.add_metric(key, count)
    return family


def histogram_family(
    name: str, doc: str, labels: Sequence[str], bounds: tuple[float, ...], series: dict[tuple, Buckets]
) -> HistogramMetricFamily:
    """The family of `series` as prometheus_client's `Histogram` would expose it (call with the lock held)."""
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, buckets in series.items():
        cumulative, samples = 0, []
        for bound, count in zip((*bounds, float("inf")), buckets.counts, strict=True):
            cumulative += count
            samples.append((floatToGoString(bound), cumulative))
        family.add_metric(key, samples, buckets.sum)
    return family


class QueuedMetrics(abc.ABC):
    """A Prometheus collector whose events are queued by `_record` and counted by `_count` in bulk."""

    def __init__(self) -> None:
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()  # over the counting into the series, and their reading

    def _record(self, event: Any) -> None:
        self._queue.append(event)
        if len(self._queue) >= FOLD_EVERY and self._lock.acquire(blocking=False):  # else one folds already
            try:
                self._fold()
            finally:
                self._lock.release()

    def _fold(self) -> None:
        """Count the queued events (the lock held); events queued meanwhile wait for the next fold."""
        self._count([self._queue.popleft() for _ in range(len(self._queue))])

    @abc.abstractmethod
    def _count(self, events: list[Any]) -> None:
        """Count queued events into the series, in the order they were recorded."""

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            self._fold()
            return list(self._families())

    @abc.abstractmethod
    def _families(self) -> Iterable[Metric]:
        """The metric families of the series (the lock held)."""

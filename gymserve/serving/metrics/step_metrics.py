"""The per-step policy metrics: requests, step and inference time, observations per step and per model call.

Every Act step updates a counter and four histograms, recorded with one append (see
`queued_metrics`): with prometheus_client's own objects this was a fifth of a small model's
whole unary Act on the server.
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

VERSION_LABELS = ("policy", "version")


class StepMetrics(QueuedMetrics):
    """A Prometheus collector of `gymserve_policy_*`, `gymserve_model_*` and `gymserve_*batch_size`."""

    def __init__(self, latency_buckets: Sequence[float], batch_buckets: Sequence[float]):
        super().__init__()
        self._latency_bounds, self._batch_bounds = tuple(latency_buckets), tuple(batch_buckets)
        self._requests: dict[tuple[str, str], int] = {}
        self._step_seconds: dict[tuple[str, str], Buckets] = {}
        self._inference_seconds: dict[tuple[str, str], Buckets] = {}
        self._batch_sizes: dict[tuple[str], Buckets] = {}
        self._model_batch_sizes: dict[tuple[str], Buckets] = {}

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
        self._record((name, version, batch_size, seconds, inference, model_call))

    def observe_model_batch(self, name: str, batch_size: int) -> None:
        self._record((name, None, batch_size, 0.0, 0.0, True))

    def _count(self, events: list[tuple[str, int | None, int, float, float, bool]]) -> None:
        latency, batch = self._latency_bounds, self._batch_bounds
        steps = [event for event in events if event[1] is not None]
        version_keys = [(name, str(version)) for name, version, *_ in steps]
        for key in version_keys:
            self._requests[key] = self._requests.get(key, 0) + 1
        observe_all(self._step_seconds, version_keys, latency, [event[3] for event in steps])
        observe_all(self._inference_seconds, version_keys, latency, [event[4] for event in steps])
        observe_all(self._batch_sizes, [(event[0],) for event in steps], batch, [event[2] for event in steps])
        model_calls = [event for event in events if event[5]]
        observe_all(
            self._model_batch_sizes,
            [(event[0],) for event in model_calls],
            batch,
            [event[2] for event in model_calls],
        )

    def _families(self) -> Iterable[Metric]:
        yield counter_family(
            "gymserve_policy_requests",
            "Act steps answered, per policy version.",
            VERSION_LABELS,
            self._requests,
        )
        latency, batch = self._latency_bounds, self._batch_bounds
        yield histogram_family(
            "gymserve_policy_request_seconds", "Time of an Act step, from parsed request to response.",
            VERSION_LABELS, latency, self._step_seconds,
        )  # fmt: skip
        yield histogram_family(
            "gymserve_model_inference_seconds", "Time the policy took to compute the actions.",
            VERSION_LABELS, latency, self._inference_seconds,
        )  # fmt: skip
        yield histogram_family(
            "gymserve_batch_size", "Observations per Act step.", ("policy",), batch, self._batch_sizes
        )
        yield histogram_family(
            "gymserve_model_batch_size", "Observations per model call (steps merged by dynamic batching).",
            ("policy",), batch, self._model_batch_sizes,
        )  # fmt: skip

"""The per-step metrics scrape exactly as prometheus_client's Counter and Histogram of the same names."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from gymserve.serving.metrics import BATCH_BUCKETS, LATENCY_BUCKETS
from gymserve.serving.step_metrics import StepMetrics

# values on bucket bounds, between them, below the first and above the last
SECONDS = [0.0, 5e-5, 6e-5, 1e-3, 1e-3, 0.0042, 2.5, 3.0, 1e-4]
BATCHES = [1, 1, 2, 3, 64, 65, 4096, 5000, 7]


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_steps_scrape_as_the_prometheus_client_counter_and_histograms_would():
    ours, reference = CollectorRegistry(), CollectorRegistry()
    steps = StepMetrics(LATENCY_BUCKETS, BATCH_BUCKETS)
    ours.register(steps)
    version = ("policy", "version")
    requests = Counter("gymserve_policy_requests", "Act steps answered, per policy version.", version,
                       registry=reference)  # fmt: skip
    step_seconds, inference_seconds = (
        Histogram(name, "", version, buckets=LATENCY_BUCKETS, registry=reference)
        for name in ("gymserve_policy_request_seconds", "gymserve_model_inference_seconds")
    )
    batch_sizes, model_batch_sizes = (
        Histogram(name, "", ("policy",), buckets=BATCH_BUCKETS, registry=reference)
        for name in ("gymserve_batch_size", "gymserve_model_batch_size")
    )
    for index, (seconds, batch) in enumerate(zip(SECONDS, BATCHES, strict=True)):
        name, number = ("cartpole", 1) if index % 3 else ("minitaur", 7)
        steps.observe_step(name, number, batch, seconds, seconds / 2)
        steps.observe_model_batch(name, batch * 2)
        requests.labels(name, str(number)).inc()
        step_seconds.labels(name, str(number)).observe(seconds)
        inference_seconds.labels(name, str(number)).observe(seconds / 2)
        batch_sizes.labels(name).observe(batch)
        model_batch_sizes.labels(name).observe(batch * 2)

    assert samples(ours) == samples(reference)
    assert samples(ours)[("gymserve_policy_requests_total", (("policy", "cartpole"), ("version", "1")))] == 6

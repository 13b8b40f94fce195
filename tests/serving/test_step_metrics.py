"""The per-call metrics scrape exactly as prometheus_client's Counter and Histogram of the same names."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from gymserve.serving.metrics.queued_metrics import FOLD_EVERY, Buckets, observe, observe_all
from gymserve.serving.metrics.rpc_metrics import GRPC_LABELS, RpcMetrics
from gymserve.serving.metrics.server_metrics import BATCH_BUCKETS, LATENCY_BUCKETS
from gymserve.serving.metrics.step_metrics import StepMetrics

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


def test_steps_from_many_threads_are_all_counted_across_folds():
    registry = CollectorRegistry()
    steps = StepMetrics(LATENCY_BUCKETS, BATCH_BUCKETS)
    registry.register(steps)
    threads, per_thread = 4, FOLD_EVERY  # every thread crosses the fold threshold

    def act() -> None:
        for index in range(per_thread):
            steps.observe_step("cartpole", 1, 2, 1e-4, 5e-5, model_call=index % 2 == 0)

    workers = [threading.Thread(target=act) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    value = registry.get_sample_value
    version, policy = {"policy": "cartpole", "version": "1"}, {"policy": "cartpole"}
    assert value("gymserve_policy_requests_total", version) == threads * per_thread
    assert (
        value("gymserve_policy_request_seconds_bucket", {**version, "le": "0.0001"}) == threads * per_thread
    )
    assert value("gymserve_batch_size_sum", policy) == 2 * threads * per_thread
    assert value("gymserve_model_batch_size_count", policy) == threads * per_thread // 2


def test_rpcs_scrape_as_the_prometheus_client_counters_and_histogram_would():
    ours, reference = CollectorRegistry(), CollectorRegistry()
    rpcs = RpcMetrics(LATENCY_BUCKETS)
    ours.register(rpcs)
    started = Counter("grpc_server_started", "RPCs started on the server.", GRPC_LABELS, registry=reference)
    handled = Counter(
        "grpc_server_handled",
        "RPCs completed on the server.",
        (*GRPC_LABELS, "grpc_code"),
        registry=reference,
    )
    seconds = Histogram(
        "grpc_server_handling_seconds", "Time the server took to answer an RPC.", GRPC_LABELS,
        buckets=LATENCY_BUCKETS, registry=reference,
    )  # fmt: skip
    act, stream, idle = (
        ("unary", "s", "Act"),
        ("bidi_stream", "s", "StreamAct"),
        ("unary", "s", "GetPolicy"),
    )
    for labels in (act, stream, idle):  # a method with a handler shows zeros before its first call
        rpcs.add_method(labels)
        started.labels(*labels)
        seconds.labels(*labels)
    for index, duration in enumerate(SECONDS):
        labels, code = (act, "OK") if index % 3 else (stream, "CANCELLED" if index % 2 else "NOT_FOUND")
        rpcs.started(labels)
        rpcs.handled(labels, code, duration)
        started.labels(*labels).inc()
        handled.labels(*labels, code).inc()
        seconds.labels(*labels).observe(duration)
    rpcs.started(act)  # still running
    started.labels(*act).inc()

    assert samples(ours) == samples(reference)
    ok_labels = {"grpc_type": "unary", "grpc_service": "s", "grpc_method": "Act", "grpc_code": "OK"}
    assert samples(ours)[("grpc_server_handled_total", tuple(sorted(ok_labels.items())))] == 6


def test_a_fold_counts_each_value_into_its_own_series_as_one_at_a_time_would():
    rng = np.random.default_rng(0)
    bounds = tuple(LATENCY_BUCKETS)
    keys = [("a",), ("b",), ("c",)]
    chosen = [keys[i] for i in rng.integers(0, 3, 3000)]
    values = [*SECONDS, *rng.exponential(1e-3, 3000 - len(SECONDS)).tolist()]  # bounds exactly, too
    one_by_one, folded = {("c",): Buckets(bounds)}, {("c",): Buckets(bounds)}  # a series counted before
    one_by_one[("c",)].counts[3] = folded[("c",)].counts[3] = 5
    for key, value in zip(chosen, values, strict=True):
        observe(one_by_one, key, bounds, value)
    observe_all(folded, chosen, bounds, values)
    assert list(folded) == list(one_by_one)
    for key in one_by_one:
        assert folded[key].counts == one_by_one[key].counts
        assert folded[key].sum == pytest.approx(one_by_one[key].sum, rel=1e-12)

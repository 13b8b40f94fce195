"""Dynamic batching: concurrent calls share model calls, and every caller gets exactly its own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
from serving_support import (
    WEIGHTS,
    LinearPolicy,
    SlowPolicy,
    greedy_by_hand,
    observations,
    standard_policies,
    start_server,
)

from gymserve.serving import PolicyClient, PolicyServiceError
from gymserve.serving.server.policy_server import PolicyServer
from gymserve.serving.server.served_policies import ServedPolicies

CLIENTS = 64
CALLS_PER_CLIENT = 20
# A generous timeout, so the calls of 64 client threads on 2 cores really meet in batches.
# Threads for 64 open streams plus the quarter kept for unary calls.
BATCHING = {"batching_max_size": 64, "batching_timeout_micros": 20_000, "workers": 2 * CLIENTS}


@pytest.fixture(scope="module")
def batching_server() -> Iterator[PolicyServer]:
    server = start_server(standard_policies(), **BATCHING)
    yield server
    server.stop(grace=0)


@pytest.fixture(scope="module")
def plain_server() -> Iterator[PolicyServer]:
    server = start_server(standard_policies(), workers=2 * CLIENTS)
    yield server
    server.stop(grace=0)


def model_batches(server: PolicyServer, policy: str) -> tuple[float, float]:
    """How many model calls the batching made for `policy`, and how many observations they held."""
    registry = server.metrics.registry
    labels = {"policy": policy}
    return (
        registry.get_sample_value("gymserve_model_batch_size_count", labels) or 0.0,
        registry.get_sample_value("gymserve_model_batch_size_sum", labels) or 0.0,
    )


def run_clients(server: PolicyServer, work: Callable[[PolicyClient, int], list]) -> list[list]:
    """`work(client, index)` on CLIENTS threads started together, each with its own connection."""
    barrier = threading.Barrier(CLIENTS)

    def run(index: int) -> list:
        with PolicyClient(server.address, timeout=60) as client:
            client.act(observations(1)[0], "linear")  # connect before the race starts
            barrier.wait()
            return work(client, index)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(run, range(CLIENTS)))


def test_64_concurrent_clients_each_get_exactly_their_own_rows(batching_server: PolicyServer):
    calls_before, rows_before = model_batches(batching_server, "linear")

    def work(client: PolicyClient, index: int) -> list:
        sent_rows = 0
        for call in range(CALLS_PER_CLIENT):
            rows = 1 + (index + call) % 3  # single observations and small batches, mixed
            sent = observations(rows, seed=1000 * index + call)
            version = 1 + (index + call) % 2
            payload = sent[0] if rows == 1 else sent
            result = client.act_with_details(payload, "linear", version=version)
            assert result.policy_version == version
            expected = greedy_by_hand(sent, version)
            np.testing.assert_array_equal(result.actions, expected[0] if rows == 1 else expected)
            sent_rows += rows
        return [sent_rows]

    sent_rows = sum(rows for (rows,) in run_clients(batching_server, work))
    calls, rows = model_batches(batching_server, "linear")
    # the connecting calls are counted too: one observation per client
    assert rows - rows_before == sent_rows + CLIENTS
    assert calls - calls_before < (CLIENTS * (CALLS_PER_CLIENT + 1)) / 4, "calls were not merged"


@pytest.mark.parametrize(
    "mode, epsilon", [("stochastic", None), ("epsilon_greedy", 0.5)], ids=["stochastic", "epsilon_greedy"]
)
def test_seeded_calls_answer_the_same_batched_or_not(
    batching_server: PolicyServer, plain_server: PolicyServer, mode: str, epsilon: float | None
):
    def work_on(server: PolicyServer) -> list[list]:
        def work(client: PolicyClient, index: int) -> list:
            answers = []
            for call in range(4):
                sent = observations(3, seed=77 + index)
                seed = index * 10 + call
                result = client.act_with_details(
                    sent, "linear", mode=mode, epsilon=epsilon, seed=seed, return_distribution=True
                )
                answers.append((result.actions.tolist(), result.distribution["logits"].tolist()))
            return answers

        return run_clients(server, work)

    calls_before, _ = model_batches(batching_server, "linear")
    batched, unbatched = work_on(batching_server), work_on(plain_server)
    assert batched == unbatched
    calls, _ = model_batches(batching_server, "linear")
    assert calls - calls_before < CLIENTS * 5 / 2, "calls were not merged"
    # and both equal the policy called directly with the same seed
    policy = LinearPolicy(WEIGHTS[2])  # the latest version
    direct = policy.action(observations(3, seed=77), mode=mode, epsilon=epsilon, seed=0).action
    assert batched[0][0][0] == direct.tolist()
    assert any(len(set(map(str, answers))) > 1 for answers in batched), "the seeds made no difference"


def test_stream_steps_are_batched_and_stateful_policies_keep_their_state(batching_server: PolicyServer):
    calls_before, _ = model_batches(batching_server, "linear")

    def work(client: PolicyClient, index: int) -> list:
        steps = observations(10, seed=500 + index)
        with client.stream("linear", version=2) as linear:
            actions = [linear.step(step).item() for step in steps]
        with client.stream("scripted") as scripted:
            script = [scripted.step(step).item() for step in steps[:4]]
        assert actions == greedy_by_hand(steps, 2).tolist()
        assert script == [0, 1, 2, 3]
        return actions

    run_clients(batching_server, work)
    calls, _ = model_batches(batching_server, "linear")
    assert calls - calls_before < CLIENTS * 11 / 2, "stream steps were not merged"
    # stateful: never batched, so every step is a model call of its own
    assert model_batches(batching_server, "scripted") == (CLIENTS * 4, CLIENTS * 4)


def slow_batching_server(seconds: float, **settings: object) -> tuple[PolicyServer, SlowPolicy]:
    slow = SlowPolicy(seconds)
    served = ServedPolicies()
    served.add("slow", 1, slow)
    unbatched = {"batching_max_size": 1, "batching_timeout_micros": 0, "batching_threads": 1}
    server = start_server(served, **unbatched, **settings)
    with PolicyClient(server.address) as client:
        client.act(observations(1)[0], "slow")  # the first call checks the policy can be batched
    slow.started.clear()
    return server, slow


def occupy_the_batch_thread(client: PolicyClient, slow: SlowPolicy) -> threading.Thread:
    """A call whose batch is running on the only batch thread once this returns."""
    thread = threading.Thread(target=client.act, args=(observations(1)[0], "slow"))
    thread.start()
    assert slow.started.wait(5)
    return thread


def test_a_full_batch_queue_answers_resource_exhausted():
    server, slow = slow_batching_server(1.5, batching_max_enqueued=1)
    observation = observations(1)[0]

    def act_or_error(client: PolicyClient) -> int | PolicyServiceError:
        try:
            return client.act(observation, "slow").item()
        except PolicyServiceError as error:
            return error

    try:
        with PolicyClient(server.address, timeout=10) as client:
            running = occupy_the_batch_thread(client, slow)
            # while the only batch thread is busy, the first of these two calls to arrive takes the
            # one queue place and the other is refused, whichever order they arrive in
            with ThreadPoolExecutor(2) as pool:
                outcomes = list(pool.map(act_or_error, [client, client]))
            running.join()
            assert client.act(observations(2), "slow").tolist() == greedy_by_hand(observations(2)).tolist()
    finally:
        server.stop(grace=0)
    refused = [outcome for outcome in outcomes if isinstance(outcome, PolicyServiceError)]
    assert len(refused) == 1, outcomes
    assert refused[0].code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused[0].details == (
        "policy 'slow' version 1 (greedy) has 1 batches waiting to run, the server's batching_max_enqueued; "
        "retry later"
    )
    answered = [outcome for outcome in outcomes if outcome is not refused[0]]
    assert answered == [greedy_by_hand(observation[None])[0]]


def test_deadlines_hold_while_waiting_for_a_batch_and_shutdown_is_clean():
    server, slow = slow_batching_server(0.8, workers=4)
    try:
        with PolicyClient(server.address, timeout=10) as client:
            running = occupy_the_batch_thread(client, slow)
            client.timeout = 0.2
            began = time.monotonic()
            with pytest.raises(PolicyServiceError) as raised:
                client.act(observations(1)[0], "slow")
            assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - began < 0.6
            running.join()
    finally:
        assert server.stop(grace=1)

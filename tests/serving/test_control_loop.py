"""The control loop keeps its rate over a slow link, counts misses and falls back exactly when late.

Answers travel through a DelayProxy that holds the server's bytes for a set time. The loop runs
at 20 Hz (a 50 ms period) with a 40 ms deadline; "late" is a 150 ms delay, far past the deadline,
so scheduling noise on a loaded machine cannot turn a late answer into a timely one or back.

Rate tolerance: every step period must be within PERIOD_TOLERANCE_S (15 ms, 30% of the period)
of 50 ms. On an idle machine the error is well under 1 ms; a loaded 2-core CI machine can wake
a sleeping thread several milliseconds late. A loop that waited for the late answer would take
at least 150 ms per step, an error of 100 ms, so the tolerance still tells the two apart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import numpy as np
import pytest
from delay_proxy import DelayProxy
from serving_support import greedy_by_hand, observations

from gymserve.cli import main
from gymserve.serving import PolicyClient
from gymserve.serving.client.control_loop import ControlLoop, Histogram
from gymserve.serving.server.policy_server import PolicyServer

RATE_HZ = 20
DEADLINE_S = 0.040
LATE_S = 0.150
STEPS = 16
PERIOD_TOLERANCE_S = 0.015


class RecordingEnv:
    """Serves fixed observations and records the actions applied to it."""

    def __init__(self, observations: np.ndarray):
        self.observations = observations
        self.applied: list = []

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict]:
        self.applied = []
        return self.observations[0], {}

    def step(self, action):
        self.applied.append(action)
        done = len(self.applied) == len(self.observations)
        return self.observations[min(len(self.applied), len(self.observations) - 1)], 1.0, False, done, {}


@pytest.fixture
def proxy(server: PolicyServer) -> Iterator[DelayProxy]:
    with DelayProxy(server.address) as proxy:
        yield proxy


@pytest.fixture
def slow_client(proxy: DelayProxy) -> Iterator[PolicyClient]:
    with PolicyClient(proxy.address, timeout=30) as client:
        yield client


def test_without_delay_every_action_is_the_policys_and_the_rate_holds(slow_client: PolicyClient):
    env = RecordingEnv(observations(STEPS))
    with ControlLoop(slow_client, "linear", RATE_HZ, DEADLINE_S, fallback="zero") as loop:
        episode = loop.run(env)
        stats = loop.stats()
    assert (episode.length, episode.total_return, episode.ended) == (STEPS, float(STEPS), True)
    np.testing.assert_array_equal(env.applied, greedy_by_hand(env.observations, version=2))  # the latest
    assert (stats.steps, stats.misses) == (STEPS, 0)
    assert stats.period_error_p99_s < PERIOD_TOLERANCE_S
    assert stats.latency_max_s < DEADLINE_S


def test_when_every_answer_is_late_every_step_misses_and_applies_the_fallback(
    slow_client: PolicyClient, proxy: DelayProxy
):
    proxy.delay_s = LATE_S
    env = RecordingEnv(observations(STEPS))
    with ControlLoop(slow_client, "linear", RATE_HZ, DEADLINE_S, fallback=1) as loop:
        loop.run(env)
        time.sleep(LATE_S + DEADLINE_S)  # let the last answers arrive, late
        stats = loop.stats()
    assert env.applied == [1] * STEPS
    assert (stats.steps, stats.misses, stats.late_answers) == (STEPS, STEPS, STEPS)
    assert stats.period_error_p99_s < PERIOD_TOLERANCE_S
    # the loop gave up at the deadline every time (plus the same scheduling noise as the period)
    assert stats.latency_p50_s >= DEADLINE_S and stats.latency_max_s < DEADLINE_S + PERIOD_TOLERANCE_S


def test_misses_start_exactly_when_the_link_slows_and_hold_keeps_the_last_action(
    slow_client: PolicyClient, proxy: DelayProxy
):
    inputs = observations(STEPS, seed=1)
    switch = STEPS // 2
    applied, misses = [], []
    with ControlLoop(slow_client, "linear", RATE_HZ, DEADLINE_S, fallback="hold", version=1) as loop:
        next_tick = time.perf_counter()
        for index, observation in enumerate(inputs):
            if index == switch:
                proxy.delay_s = LATE_S
            time.sleep(max(0.0, next_tick - time.perf_counter()))
            next_tick += loop.period_s
            applied.append(loop.step(observation, episode_start=index == 0))
            misses.append(loop.stats().misses)
        stats = loop.stats()
    greedy = greedy_by_hand(inputs)
    assert misses == [0] * switch + list(range(1, STEPS - switch + 1))
    np.testing.assert_array_equal(applied, [*greedy[:switch], *[greedy[switch - 1]] * (STEPS - switch)])
    assert stats.period_error_p99_s < PERIOD_TOLERANCE_S


def test_hold_before_any_answer_applies_the_zero_action_and_stats_reset(
    slow_client: PolicyClient, proxy: DelayProxy
):
    proxy.delay_s = LATE_S
    with ControlLoop(slow_client, "linear", RATE_HZ, DEADLINE_S) as loop:
        assert loop.step(observations(1)[0], episode_start=True) == 0
        assert loop.stats(reset=True).misses == 1
        assert (loop.stats().steps, loop.stats().misses) == (0, 0)


def test_a_refused_observation_leaves_the_next_step_its_own_answer(client: PolicyClient):
    inputs = observations(2)
    with ControlLoop(client, "linear", RATE_HZ, DEADLINE_S, version=1) as loop:
        with pytest.raises(ValueError, match="observations must be numbers"):
            loop.step("not an observation", episode_start=True)
        assert [loop.step(observation) for observation in inputs] == list(greedy_by_hand(inputs))
        assert loop.stats().misses == 0


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((0, 0.01), "rate_hz must be a positive number, got 0"),
        ((100, 0.02), r"deadline_s must be in \(0, 0.01\], the period at 100 Hz; got 0.02"),
        ((100, 0.005, "wait"), "fallback must be one of hold, zero or an action, got 'wait'"),
        ((100, 0.005, [0, 1]), r"the fallback action has shape \(2,\), the action space \(\)"),
    ],
)
def test_bad_settings_are_refused_before_the_loop_starts(client: PolicyClient, arguments, message):
    with pytest.raises(ValueError, match=message):
        ControlLoop(client, "linear", *arguments)


def test_histogram_percentiles_are_bucket_upper_edges_capped_at_the_maximum():
    histogram = Histogram()
    for milliseconds in [1.0] * 98 + [10.0, 20.0]:
        histogram.add(milliseconds / 1e3)
    assert 1e-3 <= histogram.percentile(50) < 1.1e-3
    assert 10e-3 <= histogram.percentile(99) < 11e-3
    assert histogram.percentile(100) == histogram.max == 20e-3
    assert np.isnan(Histogram().percentile(50))


def test_play_at_a_control_rate_prints_each_episodes_misses_and_latencies(
    server: PolicyServer, capsys: pytest.CaptureFixture
):
    argv = ["play", "--env", "gymserve/CartPole-v1", "--remote", server.address, "--policy", "linear"]
    assert (
        main([*argv, "--control-hz", "100", "--deadline-ms", "8", "--episodes", "2", "--fallback", "zero"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    for episode_line, stats_line in zip(lines[::2], lines[1::2], strict=True):
        length = re.fullmatch(r"episode \d: return [\d.]+, length (\d+)", episode_line)[1]
        assert re.fullmatch(
            rf"  at 100 Hz: misses \d+/{length}, latency p50 [\d.]+ ms p99 [\d.]+ ms max [\d.]+ ms, "
            r"period error p50 [\d.]+ ms p99 [\d.]+ ms",
            stats_line,
        )

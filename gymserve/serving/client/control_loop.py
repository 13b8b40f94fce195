"""A control loop that keeps its rate: a robot's controller cannot wait for a late answer.

    with PolicyClient("127.0.0.1:8500") as client:
        with ControlLoop(client, "minitaur", rate_hz=100, deadline_s=0.005) as loop:
            episode = loop.run(env, steps=1000)       # or call loop.step(observation) at each tick
            print(loop.stats().summary())

`step` sends the observation on a StreamAct session without waiting for the network, then waits
at most `deadline_s` for its action. An action counts only if it arrives within `deadline_s`
after its observation was sent; otherwise the step is a miss and applies the fallback:
"hold" (the last applied action, or the zero action before any has been applied), "zero"
(zeros for a box, the first action of a discrete space) or a given safe action. An answer that
arrives after its step gave up is dropped and counted as late.

End-to-end latency (observation handed to `step` -> action returned, fallbacks included) and the
error of each step period against 1 / rate_hz go into fixed-bucket histograms.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gymserve.serving.client.policy_client import PolicyClient, PolicyServiceError
from gymserve.serving.client.spaces import WireSpace

FALLBACKS = ("hold", "zero")
# Bucket upper edges from 10 microseconds to about 100 seconds, each 2**(1/8) (about 9%) wider
# than the last, so a percentile read off the buckets is at most 9% above the true value.
BUCKET_EDGES = 1e-5 * 2.0 ** (np.arange(8 * 24) / 8)


class Env(Protocol):
    """What `ControlLoop.run` needs of an environment (a gymnasium Env has it)."""

    def reset(self, *, seed: int | None = None) -> tuple[Any, dict]: ...

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]: ...


class Histogram:
    """Counts of durations in the fixed `BUCKET_EDGES` buckets, plus the exact maximum."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(BUCKET_EDGES) + 1, np.int64)
        self.max = 0.0

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def add(self, seconds: float) -> None:
        self.counts[np.searchsorted(BUCKET_EDGES, seconds)] += 1
        self.max = max(self.max, seconds)

    def percentile(self, percent: float) -> float:
        """The upper edge of the bucket holding the `percent`-th percentile (never above the max)."""
        total = self.total
        if total == 0:
            return math.nan
        bucket = int(np.searchsorted(np.cumsum(self.counts), math.ceil(total * percent / 100)))
        return min(float(BUCKET_EDGES[bucket]) if bucket < len(BUCKET_EDGES) else math.inf, self.max)


@dataclass(frozen=True)
class ControlLoopStats:
    """Steps taken, misses (fallback applied), late answers dropped, and percentiles in seconds."""

    steps: int
    misses: int
    late_answers: int
    latency_p50_s: float
    latency_p99_s: float
    latency_max_s: float
    period_error_p50_s: float
    period_error_p99_s: float

    def summary(self) -> str:
        def ms(seconds: float) -> str:
            return f"{seconds * 1e3:.2f} ms"

        return (
            f"misses {self.misses}/{self.steps}, latency p50 {ms(self.latency_p50_s)} "
            f"p99 {ms(self.latency_p99_s)} max {ms(self.latency_max_s)}, period error "
            f"p50 {ms(self.period_error_p50_s)} p99 {ms(self.period_error_p99_s)}"
        )


@dataclass(frozen=True)
class EpisodeRun:
    """One episode `ControlLoop.run` played: its return, its steps, and whether the env ended it."""

    total_return: float
    length: int
    ended: bool


class ControlLoop:
    """Runs served policy `policy` at `rate_hz`, never waiting more than `deadline_s` for an action.

    `step`, `run` and `stats` belong to one thread, the controller's; answers are read on another.
    """

    def __init__(
        self,
        client: PolicyClient,
        policy: str,
        rate_hz: float,
        deadline_s: float,
        fallback: str | Any = "hold",
        *,
        version: int | None = None,
        mode: str = "greedy",
        epsilon: float | None = None,
    ):
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number, got {rate_hz}")
        self.period_s = 1.0 / rate_hz
        if not 0 < deadline_s <= self.period_s:
            raise ValueError(
                f"deadline_s must be in (0, {self.period_s:g}], the period at {rate_hz:g} Hz; "
                f"got {deadline_s}"
            )
        self.deadline_s = deadline_s
        info = client.get_policy(policy, version)
        self._zero_action = zero_action(info.action_space)
        self._fallback = _fallback_action(fallback, info.action_space, self._zero_action)
        self._session = client.stream(info.name, version=info.version, mode=mode, epsilon=epsilon)
        self._condition = threading.Condition()
        self._sent = 0  # observations sent; the n-th answer belongs to the n-th observation
        self._received = 0
        self._waiting_for = 0  # the observation whose step is still waiting, 0 when none is
        self._answer: Any = None
        self._error: PolicyServiceError | None = None
        self._closing = False
        self._last_action: Any = self._zero_action
        self._last_step_at: float | None = None
        self._reset_counters()
        self._receiver = threading.Thread(
            target=self._receive_answers, name="control-loop-receiver", daemon=True
        )
        self._receiver.start()

    def step(self, observation: Any, *, episode_start: bool = False) -> Any:
        """The action to apply now: the policy's answer if it came within the deadline, else the fallback.

        Raises PolicyServiceError once the stream has failed (a broken connection is not a late
        answer; open a new ControlLoop to go on).
        """
        taken_at = time.perf_counter()
        if self._last_step_at is not None and not episode_start:
            self._period_errors.add(abs(taken_at - self._last_step_at - self.period_s))
        self._last_step_at = taken_at
        with self._condition:
            if self._error is not None:
                raise self._error
            self._session.send(observation, episode_start=episode_start)  # may refuse the observation
            self._sent += 1
            number = self._waiting_for = self._sent
            answered = self._condition.wait_for(
                lambda: self._received >= number or self._error is not None,
                timeout=taken_at + self.deadline_s - time.perf_counter(),
            )
            self._waiting_for = 0
            if self._error is not None and self._received < number:
                raise self._error
        self._steps += 1
        if answered:
            self._last_action = self._answer
        else:
            self._misses += 1
            if self._fallback is not None:
                self._last_action = self._fallback
        self._latencies.add(time.perf_counter() - taken_at)
        return self._last_action

    def run(self, env: Env, steps: int | None = None, *, seed: int | None = None) -> EpisodeRun:
        """Play one episode of `env`, one step per period, stopping after `steps` steps if given.

        The env steps in the time the deadline leaves of each period; a period that overruns
        shows in the period error, and the loop does not try to catch up on the ticks it lost.
        """
        observation, _ = env.reset(seed=seed)
        total_return, length, ended = 0.0, 0, False
        next_tick = time.perf_counter()
        while not ended and (steps is None or length < steps):
            delay = next_tick - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            action = self.step(observation, episode_start=length == 0)
            observation, reward, terminated, truncated, _ = env.step(action)
            total_return += float(reward)
            length += 1
            ended = bool(terminated or truncated)
            next_tick = max(next_tick + self.period_s, time.perf_counter())
        return EpisodeRun(total_return, length, ended)

    def stats(self, *, reset: bool = False) -> ControlLoopStats:
        """The counts and percentiles since the loop began (or since the last `reset=True`)."""
        stats = ControlLoopStats(
            self._steps,
            self._misses,
            self._late_answers,
            self._latencies.percentile(50),
            self._latencies.percentile(99),
            self._latencies.max,
            self._period_errors.percentile(50),
            self._period_errors.percentile(99),
        )
        if reset:
            self._reset_counters()
        return stats

    def close(self) -> None:
        """End the stream; answers still on their way are dropped."""
        with self._condition:
            self._closing = True
        self._session.finish_sending()
        self._receiver.join()
        self._session.close()

    def __enter__(self) -> ControlLoop:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _reset_counters(self) -> None:
        self._steps = self._misses = self._late_answers = 0
        self._latencies, self._period_errors = Histogram(), Histogram()

    def _receive_answers(self) -> None:
        while True:
            try:
                actions = self._session.receive().actions
            except PolicyServiceError as error:
                with self._condition:
                    if not self._closing:
                        self._error = error
                    self._condition.notify_all()
                return
            with self._condition:
                self._received += 1
                if self._received == self._waiting_for:
                    self._answer = actions
                    self._condition.notify_all()
                else:
                    self._late_answers += 1


def zero_action(space: WireSpace) -> Any:
    """Zeros for a box; the first action of a discrete space."""
    if space.kind == "discrete":
        return np.int64(space.start)
    return np.zeros(space.shape, space.dtype)


def _fallback_action(fallback: str | Any, space: WireSpace, zero: Any) -> Any:
    """The action a miss applies; None means hold the last applied action."""
    if isinstance(fallback, str):
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)} or an action, got {fallback!r}")
        return None if fallback == "hold" else zero
    action = np.asarray(fallback, dtype=zero.dtype)
    if action.shape != np.shape(zero):
        raise ValueError(f"the fallback action has shape {action.shape}, the action space {np.shape(zero)}")
    return action[()] if action.ndim == 0 else action

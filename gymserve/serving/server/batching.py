"""Dynamic batching: concurrent calls to one policy version share one model call.

Many clients that each send one observation would otherwise run one model call each. With
batching on, a call's observations join the open batch of its policy version and kind of
model call (greedy actions, or distribution parameters); the first call of a batch waits up
to `batching_timeout_micros` for others (less once the batch holds `batching_max_size` rows), then
for a free batch thread, and runs the whole batch on its own thread, handing every waiting call
exactly its rows. Calls keep joining while the batch waits for a thread, so batches grow with
the load even with a timeout of 0, where a lone call on an idle server does not wait at all.

Only the model call is shared. Each call still validates its observations, draws its random
choices (stochastic sampling, epsilon-greedy exploration) from its own generator and clips
its actions, so a seeded call returns the same action batched or not: the greedy actions of
a row never depend on the other rows, and sampling draws from per-call distribution rows.
Greedy and epsilon-greedy calls share a batch (both start from the greedy actions);
stochastic calls and `return_distribution` share the other. Stateful policies (a non-empty
initial state, as scripted policies have) are never batched.

At most `batching_threads` batches run at once over all policies; a batch waiting for one
of those slots is enqueued, and a call that would make more than `batching_max_enqueued`
enqueued batches for its policy version is refused with `BatchQueueFullError`. A batch holds
the policy object it was opened for, so a reload that swaps versions never splits a batch.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gymserve.policies import ActionMode, Distribution, Policy, PolicyStep
from gymserve.policies.base import PolicyState
from gymserve.policies.distributions import distribution_from_parameters
from gymserve.serving.server.config import BatchingSettings
from gymserve.serving.server.served_policies import ServedVersion


class BatchQueueFullError(Exception):
    """A policy version already has as many enqueued batches as the server allows."""


@dataclass
class _Batch:
    """Observations of the calls that joined, in order, and what the model call returned."""

    parts: list[np.ndarray] = field(default_factory=list)
    rows: int = 0
    closed: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    outputs: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


class BatchQueue:
    """The batches of one policy version and one kind of model call.

    `compute` maps a batch of observations to named arrays with one row per observation.
    """

    def __init__(
        self,
        describe: str,
        compute: Callable[[np.ndarray], dict[str, np.ndarray]],
        settings: BatchingSettings,
        slots: threading.Semaphore,
        observe: Callable[[int], None],
    ):
        self._describe = describe
        self._compute = compute
        self._settings = settings
        self._slots = slots
        self._observe = observe
        self._lock = threading.Lock()
        self._open: _Batch | None = None
        self._enqueued = 0  # batches opened but not yet running

    def run(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        """The model outputs for `observations` (a batch), computed together with concurrent calls."""
        count = len(observations)
        with self._lock:
            batch, leads = self._open, False
            if batch is not None and batch.rows + count > self._settings.batching_max_size:
                self._close(batch)
                batch = None
            if batch is None:
                if self._enqueued >= self._settings.batching_max_enqueued:
                    raise BatchQueueFullError(
                        f"{self._describe} has {self._enqueued} batches waiting to run, the server's "
                        "batching_max_enqueued; retry later"
                    )
                batch, leads = _Batch(), True
                self._open = batch
                self._enqueued += 1
            start = batch.rows
            batch.parts.append(observations)
            batch.rows += count
            if batch.rows >= self._settings.batching_max_size:
                self._close(batch)
        if leads:
            self._lead(batch)
        else:
            batch.done.wait()
        if batch.error is not None:
            raise batch.error
        return {name: rows[start : start + count] for name, rows in batch.outputs.items()}

    def _close(self, batch: _Batch) -> None:
        """Let no more calls join `batch` (call with the lock held)."""
        if self._open is batch:
            self._open = None
        batch.closed.set()

    def _lead(self, batch: _Batch) -> None:
        """Wait for the batch to fill or time out, then for a batch thread; run it and release its calls.

        The batch stays open while it waits for a batch thread, so calls keep joining it for as
        long as the model is busy: under load batches grow without a timeout.
        """
        batch.closed.wait(self._settings.batching_timeout_micros / 1e6)
        try:
            with self._slots:
                with self._lock:
                    self._close(batch)
                    self._enqueued -= 1
                observations = batch.parts[0] if len(batch.parts) == 1 else np.concatenate(batch.parts)
                batch.outputs = self._compute(observations)
            self._observe(batch.rows)
        except BaseException as error:  # every call of the batch fails the same way
            batch.error = error
        finally:
            batch.done.set()


class BatchScheduler:
    """The batch queues of every batched policy version, and the slots that bound running batches."""

    def __init__(self, settings: BatchingSettings, observe: Callable[[str, int], None]):
        self.settings = settings
        self._observe = observe
        self._slots = threading.BoundedSemaphore(settings.batching_threads)
        self._batched: weakref.WeakKeyDictionary[ServedVersion, Policy] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def policy_for(self, served: ServedVersion) -> Policy:
        """The policy that answers for `served`: batched unless it keeps state between steps."""
        batched = self._batched.get(served)
        if batched is None:
            with self._lock:
                batched = self._batched.get(served)
                if batched is None:
                    batched = self._batchable(served)
                    self._batched[served] = batched
        return batched

    def _batchable(self, served: ServedVersion) -> Policy:
        policy = served.policy
        if policy.get_initial_state(1) != () or not _rebuilds_distributions(policy):
            return policy
        describe = f"policy {served.name!r} version {served.version}"
        observe = functools.partial(self._observe, served.name)
        queues = [
            BatchQueue(f"{describe} ({kind})", compute, self.settings, self._slots, observe)
            for kind, compute in (("greedy", _greedy_rows(policy)), ("distribution", _parameter_rows(policy)))
        ]
        return BatchedPolicy(policy, *queues)


def _rebuilds_distributions(policy: Policy) -> bool:
    """Whether the distribution parameters of `policy` describe its distribution (true of exports)."""
    observation = policy.observation_space.sample()[None]
    try:
        distribution_from_parameters(policy.distribution(observation).parameters(), policy.action_space)
    except ValueError:
        return False
    return True


def _greedy_rows(policy: Policy) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    return lambda observations: {"action": policy.action(observations, (), ActionMode.GREEDY).action}


def _parameter_rows(policy: Policy) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    return lambda observations: policy.distribution(observations).parameters()


class BatchedPolicy(Policy):
    """`policy` whose model calls go through batch queues; choices stay per call (module docstring)."""

    def __init__(self, policy: Policy, greedy: BatchQueue, parameters: BatchQueue):
        super().__init__(policy.observation_space, policy.action_space)
        self.wrapped = policy
        self._greedy, self._parameters = greedy, parameters

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        if mode is ActionMode.STOCHASTIC:
            return PolicyStep(self._distribution(observations, state).sample(rng), state)
        return PolicyStep(self._greedy.run(observations)["action"], state)

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return distribution_from_parameters(self._parameters.run(observations), self.action_space)

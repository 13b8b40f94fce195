"""Proportional prioritized experience replay (Schaul et al., 2016) on top of the FIFO ReplayBuffer.

Item i is drawn with probability P(i) = p_i^alpha / sum_k p_k^alpha, where p_i is |TD error| +
epsilon from the last time it was learned from, and new items get the largest priority seen so
far, so each is learned from at least once soon. The bias of the non-uniform draw is corrected
with importance weights w_i = (N P(i))^-beta, divided by the largest weight of the batch so they
only ever scale updates down; beta is annealed to 1 over training by the algorithm.

For n-step returns the priority belongs to the window's first item. Priorities are checkpointed
with the items, so a resumed run draws what an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gymserve.agents.off_policy.replay_buffer import ReplayBuffer
from gymserve.agents.off_policy.sum_tree import SumTree

PRIORITY_FIELD = "priority"
OLDEST_SLOT_FIELD = "oldest_slot"  # where the oldest item was stored: draws depend on the layout


class PrioritizedReplayBuffer(ReplayBuffer):
    """A ReplayBuffer that also samples windows in proportion to their first item's priority."""

    def __init__(
        self,
        data_spec: Mapping[str, Any],
        capacity: int,
        priority_exponent: float = 0.6,
        priority_epsilon: float = 1e-6,
        seed: int | None = None,
        frame_stacks: Sequence[tuple[str, str]] = (),
        frame_stacks_fallback: bool = False,
    ):
        if {PRIORITY_FIELD, OLDEST_SLOT_FIELD} & set(data_spec):
            raise ValueError(f"{PRIORITY_FIELD!r} and {OLDEST_SLOT_FIELD!r} are kept by the buffer itself")
        super().__init__(
            data_spec, capacity, seed, frame_stacks=frame_stacks, frame_stacks_fallback=frame_stacks_fallback
        )
        if priority_exponent < 0 or priority_epsilon <= 0:
            raise ValueError(
                f"priority_exponent must be >= 0 and priority_epsilon > 0, got {priority_exponent} "
                f"and {priority_epsilon}"
            )
        self.priority_exponent = priority_exponent
        self.priority_epsilon = priority_epsilon
        self._tree = SumTree(1)
        self._priorities = np.zeros((0, 0))  # (time slot, env row), as stored
        self._max_priority = 1.0

    def add_batch(self, items: Mapping[str, Any]) -> None:
        head = self._head
        super().add_batch(items)
        self._set_priorities(head * self.num_envs + np.arange(self.num_envs), self._max_priority)

    def sample_prioritized_windows(
        self, batch_size: int, rng: np.random.Generator, num_steps: int, importance_exponent: float
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """Like `sample_episode_windows`, with starts drawn by priority.

        Returns the windows, their mask, the positions to pass to `update_priorities`, and the
        importance weights (N P(i))^-importance_exponent normalised by the batch's largest.
        """
        if self.num_frames == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer; add_batch some items first")
        positions = self._tree.find(rng.random(batch_size) * self._tree.total)
        slots, rows = np.divmod(positions, self.num_envs)
        starts = (slots - self._oldest()) % self._slots
        windows, mask = self._episode_windows(starts, rows, num_steps)
        probabilities = self._tree.values(positions) / self._tree.total
        weights = (self.num_frames * probabilities) ** -importance_exponent
        return windows, mask, positions, (weights / weights.max()).astype(np.float32)

    def update_priorities(self, positions: np.ndarray, td_errors: np.ndarray) -> None:
        """Give the items at `positions` the priority |TD error| + epsilon."""
        priorities = np.abs(np.asarray(td_errors, np.float64)).reshape(-1) + self.priority_epsilon
        if not np.all(np.isfinite(priorities)):
            raise ValueError("TD errors must be finite to become priorities")
        self._set_priorities(np.asarray(positions).reshape(-1), priorities)
        self._max_priority = max(self._max_priority, float(priorities.max()))

    def gather_all(self, frames_once: bool = False) -> dict[str, np.ndarray]:
        items = super().gather_all(frames_once)
        if self.num_frames == 0:
            return {**items, PRIORITY_FIELD: np.zeros((0, 0)), OLDEST_SLOT_FIELD: np.array(0)}
        times = (self._oldest() + np.arange(self._size)) % self._slots
        priorities = np.swapaxes(self._priorities[times], 0, 1)
        return {**items, PRIORITY_FIELD: priorities, OLDEST_SLOT_FIELD: np.array(self._oldest())}

    def load(self, items: Mapping[str, np.ndarray]) -> None:
        items = dict(items)
        priorities = items.pop(PRIORITY_FIELD, None)
        oldest = int(items.pop(OLDEST_SLOT_FIELD, 0))
        super().load(items)
        if self.num_frames == 0:
            return
        if priorities is None:
            priorities = np.ones((self.num_envs, self._size))
        self._priorities[: self._size] = np.swapaxes(
            np.asarray(priorities, np.float64)[:, -self._size :], 0, 1
        )
        if oldest < self._slots:  # the same layout as when saved, so that the same draws follow
            self._roll_slots(oldest)
            self._priorities = np.roll(self._priorities, oldest, axis=0)
            self._head = (oldest + self._size) % self._slots
        self._set_priorities(np.arange(self._priorities.size), self._priorities.reshape(-1))
        self._max_priority = max(1.0, float(self._priorities.max()))

    def clear(self) -> None:
        super().clear()
        self._tree = SumTree(1)
        self._priorities = np.zeros((0, 0))
        self._max_priority = 1.0

    def _allocate(self, num_envs: int) -> None:
        super()._allocate(num_envs)
        self._tree = SumTree(self._slots * num_envs)
        self._priorities = np.zeros((self._slots, num_envs))

    def _set_priorities(self, positions: np.ndarray, priorities: np.ndarray | float) -> None:
        self._priorities.reshape(-1)[positions] = priorities
        priorities = np.asarray(priorities, np.float64)
        self._tree.set(
            positions, np.where(priorities > 0, priorities, 0.0) ** self.priority_exponent * (priorities > 0)
        )

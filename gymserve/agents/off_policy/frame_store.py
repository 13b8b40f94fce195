"""Stacked-frame observations of a replay buffer kept as single frames, each stored once.

An Atari observation is the last k frames (k = 4), and a transition's next observation is the
next one's observation: stored as they come, every frame would be held 2k times. Here each
transition keeps only the newest frame of its next observation; its observation and the rest of
its next observation are the frames of the transitions before it in the same env row. Where that
chain starts (an episode's first transition, or the oldest transition still stored) the whole
observation stack is kept beside it. Transition t's observation and next observation are then
the k + 1 frames

    W = (S_e[d], ..., S_e[k-1], frame[e], ..., frame[t])   with d = t - e < k, or
    W = (frame[t-k], ..., frame[t])                        when no chain start lies within k - 1 back,

observation W[:k] and next observation W[1:], where e is the nearest chain start at or before t
and S_e its stack. An observation that is not its predecessor's next observation (compared byte
for byte when added) starts a chain, so what is read back is always what was added.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

EXPORT_SUFFIXES = ("_frames", "_chain_starts", "_stacks")  # `export`'s arrays, named after the observation


class FrameStore:
    """Pairs (observation, next observation) of shape (k, *frame), per time slot and env row."""

    def __init__(self, slots: int, num_envs: int, stack_shape: tuple[int, ...], dtype: np.dtype):
        if len(stack_shape) < 2:
            raise ValueError(f"stacked frames need a shape (stack, *frame), got {stack_shape}")
        self.stack = stack_shape[0]
        self._slots = slots
        self._frames = np.zeros((slots, num_envs, *stack_shape[1:]), dtype)  # newest of next observation
        self._start = np.full((slots, num_envs), -1, np.int64)  # index into _stacks, -1 if chained
        self._stacks = np.zeros((num_envs, *stack_shape), dtype)  # the observations of chain starts
        self._free = list(range(num_envs))
        self._last_next = np.zeros((num_envs, *stack_shape), dtype)  # each row's newest next observation

    @property
    def nbytes(self) -> int:
        arrays = (self._frames, self._start, self._stacks, self._last_next)
        return sum(array.nbytes for array in arrays)

    def add(self, slot: int, chained: bool, observations: np.ndarray, next_observations: np.ndarray) -> None:
        """Store one transition per row at `slot`; `chained`: the slot before holds each row's
        previous transition (an observation equal to its next observation continues the chain).
        The pairs must be frame stacks (`are_stacks`)."""
        self._release(slot)
        self._frames[slot] = next_observations[:, -1]
        starts = np.ones(len(observations), bool)  # rows whose chain of frames starts here
        if chained:
            starts = ~(observations == self._last_next).reshape(len(observations), -1).all(axis=1)
        for row in np.flatnonzero(starts):
            self._keep_stack(slot, row, observations[row])
        self._last_next[...] = next_observations

    @staticmethod
    def are_stacks(observations: np.ndarray, next_observations: np.ndarray) -> bool:
        """Whether each next observation is its observation shifted on by one frame, as stored here."""
        return np.array_equal(next_observations[:, :-1], observations[:, 1:])

    def become_oldest(self, slot: int) -> None:
        """Keep the observations at `slot` whole: the slot before it is about to be overwritten."""
        rows = np.flatnonzero(self._start[slot] < 0)
        if len(rows):
            observations, _ = self.gather(np.full(len(rows), slot), rows)
            for row, observation in zip(rows, observations, strict=True):
                self._keep_stack(slot, row, observation)

    def gather(self, slots: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The observations and next observations at `slots` of env `rows` (broadcast together)."""
        slots, rows = np.broadcast_arrays(np.asarray(slots), np.asarray(rows))
        distance = np.full(slots.shape, self.stack)
        for back in reversed(range(self.stack)):  # the nearest chain start wins
            distance = np.where(self._start[(slots - back) % self._slots, rows] >= 0, back, distance)
        steps = np.arange(self.stack + 1)
        window = self._frames[(slots[..., None] + steps - self.stack) % self._slots, rows[..., None]]
        from_stack = distance[..., None] + steps < self.stack
        if from_stack.any():
            starts = self._start[(slots - np.minimum(distance, self.stack - 1)) % self._slots, rows]
            indices = np.broadcast_to(starts[..., None], from_stack.shape)[from_stack]
            window[from_stack] = self._stacks[indices, (distance[..., None] + steps)[from_stack]]
        leading = (slice(None),) * slots.ndim
        return window[(*leading, slice(None, -1))], window[(*leading, slice(1, None))]

    def export(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The transitions at `slots` (oldest first) as frames, what checkpoints keep: each row's
        newest frames (num_envs, time, *frame), where chains start (num_envs, time) and the
        observations there, row by row."""
        starts = self._start[slots].T
        return np.swapaxes(self._frames[slots], 0, 1), starts >= 0, self._stacks[starts[starts >= 0]]

    @staticmethod
    def replay(
        frames: np.ndarray, chain_starts: np.ndarray, stacks: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """What `export` gave as (observations, next observations) of all rows, step by step."""
        indices = np.cumsum(chain_starts.reshape(-1)).reshape(chain_starts.shape) - 1
        next_observations = np.zeros((len(frames), *stacks.shape[1:]), stacks.dtype)
        for time in range(frames.shape[1]):
            starts = chain_starts[:, time].reshape(-1, *[1] * (stacks.ndim - 1))
            observations = np.where(starts, stacks[np.maximum(indices[:, time], 0)], next_observations)
            next_observations = np.concatenate([observations[:, 1:], frames[:, time, None]], axis=1)
            yield observations, next_observations

    def roll(self, shift: int) -> None:
        """Move every transition `shift` slots on, as np.roll does."""
        self._frames = np.roll(self._frames, shift, axis=0)
        self._start = np.roll(self._start, shift, axis=0)

    def _keep_stack(self, slot: int, row: int, observation: np.ndarray) -> None:
        if self._start[slot, row] < 0:
            if not self._free:
                grown = len(self._stacks)
                self._stacks = np.concatenate([self._stacks, np.zeros_like(self._stacks)])
                self._free = list(range(2 * grown - 1, grown - 1, -1))
            self._start[slot, row] = self._free.pop()
        self._stacks[self._start[slot, row]] = observation

    def _release(self, slot: int) -> None:
        self._free.extend(int(index) for index in self._start[slot] if index >= 0)
        self._start[slot] = -1

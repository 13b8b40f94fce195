"""A FIFO replay buffer in numpy with uniform sampling, in the shape of TF-Agents' API.

    buffer = ReplayBuffer({"observation": ((4,), np.float32), "action": ((), np.int64),
                           "reward": ((), np.float32), "done": ((), np.bool_)}, capacity=50_000)
    buffer.add_batch(items)                        # one row per parallel env: (num_envs, *shape)
    batch = buffer.sample(64, rng)                 # fast path: dict of (64, *shape) arrays
    dataset = buffer.as_dataset(64, num_steps=2)   # tf.data: dicts of (64, 2, *shape) tensors

Every spec must have a boolean field `done`: True on the last item of an episode. It is how the
buffer knows episode boundaries, so a window of `num_steps` consecutive items of one env never
spans two episodes (only its last item may be `done`). Items are stored per env row in time
order; once `capacity` items are held, each new batch overwrites the oldest, and windows are
taken in time order, so none straddles the write position.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

DONE_FIELD = "done"
_REJECTION_ROUNDS = 8  # then fall back to listing every valid window (rarely reached)


class ReplayBuffer:
    """Stores `capacity` items (batches of transitions) and samples them uniformly."""

    def __init__(self, data_spec: Mapping[str, Any], capacity: int, seed: int | None = None):
        """`data_spec` maps a field name to `(shape, dtype)` or to anything with `.shape` and
        `.dtype` (a tf.TensorSpec); `seed` drives `as_dataset`'s sampling."""
        self.data_spec = _parse_spec(data_spec)
        if not isinstance(capacity, int | np.integer) or capacity < 1:
            raise ValueError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._seed = seed
        self._storage: dict[str, np.ndarray] = {}
        self._num_envs = 0
        self._slots = 0  # time positions per env row
        self._size = 0  # filled time positions
        self._head = 0  # the time position the next batch is written to

    @property
    def num_envs(self) -> int:
        """Rows per batch, fixed by the first `add_batch` (0 before it)."""
        return self._num_envs

    @property
    def num_frames(self) -> int:
        """Items currently stored."""
        return self._size * self._num_envs

    def add_batch(self, items: Mapping[str, Any]) -> None:
        """Append one item per env row; every field needs a leading (num_envs,) dimension."""
        arrays = self._check_batch(items)
        if not self._storage:
            self._allocate(len(arrays[DONE_FIELD]))
        for name, array in arrays.items():
            self._storage[name][self._head] = array
        self._head = (self._head + 1) % self._slots
        self._size = min(self._size + 1, self._slots)

    def sample(
        self, batch_size: int, rng: np.random.Generator, num_steps: int | None = None
    ) -> dict[str, np.ndarray]:
        """`batch_size` items, or windows of `num_steps` consecutive items, drawn uniformly.

        Returns arrays of shape (batch_size, *shape), or (batch_size, num_steps, *shape).
        """
        steps = 1 if num_steps is None else num_steps
        if steps < 1:
            raise ValueError(f"num_steps must be at least 1, got {num_steps}")
        if self._size < steps:
            raise ValueError(
                f"cannot sample windows of {steps} items: the buffer holds {self._size} per env row"
            )
        starts, rows = self._sample_window_starts(batch_size, steps, rng)
        times = (self._oldest() + starts[:, None] + np.arange(steps)) % self._slots
        batch = {name: array[times, rows[:, None]] for name, array in self._storage.items()}
        if num_steps is None:
            batch = {name: array[:, 0] for name, array in batch.items()}
        return batch

    def sample_episode_windows(
        self, batch_size: int, rng: np.random.Generator, num_steps: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Windows of `num_steps` items that start at uniformly drawn items and may be cut short.

        Returns the windows, arrays of shape (batch_size, num_steps, *shape), and a boolean mask
        (batch_size, num_steps) that is False after the episode's last item (a `done` item is
        kept) and past the newest stored item. Every item is equally likely to start a window,
        which is what n-step returns need; `sample` instead drops windows that would be cut.
        """
        if num_steps < 1:
            raise ValueError(f"num_steps must be at least 1, got {num_steps}")
        if self._size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer; add_batch some items first")
        starts = rng.integers(self._size, size=batch_size)
        rows = rng.integers(self._num_envs, size=batch_size)
        return self._episode_windows(starts, rows, num_steps)

    def _episode_windows(
        self, starts: np.ndarray, rows: np.ndarray, num_steps: int
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The windows of `sample_episode_windows` starting at time offsets `starts` (from the
        oldest item) of env `rows`."""
        offsets = starts[:, None] + np.arange(num_steps)
        stored = offsets < self._size
        times = (self._oldest() + np.minimum(offsets, self._size - 1)) % self._slots
        batch = {name: array[times, rows[:, None]] for name, array in self._storage.items()}
        done = batch[DONE_FIELD]
        ended_before = (np.cumsum(done, axis=1) - done) > 0
        return batch, stored & ~ended_before

    def as_dataset(self, sample_batch_size: int | None = None, num_steps: int | None = None):
        """An endless tf.data.Dataset of uniform samples of the current contents.

        Without `sample_batch_size`, elements are single items (or windows).
        """
        import tensorflow as tf

        rng = np.random.default_rng(self._seed)
        leading = ([] if sample_batch_size is None else [sample_batch_size]) + (
            [] if num_steps is None else [num_steps]
        )

        def samples() -> Iterator[dict[str, np.ndarray]]:
            while True:
                batch = self.sample(sample_batch_size or 1, rng, num_steps)
                if sample_batch_size is None:
                    batch = {name: array[0] for name, array in batch.items()}
                yield batch

        signature = {
            name: tf.TensorSpec([*leading, *shape], tf.as_dtype(dtype), name=name)
            for name, (shape, dtype) in self.data_spec.items()
        }
        return tf.data.Dataset.from_generator(samples, output_signature=signature)

    def gather_all(self) -> dict[str, np.ndarray]:
        """Every stored item, as arrays of shape (num_envs, time, *shape), oldest first."""
        if not self._storage:
            return {name: np.zeros((0, 0, *shape), dtype) for name, (shape, dtype) in self.data_spec.items()}
        times = (self._oldest() + np.arange(self._size)) % self._slots
        return {name: np.swapaxes(array[times], 0, 1) for name, array in self._storage.items()}

    def clear(self) -> None:
        """Drop every item; the next `add_batch` may use another number of env rows."""
        self._storage = {}
        self._num_envs = self._slots = self._size = self._head = 0

    def load(self, items: Mapping[str, np.ndarray]) -> None:
        """Replace the contents with `gather_all()`'s output (as saved in a checkpoint)."""
        self.clear()
        length = np.shape(items.get(DONE_FIELD, ()))[1:2]
        if not length or length[0] == 0:
            return
        self._check_batch({name: np.asarray(array)[:, 0] for name, array in items.items()})
        self._allocate(len(items[DONE_FIELD]))
        kept = min(length[0], self._slots)
        for name in self.data_spec:
            self._storage[name][:kept] = np.swapaxes(np.asarray(items[name])[:, -kept:], 0, 1)
        self._size = kept
        self._head = kept % self._slots

    def _allocate(self, num_envs: int) -> None:
        if num_envs > self.capacity:
            raise ValueError(
                f"a batch of {num_envs} rows does not fit a capacity of {self.capacity} items; "
                f"expected capacity >= number of parallel envs"
            )
        self._num_envs = num_envs
        self._slots = self.capacity // num_envs
        self._storage = {
            name: np.zeros((self._slots, num_envs, *shape), dtype)
            for name, (shape, dtype) in self.data_spec.items()
        }

    def _oldest(self) -> int:
        return (self._head - self._size) % self._slots

    def _sample_window_starts(
        self, batch_size: int, steps: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Time offsets (from the oldest item) and env rows of windows that stay in one episode."""
        candidates = self._size - steps + 1
        starts = rng.integers(candidates, size=batch_size)
        rows = rng.integers(self._num_envs, size=batch_size)
        if steps == 1:
            return starts, rows
        for _ in range(_REJECTION_ROUNDS):
            invalid = self._crosses_episode_end(starts, rows, steps)
            if not invalid.any():
                return starts, rows
            starts[invalid] = rng.integers(candidates, size=int(invalid.sum()))
            rows[invalid] = rng.integers(self._num_envs, size=int(invalid.sum()))
        all_starts, all_rows = np.meshgrid(np.arange(candidates), np.arange(self._num_envs), indexing="ij")
        all_starts, all_rows = all_starts.ravel(), all_rows.ravel()
        valid = ~self._crosses_episode_end(all_starts, all_rows, steps)
        if not valid.any():
            raise ValueError(f"no window of {steps} consecutive items lies within one episode in the buffer")
        chosen = rng.choice(np.flatnonzero(valid), size=batch_size)
        return all_starts[chosen], all_rows[chosen]

    def _crosses_episode_end(self, starts: np.ndarray, rows: np.ndarray, steps: int) -> np.ndarray:
        times = (self._oldest() + starts[:, None] + np.arange(steps - 1)) % self._slots
        return self._storage[DONE_FIELD][times, rows[:, None]].any(axis=1)

    def _check_batch(self, items: Mapping[str, Any]) -> dict[str, np.ndarray]:
        missing = self.data_spec.keys() - items.keys()
        unexpected = items.keys() - self.data_spec.keys()
        if missing or unexpected:
            raise ValueError(
                f"batch fields do not match the data spec: missing {sorted(missing)}, unexpected "
                f"{sorted(unexpected)}; expected exactly {sorted(self.data_spec)}"
            )
        arrays = {}
        rows = self._num_envs or None
        for name, (shape, dtype) in self.data_spec.items():
            array = np.asarray(items[name])
            if array.shape[1:] != shape or array.ndim != len(shape) + 1:
                raise ValueError(
                    f"field {name!r} has shape {array.shape}; expected (num_envs, *{shape}), one row per env"
                )
            if not np.can_cast(array.dtype, dtype, casting="same_kind"):
                raise ValueError(f"field {name!r} has dtype {array.dtype}; expected {np.dtype(dtype)}")
            rows = rows or len(array)
            if len(array) != rows:
                raise ValueError(
                    f"field {name!r} has {len(array)} rows; expected {rows} (one per env, the same in every "
                    f"field and every batch)"
                )
            arrays[name] = array
        return arrays


def _parse_spec(data_spec: Mapping[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    if not isinstance(data_spec, Mapping) or not data_spec:
        raise ValueError(
            f"data_spec must be a non-empty mapping of field name -> (shape, dtype), got {data_spec!r}"
        )
    parsed = {}
    for name, spec in data_spec.items():
        if hasattr(spec, "shape") and hasattr(spec, "dtype"):
            shape, dtype = spec.shape, getattr(spec.dtype, "as_numpy_dtype", spec.dtype)
        elif isinstance(spec, tuple) and len(spec) == 2:
            shape, dtype = spec
        else:
            raise ValueError(
                f"spec of field {name!r} is {spec!r}; expected (shape, dtype) or a tf.TensorSpec"
            )
        try:
            shape = tuple(int(size) for size in shape)
            dtype = np.dtype(dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"spec of field {name!r} is {spec!r}: {error}; expected (shape, dtype)"
            ) from None
        if any(size < 0 for size in shape):
            raise ValueError(f"spec of field {name!r} has shape {shape}; expected non-negative sizes")
        parsed[str(name)] = (shape, dtype)
    if DONE_FIELD not in parsed:
        raise ValueError(
            f"data_spec has no {DONE_FIELD!r} field; add {DONE_FIELD!r}: ((), bool), True on the last item "
            f"of an episode, so windows never span two episodes"
        )
    if parsed[DONE_FIELD] != ((), np.dtype(bool)):
        raise ValueError(f"field {DONE_FIELD!r} has spec {parsed[DONE_FIELD]}; expected ((), bool)")
    return parsed

"""A FIFO replay buffer in numpy with uniform sampling, in the shape of TF-Agents' API.

    buffer = ReplayBuffer({"observation": ((4,), np.float32), "action": ((), np.int64),
                           "reward": ((), np.float32), "done": ((), np.bool_)}, capacity=50_000)
    buffer.add_batch(items)                        # one row per parallel env: (num_envs, *shape)
    batch = buffer.sample(64, rng)                 # fast path: dict of (64, *shape) arrays
    items, info = buffer.get_next(64, num_steps=2)  # (64, 2, *shape) arrays and BufferInfo
    dataset = buffer.as_dataset(64, num_steps=2)   # tf.data: (items, BufferInfo(ids, probabilities))

The data spec is a nest (dicts, tuples, lists, named tuples) of `(shape, dtype)` pairs,
tf.TensorSpecs or Gymnasium spaces (`Tuple` and `Dict` spaces are nests); every method takes and
returns items arranged the same way. `ReplayBuffer(spec, batch_size=B, max_length=L)` holds L
items for each of B rows, as TF-Agents' buffers do; `capacity` counts items over all rows.

A top-level boolean field `done` marks the last item of an episode: a window of `num_steps`
consecutive items of one row then never spans two episodes (only its last item may be `done`).
Without it, windows are any consecutive items of a row, as in TF-Agents. Items are stored per row
in time order; once full, each new batch overwrites the oldest, and windows are taken in time
order, so none straddles the write position.

`frame_stacks=[("observation", "next_observation")]` names top-level fields of stacked image
frames (shape (k, *frame), the newest frame last) and the field of the next observation: they are
kept as single frames, each stored once (see `frame_store`), and read back byte for byte as added.
Items whose next observation is not the observation shifted on by one frame are refused, or with
`frame_stacks_fallback` stored whole from then on: the pair's stored items are converted, and
what is read back stays what was added.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from gymserve.agents.off_policy.frame_store import EXPORT_SUFFIXES, FrameStore
from gymserve.tf_agents import nests

DONE_FIELD = "done"
_REJECTION_ROUNDS = 8  # then fall back to listing every valid window (rarely reached)


class BufferInfo(NamedTuple):
    """What `get_next` and `as_dataset` return beside the items: each window's first item id
    (counted from the first item ever added, row by row) and the probability it was drawn with."""

    ids: Any
    probabilities: Any


class ReplayBuffer:
    """Stores `capacity` items (batches of transitions) and samples them uniformly."""

    def __init__(
        self,
        data_spec: Any,
        capacity: int | None = None,
        seed: int | None = None,
        *,
        batch_size: int | None = None,
        max_length: int | None = None,
        frame_stacks: Sequence[tuple[str, str]] = (),
        frame_stacks_fallback: bool = False,
    ):
        """`data_spec` describes one item (see the module docstring); give either `capacity` (items
        over all rows) or `max_length` (items per row). `batch_size` fixes the number of rows, else
        the first `add_batch` does. `seed` drives `get_next` and `as_dataset`. `frame_stacks` pairs
        fields of stacked frames with their next observations' fields, to store frames once;
        `frame_stacks_fallback` stores them whole instead of refusing items that are not stacks."""
        self.data_spec = data_spec
        self._structure = nests.as_structure(data_spec, _is_spec_leaf)
        self._fields = _parse_spec(self._structure)
        # A dict of leaves is flattened by key, without walking the nest on every add_batch.
        flat = isinstance(self._structure, Mapping) and list(self._fields) == list(self._structure)
        self._flat_keys = set(self._fields) if flat else None
        self._frame_stacks = [tuple(pair) for pair in frame_stacks]
        for pair in self._frame_stacks:
            if (
                not flat
                or any(name not in self._fields for name in pair)
                or len(set(map(self._fields.get, pair))) != 1
            ):
                raise ValueError(
                    f"frame_stacks pairs top-level fields of one (shape, dtype), got {pair!r} "
                    f"for {self._fields}"
                )
        self._framed = {name for pair in self._frame_stacks for name in pair}
        self._frame_stacks_fallback = frame_stacks_fallback
        _check_positive_integers(batch_size=batch_size, max_length=max_length, capacity=capacity)
        if (capacity is None) == (max_length is None):
            raise ValueError(
                f"give capacity (items over all rows) or max_length (items per row), not both nor neither; "
                f"got capacity={capacity!r}, max_length={max_length!r}"
            )
        self.capacity = int(capacity if max_length is None else (batch_size or 1) * max_length)
        self._batch_size = batch_size
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self.clear()

    @property
    def num_envs(self) -> int:
        """Rows per batch, fixed by `batch_size` or the first `add_batch` (0 before it)."""
        return self._num_envs

    @property
    def num_frames(self) -> int:
        """Items currently stored."""
        return self._size * self._num_envs

    @property
    def nbytes(self) -> int:
        """Bytes of the allocated storage."""
        return sum(array.nbytes for array in self._storage.values()) + sum(
            store.nbytes for store in self._frame_stores.values()
        )

    def add_batch(self, items: Any) -> None:
        """Append one item per row; every leaf needs a leading (num_envs,) dimension."""
        arrays = self._check_batch(self._flatten(items))
        if not self._num_envs:
            self._allocate(len(next(iter(arrays.values()))))
        unstacked = [pair for pair in self._frame_stores if not FrameStore.are_stacks(*map(arrays.get, pair))]
        for pair in unstacked:
            if not self._frame_stacks_fallback:
                raise ValueError(
                    f"{pair[1]!r} is not {pair[0]!r} shifted by one frame along the first axis; store "
                    f"them as separate arrays (replay_frames_once=False)"
                )
            self._store_whole(pair)
        chained = self._size > 0 and self._slots > 1
        if self._size == self._slots and self._slots > 1:
            for store in self._frame_stores.values():
                store.become_oldest((self._head + 1) % self._slots)
        for (observation, next_observation), store in self._frame_stores.items():
            store.add(self._head, chained, arrays[observation], arrays[next_observation])
        for name, stored in self._storage.items():
            stored[self._head] = arrays[name]
        self._head = (self._head + 1) % self._slots
        self._size = min(self._size + 1, self._slots)
        self._added += 1

    def sample(self, batch_size: int, rng: np.random.Generator, num_steps: int | None = None) -> Any:
        """`batch_size` items, or windows of `num_steps` consecutive items, drawn uniformly.

        Returns arrays of shape (batch_size, *shape), or (batch_size, num_steps, *shape).
        """
        batch, _, _ = self._sample_windows(batch_size, rng, num_steps)
        return self._pack(batch)

    def get_next(
        self, sample_batch_size: int | None = None, num_steps: int | None = None, time_stacked: bool = True
    ) -> tuple[Any, BufferInfo]:
        """One uniform draw, as TF-Agents' `get_next`: (items, BufferInfo(ids, probabilities)).

        Without `sample_batch_size` the items have no batch dimension, without `num_steps` no
        time dimension. `time_stacked=False` gives a window as a tuple of `num_steps` items,
        one per time step, instead of one item with a time dimension; the ids stay those of the
        windows' first items.
        """
        items, info = self._draw(self._rng, sample_batch_size, num_steps)
        if time_stacked or num_steps is None:
            return items, info
        time_axis = 0 if sample_batch_size is None else 1
        leaves = self._flatten(items)
        steps = tuple(
            self._pack({name: np.take(array, step, axis=time_axis) for name, array in leaves.items()})
            for step in range(num_steps)
        )
        return steps, info

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
        batch = self._gather(times, rows[:, None])
        if DONE_FIELD not in batch:
            return self._pack(batch), stored
        done = batch[DONE_FIELD]
        ended_before = (np.cumsum(done, axis=1) - done) > 0
        return self._pack(batch), stored & ~ended_before

    def as_dataset(
        self,
        sample_batch_size: int | None = None,
        num_steps: int | None = None,
        num_parallel_calls: int | None = None,
        single_deterministic_pass: bool = False,
    ):
        """A tf.data.Dataset of `(items, BufferInfo(ids, probabilities))`.

        By default endless uniform draws of the current contents, as `get_next` makes them (from
        this buffer's seed, afresh for each dataset). `num_parallel_calls` (a positive number or
        tf.data.AUTOTUNE) draws that many elements ahead in the background; the elements are the
        same. With `single_deterministic_pass`, every row is cut, oldest first, into consecutive
        windows of `num_steps` items (a shorter tail is left out), and the windows come once each,
        time-major: the first window of every row, then the second, ...; a last batch may be smaller.
        """
        import tensorflow as tf

        if (
            num_parallel_calls is not None
            and num_parallel_calls != tf.data.AUTOTUNE
            and not (isinstance(num_parallel_calls, int | np.integer) and num_parallel_calls >= 1)
        ):
            raise ValueError(
                f"num_parallel_calls must be a positive integer or tf.data.AUTOTUNE, "
                f"got {num_parallel_calls!r}"
            )
        _check_positive_integers(sample_batch_size=sample_batch_size, num_steps=num_steps)
        if single_deterministic_pass:
            samples, leading = self._single_pass(num_steps), []  # batched below
        else:
            samples = self._endless_draws(np.random.default_rng(self._seed), sample_batch_size, num_steps)
            leading = [] if sample_batch_size is None else [sample_batch_size]
        time = [] if num_steps is None else [num_steps]
        leaves = [
            tf.TensorSpec([*leading, *time, *shape], tf.as_dtype(dtype), name=name.replace("/", "."))
            for name, (shape, dtype) in self._fields.items()
        ]
        info = BufferInfo(tf.TensorSpec(leading, tf.int64), tf.TensorSpec(leading, tf.float32))
        dataset = tf.data.Dataset.from_generator(samples, output_signature=(self._pack(leaves), info))
        if single_deterministic_pass and sample_batch_size:
            dataset = dataset.batch(sample_batch_size)
        if num_parallel_calls is not None:
            dataset = dataset.prefetch(num_parallel_calls)
        return dataset

    def _endless_draws(self, rng: np.random.Generator, sample_batch_size: int | None, num_steps: int | None):
        def samples() -> Iterator[tuple[Any, BufferInfo]]:
            while True:
                yield self._draw(rng, sample_batch_size, num_steps)

        return samples

    def _single_pass(self, num_steps: int | None):
        def samples() -> Iterator[tuple[Any, BufferInfo]]:
            steps = num_steps or 1
            windows = self._size // steps
            for window in range(windows):
                offsets = window * steps + np.arange(steps)
                times = (self._oldest() + offsets) % self._slots
                for row in range(self._num_envs):
                    items = self._gather(times, row)
                    if num_steps is None:
                        items = {name: array[0] for name, array in items.items()}
                    first = (self._added - self._size + offsets[0]) * self._num_envs + row
                    yield (
                        self._pack(items),
                        BufferInfo(np.int64(first), np.float32(1 / (windows * self._num_envs))),
                    )

        return samples

    def gather_all(self, frames_once: bool = False) -> Any:
        """Every stored item, as arrays of shape (num_envs, time, *shape), oldest first.

        With `frames_once` (what checkpoints keep), the fields of `frame_stacks` come as their
        frames instead, a few arrays named after the observation field (`FrameStore.export`), in
        a flat dict that `load` takes as well.
        """
        if not self._num_envs:
            return self._pack(
                {name: np.zeros((0, 0, *shape), dtype) for name, (shape, dtype) in self._fields.items()}
            )
        times = (self._oldest() + np.arange(self._size)) % self._slots
        rows = np.arange(self._num_envs)[:, None]
        if not (frames_once and self._frame_stores):
            return self._pack(self._gather(times[None, :], rows))
        items = {name: array[times[None, :], rows] for name, array in self._storage.items()}
        for (observation, _), store in self._frame_stores.items():
            items.update(
                zip((observation + suffix for suffix in EXPORT_SUFFIXES), store.export(times), strict=True)
            )
        return items

    def clear(self) -> None:
        """Drop every item; unless `batch_size` was given, the next `add_batch` may use another
        number of rows."""
        self._storage: dict[str, np.ndarray] = {}
        self._frame_stores: dict[tuple[str, str], FrameStore] = {}
        self._num_envs = self._slots = self._size = self._head = 0
        self._added = 0  # batches added since the buffer was created or cleared
        if self._batch_size is not None:
            self._allocate(self._batch_size)

    def load(self, items: Any) -> None:
        """Replace the contents with `gather_all()`'s output (as saved in a checkpoint)."""
        self.clear()
        if self._frame_stacks and isinstance(items, Mapping) and not self._framed & set(items):
            self._load_frames(items)
            return
        flat = self._flatten(items)
        length = np.shape(next(iter(flat.values())))[1:2]
        if not length or length[0] == 0:
            return
        rows = self._check_batch({name: np.asarray(array)[:, 0] for name, array in flat.items()})
        if not self._num_envs:
            self._allocate(len(next(iter(rows.values()))))
        kept = min(length[0], self._slots)
        arrays = {name: np.asarray(array)[:, -kept:] for name, array in flat.items()}
        added = 0
        while self._frame_stores and added < kept:  # the chains of frames are rebuilt in time order
            self.add_batch({name: arrays[name][:, added] for name in self._fields})
            added += 1
        if added < kept:  # whole arrays (or every pair fell back to them): the rest in one copy
            for name in self._fields:
                self._storage[name][added:kept] = np.swapaxes(arrays[name][:, added:kept], 0, 1)
            self._size = self._added = kept
            self._head = kept % self._slots

    def _load_frames(self, items: Mapping[str, Any]) -> None:
        """`load` of `gather_all(frames_once=True)`: the observations are rebuilt step by step."""
        arrays = {name: np.asarray(items[name]) for name in self._fields if name not in self._framed}
        exported = {
            pair: [np.asarray(items[pair[0] + suffix]) for suffix in EXPORT_SUFFIXES]
            for pair in self._frame_stacks
        }
        num_envs, length = next(iter(exported.values()))[0].shape[:2]
        steps = {pair: FrameStore.replay(*parts) for pair, parts in exported.items()}
        for time in range(length):
            step = {name: array[:, time] for name, array in arrays.items()}
            for (observation, next_observation), observations in steps.items():
                step[observation], step[next_observation] = next(observations)
            if time >= length - self.capacity // num_envs:  # the newest that fit
                self.add_batch(step)

    def _draw(
        self, rng: np.random.Generator, sample_batch_size: int | None, num_steps: int | None
    ) -> tuple[Any, BufferInfo]:
        steps = 1 if num_steps is None else num_steps
        batch, starts, rows = self._sample_windows(sample_batch_size or 1, rng, steps)
        ids = (self._added - self._size + starts) * self._num_envs + rows
        probabilities = np.full(len(ids), 1 / self._count_windows(steps), np.float32)
        info = BufferInfo(ids.astype(np.int64), probabilities)
        if num_steps is None:
            batch = {name: array[:, 0] for name, array in batch.items()}
        if sample_batch_size is None:
            batch, info = (
                {name: array[0] for name, array in batch.items()},
                BufferInfo(ids[0], probabilities[0]),
            )
        return self._pack(batch), info

    def _sample_windows(
        self, batch_size: int, rng: np.random.Generator, num_steps: int | None
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Flat windows (the time axis dropped without `num_steps`), their starts and their rows."""
        steps = 1 if num_steps is None else num_steps
        if steps < 1:
            raise ValueError(f"num_steps must be at least 1, got {num_steps}")
        if self._size < steps:
            raise ValueError(
                f"cannot sample windows of {steps} items: the buffer holds {self._size} per env row"
            )
        starts, rows = self._sample_window_starts(batch_size, steps, rng)
        times = (self._oldest() + starts[:, None] + np.arange(steps)) % self._slots
        batch = self._gather(times, rows[:, None])
        if num_steps is None:
            batch = {name: array[:, 0] for name, array in batch.items()}
        return batch, starts, rows

    def _count_windows(self, steps: int) -> int:
        """How many windows of `steps` items `sample` can draw."""
        candidates = self._size - steps + 1
        if steps == 1 or DONE_FIELD not in self._storage:
            return candidates * self._num_envs
        done = self._storage[DONE_FIELD][(self._oldest() + np.arange(self._size)) % self._slots]
        ends_before = np.concatenate([np.zeros((1, self._num_envs), int), np.cumsum(done, axis=0)])
        return int((ends_before[steps - 1 : steps - 1 + candidates] == ends_before[:candidates]).sum())

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
            for name, (shape, dtype) in self._fields.items()
            if name not in self._framed
        }
        self._frame_stores = {
            pair: FrameStore(self._slots, num_envs, *self._fields[pair[0]]) for pair in self._frame_stacks
        }

    def _store_whole(self, pair: tuple[str, str]) -> None:
        """Keep the fields of `pair` as whole arrays from now on, the items stored so far included."""
        times = (self._oldest() + np.arange(self._size)) % self._slots
        stored = self._frame_stores.pop(pair).gather(times[:, None], np.arange(self._num_envs))
        for name, items in zip(pair, stored, strict=True):
            shape, dtype = self._fields[name]
            self._storage[name] = np.zeros((self._slots, self._num_envs, *shape), dtype)
            self._storage[name][times] = items

    def _gather(self, times: np.ndarray, rows: np.ndarray | int) -> dict[str, np.ndarray]:
        """Every field's items at time slots `times` of env `rows` (broadcast together), in field order."""
        items = {name: array[times, rows] for name, array in self._storage.items()}
        for (observation, next_observation), store in self._frame_stores.items():
            items[observation], items[next_observation] = store.gather(times, rows)
        return {name: items[name] for name in self._fields}

    def _roll_slots(self, shift: int) -> None:
        """Move every item `shift` time slots on, as np.roll does."""
        for name, array in self._storage.items():
            self._storage[name] = np.roll(array, shift, axis=0)
        for store in self._frame_stores.values():
            store.roll(shift)

    def _oldest(self) -> int:
        return (self._head - self._size) % self._slots

    def _sample_window_starts(
        self, batch_size: int, steps: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Time offsets (from the oldest item) and env rows of windows that stay in one episode."""
        candidates = self._size - steps + 1
        starts = rng.integers(candidates, size=batch_size)
        rows = rng.integers(self._num_envs, size=batch_size)
        if steps == 1 or DONE_FIELD not in self._storage:
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

    def _flatten(self, items: Any) -> dict[str, Any]:
        if self._flat_keys is not None and isinstance(items, Mapping) and items.keys() == self._flat_keys:
            return {name: items[name] for name in self._fields}
        return dict(zip(self._fields, nests.flatten_like(self._structure, items, _is_spec_leaf), strict=True))

    def _pack(self, flat: Mapping[str, Any] | list) -> Any:
        leaves = list(flat.values()) if isinstance(flat, Mapping) else flat
        return nests.pack_like(self._structure, leaves, _is_spec_leaf)

    def _check_batch(self, items: Mapping[str, Any]) -> dict[str, np.ndarray]:
        arrays = {}
        rows = self._num_envs or None
        for name, (shape, dtype) in self._fields.items():
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


def _check_positive_integers(**values: Any) -> None:
    """Each value is None (not given) or a positive integer."""
    for name, value in values.items():
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def _is_spec_leaf(spec: Any) -> bool:
    """A tf.TensorSpec, a Gymnasium space other than Tuple/Dict, or a (shape, dtype) pair."""
    if hasattr(spec, "shape") and hasattr(spec, "dtype"):
        return True
    return (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], tuple | list)
        and all(isinstance(size, int | np.integer) for size in spec[0])
        and not isinstance(spec[1], tuple | list | Mapping)
    )


def _parse_spec(structure: Any) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    leaves = list(nests.leaves_with_paths(structure, _is_spec_leaf))
    if not leaves or (leaves == [("", structure)] and not _is_spec_leaf(structure)):
        raise ValueError(
            f"data_spec must be a non-empty nest of (shape, dtype) pairs, tf.TensorSpecs or spaces, "
            f"got {structure!r}"
        )
    parsed = {}
    for name, spec in leaves:
        if hasattr(spec, "shape") and hasattr(spec, "dtype"):
            shape, dtype = spec.shape, getattr(spec.dtype, "as_numpy_dtype", spec.dtype)
        elif _is_spec_leaf(spec):
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
        parsed[name] = (shape, dtype)
    is_top_level_dict = isinstance(structure, Mapping)
    if is_top_level_dict and DONE_FIELD in parsed and parsed[DONE_FIELD] != ((), np.dtype(bool)):
        raise ValueError(f"field {DONE_FIELD!r} has spec {parsed[DONE_FIELD]}; expected ((), bool)")
    return parsed

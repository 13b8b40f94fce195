"""A replay memory of whole rollouts, kept in TensorFlow variables so compiled steps add and sample.

ACER replays trajectories, not transitions: its Retrace targets run backwards along consecutive
steps. Each slot holds one on_policy.Rollout of `n_steps` steps of every env, time-major, with the
acting policy's outputs; the oldest slot is overwritten once all are full. The rollout's `values`
are not kept (ACER values replayed steps with its current critic); samples carry zeros there.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gymserve.agents.on_policy.algorithm import Rollout

_POSITION = "replay_position"
_SIZE = "replay_size"
_NOT_KEPT = "values"


class TrajectoryReplay:
    """`capacity` rollouts shaped like `example` (tensors or numpy arrays of one rollout)."""

    def __init__(self, capacity: int, example: Rollout):
        if capacity < 1:
            raise ValueError(f"a trajectory replay holds at least one rollout, got capacity {capacity}")
        self.capacity = capacity
        self.slots = {
            name: tf.Variable(
                tf.zeros((capacity, *value.shape), tf.as_dtype(value.dtype)), trainable=False, name=name
            )
            for name, value in example._asdict().items()
            if name != _NOT_KEPT
        }
        self.position = tf.Variable(0, dtype=tf.int64, trainable=False, name=_POSITION)
        self.size = tf.Variable(0, dtype=tf.int64, trainable=False, name=_SIZE)

    def add(self, rollout: Rollout) -> None:
        """Store `rollout` in the next slot (traceable)."""
        for name, slot in self.slots.items():
            slot.scatter_nd_update([[self.position]], getattr(rollout, name)[tf.newaxis])
        self.position.assign((self.position + 1) % self.capacity)
        self.size.assign(tf.minimum(self.size + 1, self.capacity))

    def sample(self, generator: tf.random.Generator) -> Rollout:
        """One stored rollout, uniformly at random (traceable; the replay must not be empty)."""
        index = generator.uniform((), maxval=self.size, dtype=tf.int64)
        kept = {name: slot[index] for name, slot in self.slots.items()}
        return Rollout(**kept, values=tf.zeros_like(kept["rewards"]))

    def state(self) -> dict[str, np.ndarray]:
        """Every slot, the write position and the fill, as arrays to checkpoint."""
        arrays = {f"replay_{name}": slot.numpy() for name, slot in self.slots.items()}
        return {**arrays, _POSITION: self.position.numpy(), _SIZE: self.size.numpy()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what `state()` returned."""
        for name, slot in self.slots.items():
            slot.assign(arrays[f"replay_{name}"])
        self.position.assign(arrays[_POSITION])
        self.size.assign(arrays[_SIZE])

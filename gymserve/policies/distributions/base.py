"""What every action distribution shares: its two forms, the kind names, the squash, the std bounds.

A distribution kind is one class with two forms:

- the class itself, in numpy, for acting: `Categorical(logits).sample(rng)`;
- its nested `Graph`, in TensorFlow ops on a batch of network outputs, for training
  (`sample`, `log_prob`, `entropy`, `kl_divergence`) and for the exported graphs
  (`parameters`, `greedy_action`, `stochastic_action`): `Categorical.Graph(action_space)`.

TensorFlow is imported by the first `Graph` call, never by importing a distribution, so acting
with numpy (and a robot's client) never loads it.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar, Literal

import gymnasium as gym
import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

LOG_STD_MIN = -20.0
LOG_STD_MAX = 2.0

# Every kind a network's outputs are read as; every one is exported.
DistributionKind = Literal[
    "categorical", "squashed_gaussian", "noisy_deterministic", "deterministic", "gaussian"
]
ActorDistributionKind = DistributionKind
HALF_LOG_TWO_PI = 0.5 * np.log(2 * np.pi)


def squash(pre_squash: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map unbounded values into [low, high] through tanh."""
    unit = (np.tanh(pre_squash) + 1.0) * 0.5
    return (low + unit * (high - low)).astype(np.float32)


def clip_tensor(actions: tf.Tensor, action_space: gym.spaces.Box) -> tf.Tensor:
    """Actions clipped to the Box bounds (infinite bounds clip nothing), as `Policy.action` does."""
    import tensorflow as tf

    low = tf.constant(action_space.low, tf.float32)
    high = tf.constant(action_space.high, tf.float32)
    return tf.clip_by_value(actions, low, high)


def squash_tensor(pre_squash: tf.Tensor, action_space: gym.spaces.Box) -> tf.Tensor:
    """`squash` in TensorFlow ops, clipped against rounding like `Policy.action` does."""
    import tensorflow as tf

    low = tf.constant(action_space.low, tf.float32)
    high = tf.constant(action_space.high, tf.float32)
    unit = (tf.tanh(pre_squash) + 1.0) * 0.5
    return tf.clip_by_value(low + unit * (high - low), low, high)


class DistributionGraph:
    """A distribution kind in TensorFlow ops, for one action space, on batches of network outputs.

    Training stores *raw* actions (the integer for Discrete, the pre-squash sample for a squashed
    Box), so that log-probabilities never invert tanh at the bounds; `env_actions` maps them to
    the actions the environment takes. The exported graphs use `parameters`, `greedy_action` and
    `stochastic_action`, op for op what the numpy form computes.
    """

    def __init__(self, action_space: gym.spaces.Space):
        self.action_space = action_space

    @property
    def raw_dtype(self) -> tf.DType:
        """The dtype of raw actions."""
        import tensorflow as tf

        return tf.float32

    @abc.abstractmethod
    def parameters(self, outputs: tf.Tensor) -> dict[str, tf.Tensor]:
        """The named parameters of a batch of network outputs, as the numpy form's `parameters()`."""

    @abc.abstractmethod
    def greedy_action(self, parameters: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """The numpy form's `mode()`."""

    @abc.abstractmethod
    def stochastic_action(self, parameters: Mapping[str, tf.Tensor], seed: tf.Tensor) -> tf.Tensor:
        """A sample drawn with stateless random ops: the same int64 `seed` gives the same action."""

    def env_actions(self, raw_actions: tf.Tensor) -> tf.Tensor:
        """The actions the environment takes for a batch of raw actions."""
        return raw_actions

    def sample(self, outputs: tf.Tensor, generator: tf.random.Generator) -> tf.Tensor:
        """One raw action per row of `outputs`."""
        raise NotImplementedError(f"{self._kind_name()} is not trained by sampling raw actions")

    def log_prob(self, outputs: tf.Tensor, raw_actions: tf.Tensor) -> tf.Tensor:
        """log pi(action | observation) of each row: the density of the env action."""
        raise NotImplementedError(f"{self._kind_name()} has no log_prob")

    def entropy(self, outputs: tf.Tensor) -> tf.Tensor:
        """The entropy bonus of each row."""
        raise NotImplementedError(f"{self._kind_name()} has no entropy bonus")

    def kl_divergence(self, old_outputs: tf.Tensor, outputs: tf.Tensor) -> tf.Tensor:
        """KL(old || new) of each row, between the distributions of `old_outputs` and `outputs`."""
        raise NotImplementedError(f"{self._kind_name()} has no KL divergence")

    def _kind_name(self) -> str:
        return type(self).__qualname__


class Distribution(abc.ABC):
    """A batch of action distributions.

    `log_prob` and `entropy` exist only where the distribution has them: clipped exploration
    noise puts point masses at the bounds (no density), and a squashed Gaussian has no
    closed-form entropy. Those kinds raise `NotImplementedError` naming themselves.

    A kind read from network outputs also says how (`kind`, `outputs_meaning`, `output_size`,
    `from_outputs`), which parameters it exports (`parameter_names`), and has a `Graph` form.
    """

    kind: ClassVar[str | None] = None
    """The name networks and exports use for this way of reading outputs; None: not read from outputs."""
    space_type: ClassVar[type[gym.spaces.Space]] = gym.spaces.Space
    """The action spaces the distribution is over."""
    parameter_names: ClassVar[tuple[str, ...]] = ()
    """The keys of `parameters()`, in the order the exported models output them."""
    outputs_meaning: ClassVar[str] = ""
    """What a network's outputs hold, for error messages."""
    Graph: ClassVar[type[DistributionGraph]]

    @abc.abstractmethod
    def mode(self) -> np.ndarray:
        """The most likely action of each distribution (the greedy action)."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """One action per distribution, drawn with `rng`."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, np.ndarray]:
        """The named parameter arrays, as exported and served."""

    def log_prob(self, actions: np.ndarray) -> np.ndarray:
        """The log density (or log probability) of one action per distribution, shape (batch,)."""
        raise NotImplementedError(f"{type(self).__name__} has no log_prob")

    def __repr__(self) -> str:
        """The class, the batch size and every parameter, long arrays abbreviated:
        `Normal(batch_size=2, loc=[[0.5, -1.], [0., 0.]], scale=[[1., 1.], [1., 1.]])`."""
        parameters = self.parameters()
        first = np.asarray(next(iter(parameters.values())))
        batch_size = len(first) if first.ndim else 1
        shown = ", ".join(
            f"{name}={np.array2string(np.asarray(value), precision=4, separator=', ', threshold=24)}"
            for name, value in parameters.items()
        )
        return f"{type(self).__name__}(batch_size={batch_size}, {shown})"

    def entropy(self) -> np.ndarray:
        """The entropy of each distribution, shape (batch,)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy")

    @classmethod
    def output_size(cls, action_space: gym.spaces.Space) -> int:
        """Network outputs per observation: a parameter per action dimension and parameter."""
        return len(cls.parameter_names) * int(np.prod(action_space.shape))

    @classmethod
    def parameter_shapes(cls, action_space: gym.spaces.Space) -> dict[str, tuple[int, ...]]:
        """The per-observation shape of every parameter: the action's shape."""
        return dict.fromkeys(cls.parameter_names, tuple(action_space.shape))

    @classmethod
    def from_outputs(cls, outputs: np.ndarray, action_space: gym.spaces.Space) -> Distribution:
        """The distributions a float32 batch of network outputs (shape already checked) describes."""
        raise NotImplementedError(f"{cls.__name__} is not read from network outputs")

    @classmethod
    def from_parameters(
        cls, parameters: Mapping[str, np.ndarray], action_space: gym.spaces.Space
    ) -> Distribution:
        """The distribution whose `parameters()` are `parameters`."""
        return cls(*(parameters[name] for name in cls.parameter_names))


def split_outputs(outputs: np.ndarray, action_space: gym.spaces.Box) -> tuple[np.ndarray, ...]:
    """The outputs' consecutive action-sized blocks, each shaped like a batch of actions."""
    size = int(np.prod(action_space.shape))
    count = outputs.shape[1] // size
    return tuple(
        outputs[:, index * size : (index + 1) * size].reshape(len(outputs), *action_space.shape)
        for index in range(count)
    )


def normal_log_density(values: np.ndarray, mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    log_std = np.asarray(log_std, np.float64)
    return -0.5 * ((values - mean) / np.exp(log_std)) ** 2 - log_std - HALF_LOG_TWO_PI


def sum_event(values: np.ndarray) -> np.ndarray:
    """Sum over every axis but the batch axis."""
    return values.reshape(len(values), -1).sum(axis=1)


def all_event(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).all(axis=1)

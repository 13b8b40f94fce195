"""A policy whose action distribution comes from a Keras network.

The network (functional, Sequential or a subclassed `keras.Model`) takes a float32 batch of raw
observations (any normalization is a layer inside it), or, for a recurrent policy,
`[observations, state_0, state_1, ...]` (state parts float32 `(batch, units)`) and returns
`[outputs, next state_0, next state_1, ...]` (a recurrent network declares these inputs, so it is
functional; a subclassed network is called as feed-forward). The outputs are
what `distributions.distribution_from_outputs` expects: logits (or DQN Q-values) for a
Discrete action space, `[pre-squash mean | log_std]` for a Box action space, or, with
`distribution="noisy_deterministic"`, `[pre-squash action | exploration noise std]`. As in
TF-Agents, a network may also output the action itself (`distribution="deterministic"`) or an
unsquashed Normal (`"gaussian"`, `[mean | log_std]`); these two fit unbounded Box spaces, are
clipped to the bounds unless `clip=False`, and are exported unless `clip=False`.

Acting calls the network once per environment step with a handful of observations, so the
forward pass is traced once into a concrete TensorFlow function with a `[None, *obs_shape]`
input signature and called with a tensor. On two CPU cores, for a 256x256 MLP and one
observation, that costs about 0.2 ms against about 0.35 ms for a `tf.function` and 1.4 ms for
an eager `network(x)`. The function reads the network's variables, so training updates are
seen by the next call. A feed-forward policy may instead be given `forward`, a numpy function
computing the same outputs (e.g. a snapshot of the weights for an evaluation that acts thousands
of times between two updates).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf

from gymserve.policies.base import (
    Policy,
    PolicyState,
    check_recurrent_state,
    recurrent_state_spec,
    zero_state,
)
from gymserve.policies.distributions import (
    ActorDistributionKind,
    Distribution,
    default_distribution_kind,
    distribution_class,
    distribution_from_outputs,
)
from gymserve.policies.signatures import observation_dtype


class ActorPolicy(Policy):
    """Acts from a Keras network's outputs; greedy, stochastic and epsilon-greedy per call."""

    def __init__(
        self,
        network: keras.Model,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        seed: int | None = None,
        distribution: ActorDistributionKind | None = None,
        clip: bool = True,
        forward: Callable[[np.ndarray], np.ndarray] | None = None,
        *,
        emit_log_probability: bool = False,
        emit_distribution_parameters: bool = False,
    ):
        """`clip=False` lets "deterministic" and "gaussian" actions leave the Box bounds; `forward`
        (observations -> outputs, feed-forward networks only) replaces the traced network call."""
        super().__init__(
            observation_space,
            action_space,
            seed,
            emit_log_probability=emit_log_probability,
            emit_distribution_parameters=emit_distribution_parameters,
        )
        if self.observation_space is None:
            raise TypeError("an ActorPolicy needs the observation space its network takes")
        bounded = isinstance(action_space, gym.spaces.Box) and action_space.is_bounded("both")
        kind = distribution or default_distribution_kind(action_space)
        if isinstance(action_space, gym.spaces.Discrete):
            allowed = ("categorical",)
        else:
            allowed = _BOX_KINDS + _UNSQUASHED_KINDS if bounded else _UNSQUASHED_KINDS
        if kind not in allowed:
            bounds = "" if bounded or isinstance(action_space, gym.spaces.Discrete) else " (unbounded)"
            raise ValueError(
                f"distribution {kind!r} does not fit {action_space}{bounds}; expected one of {allowed}"
            )
        if not clip and kind not in _UNSQUASHED_KINDS:
            raise ValueError(f"clip=False needs a 'deterministic' or 'gaussian' network, not {kind!r}")
        self._distribution_kind: ActorDistributionKind = kind
        self._clip_actions = clip
        self._network = network
        self._state_spec = recurrent_state_spec(state_units(network, self.observation_space.shape))
        if forward is not None:
            if self._state_spec:
                raise ValueError("a numpy forward function needs a feed-forward network, not a recurrent one")
            self._numpy_forward = forward
            probe = np.zeros((1, *self.observation_space.shape), np.float32)
            output_shape = tf.TensorShape(forward(probe).shape)
        else:
            self._numpy_forward = None
            self._forward = _trace_forward(network, self.observation_space, self._state_spec)
            outputs = self._forward.structured_outputs
            output_shape = (outputs[0] if self._state_spec else outputs).shape
        _check_output_shape(output_shape, self.action_space, kind)

    @property
    def network(self) -> keras.Model:
        return self._network

    @property
    def clips_actions(self) -> bool:
        """False when built with clip=False: actions may leave the Box bounds."""
        return self._clip_actions

    @property
    def distribution_kind(self) -> ActorDistributionKind:
        """How the network's outputs are read (gymserve.policies.distributions)."""
        return self._distribution_kind

    @property
    def policy_state_spec(self) -> tuple[tuple[tuple[int, ...], np.dtype], ...]:
        return self._state_spec

    def get_initial_state(self, batch_size: int | None = None) -> PolicyState:
        return zero_state(self._state_spec, batch_size)

    def network_outputs(self, observations: np.ndarray, state: PolicyState = ()) -> np.ndarray:
        """The raw network outputs for a validated batch of observations (and state)."""
        return self._step(observations, state)[0]

    def _check_state(self, state: PolicyState, batch_size: int) -> PolicyState:
        return check_recurrent_state(state, self._state_spec, batch_size) if self._state_spec else state

    def _step(self, observations: np.ndarray, state: PolicyState) -> tuple[np.ndarray, PolicyState]:
        if self._numpy_forward is not None:
            return self._numpy_forward(observations), state
        # uint8 frames go to an image network as they are; anything else as float32
        observations = tf.constant(observations, self._forward.structured_input_signature[0][0].dtype)
        if not self._state_spec:
            return self._forward(observations).numpy(), state
        outputs, *next_state = self._forward(observations, *map(tf.constant, state))
        return outputs.numpy(), tuple(part.numpy() for part in next_state)

    def _distribution_and_state(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[Distribution, PolicyState]:
        outputs, next_state = self._step(observations, state)
        return distribution_from_outputs(outputs, self.action_space, self._distribution_kind), next_state

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return self._distribution_and_state(observations, state)[0]

    def _clip(self, actions: np.ndarray) -> np.ndarray:
        if self._clip_actions:
            return super()._clip(actions)
        return actions.astype(self.action_space.dtype, copy=False)


def state_units(network: keras.Model, observation_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The size of each state part a network takes beside observations: () for a feed-forward one.

    Functional networks declare their inputs; a Sequential one declares them once built, so it is
    built here; a subclassed network declares none and is called as feed-forward.
    """
    if isinstance(network, keras.Sequential) and not network.built:
        network.build((None, *observation_shape))
    try:
        inputs = network.inputs
    except AttributeError:  # a subclassed model, or a Sequential model that cannot be built
        return ()
    return tuple(int(part.shape[-1]) for part in inputs[1:])


def network_input_dtype(network: keras.Model, fallback: tf.DType) -> tf.DType:
    """The dtype the network's first input declares; a subclassed model declares none: `fallback`."""
    inputs = getattr(network, "inputs", None)
    return tf.as_dtype(inputs[0].dtype) if inputs else fallback


_BOX_KINDS: tuple[ActorDistributionKind, ...] = ("squashed_gaussian", "noisy_deterministic")
_UNSQUASHED_KINDS: tuple[ActorDistributionKind, ...] = ("deterministic", "gaussian")


def _trace_forward(
    network: keras.Model,
    observation_space: gym.spaces.Space,
    state_spec: tuple[tuple[tuple[int, ...], np.dtype], ...],
) -> tf.types.experimental.ConcreteFunction:
    # float32, or uint8 for image frames: the dtype exports take too (signatures.observation_dtype)
    observation_shape = observation_space.shape
    observation_type = tf.as_dtype(observation_dtype(observation_space.dtype))
    signature = [tf.TensorSpec([None, *observation_shape], observation_type, name="observations")]
    signature += [
        tf.TensorSpec([None, *shape], tf.float32, name=f"state_{index}")
        for index, (shape, _) in enumerate(state_spec)
    ]

    if not network.built:
        # Variables must exist before tracing, or the traced function would own fresh copies.
        network(np.zeros((1, *observation_shape), observation_type.as_numpy_dtype))

    @tf.function(input_signature=signature)
    def forward(*inputs: tf.Tensor) -> tf.Tensor | list[tf.Tensor]:
        outputs = network(list(inputs) if state_spec else inputs[0], training=False)
        if state_spec:
            return [tf.cast(part, tf.float32) for part in outputs]
        return tf.cast(outputs, tf.float32)

    try:
        return forward.get_concrete_function()
    except Exception as error:  # Keras raises several types for an input it cannot take
        raise ValueError(
            f"the network cannot take a {observation_type.name} observation batch of shape "
            f"(None, *{observation_shape}): {error}"
        ) from error


def _check_output_shape(
    output_shape: tf.TensorShape,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    kind: ActorDistributionKind,
) -> None:
    distribution = distribution_class(action_space, kind)
    expected = distribution.output_size(action_space)
    if output_shape.rank != 2 or output_shape[1] != expected:
        raise ValueError(
            f"the network outputs shape {output_shape}; "
            f"expected (batch, {expected}) {distribution.outputs_meaning} for {action_space}"
        )

"""Writing a policy as a TensorFlow SavedModel whose signatures take only what a robot has.

    model = tf.saved_model.load("exports/cartpole/saved_model")
    actions = model.signatures["greedy_action"](observations=batch)["action"]

Signatures (observations are float32 `[batch, *observation_shape]`; uint8 for a uint8 space,
image frames, which an image network scales itself):

    greedy_action(observations)            -> {"action"}
    stochastic_action(observations, seed)  -> {"action"}  int64 scalar seed, stateless sampling
    distribution(observations)             -> {"logits"}, {"mean", "log_std"} or {"mean", "noise_std"}
    get_initial_state(batch_size)          -> {}          nothing, for a stateless policy
    get_metadata()                         -> {"metadata"} JSON string (policy.json minus hashes)
    serving_default(observations)          -> {"action"}  the greedy action

A recurrent policy's signatures also take its state as float32 inputs `state_0`, `state_1`, ...
(`[batch, units]`) and return the next state as `next_state_0`, `next_state_1`, ...;
`get_initial_state(batch_size)` returns the zero state `{"state_0", "state_1", ...}` that starts
an episode.

`serving_default` is the signature TensorFlow Serving and `saved_model_cli` use when a request
names none. The signatures take int64 `seed` and `batch_size`; the loaded object's functions of
the same names (`model.stochastic_action(observations, seed)`) take int32 too, as TF-Agents' saved
policies do, and give the same results.

Loading needs TensorFlow only, not gymserve.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import keras
import tensorflow as tf

from gymserve.policies.actor_policy import network_input_dtype, state_units
from gymserve.policies.distributions import DistributionKind, distribution_graph
from gymserve.policies.signatures import (
    ACTION,
    BATCH_SIZE,
    DEFAULT_SIGNATURE,
    GREEDY_ACTION,
    METADATA,
    NEXT_STATE_PREFIX,
    OBSERVATIONS,
    SEED,
    SIGNATURES,
    next_state_name,
    observation_dtype,
    state_name,
)


class _PolicyModule(tf.Module):
    """The network and the post-processing of its outputs, with one tf.function per signature."""

    def __init__(
        self,
        network: keras.Model,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box | gym.spaces.Discrete,
        metadata_json: str,
        distribution: DistributionKind | None,
    ):
        super().__init__(name="gymserve_policy")
        self.network = network
        self._graph = distribution_graph(action_space, distribution)
        self._metadata_json = metadata_json
        self._state_sizes = state_units(network, observation_space.shape)
        observation_type = observation_dtype(observation_space.dtype)
        inputs = [tf.TensorSpec([None, *observation_space.shape], observation_type, name=OBSERVATIONS)]
        inputs += [
            tf.TensorSpec([None, size], tf.float32, name=state_name(index))
            for index, size in enumerate(self._state_sizes)
        ]
        self.greedy_action = tf.function(self._greedy_action, input_signature=inputs)
        self.stochastic_action = _taking_int32_and_int64(self._stochastic_action, inputs, SEED)
        self.distribution = tf.function(self._distribution, input_signature=inputs)
        self.get_initial_state = _taking_int32_and_int64(self._get_initial_state, [], BATCH_SIZE)
        self.get_metadata = tf.function(self._get_metadata, input_signature=[])

    def _parameters(self, observations: tf.Tensor, state: tuple[tf.Tensor, ...]) -> dict[str, tf.Tensor]:
        """The distribution parameters and, for a recurrent policy, `next_state_i`."""
        observations = tf.cast(observations, network_input_dtype(self.network, observations.dtype))
        if not state:
            outputs = tf.cast(self.network(observations, training=False), tf.float32)
            return self._graph.parameters(outputs)
        outputs, *next_state = self.network([observations, *state], training=False)
        parameters = self._graph.parameters(tf.cast(outputs, tf.float32))
        return {**parameters, **named_next_state(next_state)}

    def _greedy_action(self, observations: tf.Tensor, *state: tf.Tensor) -> dict[str, tf.Tensor]:
        parameters = self._parameters(observations, state)
        return {
            ACTION: self._graph.greedy_action(parameters),
            **_next_state_of(parameters),
        }

    def _stochastic_action(self, observations: tf.Tensor, *state_and_seed: tf.Tensor) -> dict[str, tf.Tensor]:
        *state, seed = state_and_seed
        parameters = self._parameters(observations, tuple(state))
        seed = tf.cast(seed, tf.int64)
        return {
            ACTION: self._graph.stochastic_action(parameters, seed),
            **_next_state_of(parameters),
        }

    def _distribution(self, observations: tf.Tensor, *state: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._parameters(observations, state)

    def _get_initial_state(self, batch_size: tf.Tensor) -> dict[str, tf.Tensor]:
        batch_size = tf.cast(batch_size, tf.int32)
        return {
            state_name(index): tf.zeros([batch_size, size]) for index, size in enumerate(self._state_sizes)
        }

    def _get_metadata(self) -> dict[str, tf.Tensor]:
        return {METADATA: tf.constant(self._metadata_json)}

    def signature(self, name: str) -> tf.types.experimental.GenericFunction:
        """The function exported as signature `name` (the int64 trace where there are two)."""
        function = getattr(self, name)
        if function.input_signature is not None:
            return function
        return function.get_concrete_function(*function.int64_specs)


def named_next_state(next_state: list[tf.Tensor]) -> dict[str, tf.Tensor]:
    """A recurrent network's next state parts as the exported outputs `next_state_0`, `next_state_1`, ..."""
    return {next_state_name(index): tf.cast(part, tf.float32) for index, part in enumerate(next_state)}


def _next_state_of(outputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The `next_state_i` entries of `outputs` (none for a stateless policy)."""
    return {name: value for name, value in outputs.items() if name.startswith(NEXT_STATE_PREFIX)}


def _taking_int32_and_int64(
    function, leading: list[tf.TensorSpec], integer_name: str
) -> tf.types.experimental.GenericFunction:
    """`function` traced for a scalar int32 and a scalar int64 last argument named `integer_name`."""
    traced = tf.function(function)
    for dtype in (tf.int64, tf.int32):
        traced.get_concrete_function(*leading, tf.TensorSpec([], dtype, name=integer_name))
    traced.int64_specs = [*leading, tf.TensorSpec([], tf.int64, name=integer_name)]
    return traced


def write_saved_model(
    network: keras.Model,
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    metadata_json: str,
    directory: Path,
    distribution: DistributionKind | None = None,
) -> None:
    """Save the policy's SavedModel into `directory`, which must not exist yet."""
    module = _PolicyModule(network, observation_space, action_space, metadata_json, distribution)
    signatures = {name: module.signature(name) for name in SIGNATURES}
    signatures[DEFAULT_SIGNATURE] = signatures[GREEDY_ACTION]
    try:
        tf.saved_model.save(module, str(directory), signatures=signatures)
    except tf.errors.OpError as error:  # TensorFlow reports a full disk or a refused write as its own type
        raise OSError(f"TensorFlow cannot write the SavedModel: {error.message}") from error

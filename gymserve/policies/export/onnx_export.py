"""Writing a policy as an ONNX model (opset 17) with its post-processing inside the graph.

Input `observations`: float32 `[batch, *observation_shape]` (uint8 for a uint8 space: image
frames, which an image network scales itself), batch dimension dynamic.
Outputs: `action` (the greedy action: int64 for Discrete, float32 within the bounds for Box)
and the distribution parameters (`logits`, `mean` and `log_std`, or `mean` and `noise_std`),
from which a client samples. A recurrent policy also takes its state as inputs `state_0`,
`state_1`, ... (float32 `[batch, units]`, zeros at an episode start) and returns the next state
as `next_state_0`, `next_state_1`, ... The metadata (policy.json minus hashes) is stored in the model's
`gymserve_metadata` property.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import keras
import onnx
import tensorflow as tf
import tf2onnx

from gymserve.policies.actor_policy import network_input_dtype, state_units
from gymserve.policies.distributions import DistributionKind, distribution_graph
from gymserve.policies.export.savedmodel import named_next_state
from gymserve.policies.signatures import (
    ACTION,
    OBSERVATIONS,
    ONNX_METADATA_PROPERTY,
    observation_dtype,
    state_name,
)

OPSET = 17


def write_onnx(
    network: keras.Model,
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    metadata_json: str,
    path: Path,
    distribution: DistributionKind | None = None,
) -> None:
    """Convert the network and its post-processing to ONNX and write it to `path`."""
    observation_type = observation_dtype(observation_space.dtype)
    inputs = [tf.TensorSpec([None, *observation_space.shape], observation_type, name=OBSERVATIONS)]
    inputs += [
        tf.TensorSpec([None, size], tf.float32, name=state_name(index))
        for index, size in enumerate(state_units(network, observation_space.shape))
    ]
    graph = distribution_graph(action_space, distribution)

    @tf.function(input_signature=inputs)
    def policy(observations: tf.Tensor, *state: tf.Tensor) -> dict[str, tf.Tensor]:
        next_state = {}
        observations = tf.cast(observations, network_input_dtype(network, observations.dtype))
        if state:
            outputs, *parts = network([observations, *state], training=False)
            next_state = named_next_state(parts)
        else:
            outputs = network(observations, training=False)
        parameters = graph.parameters(tf.cast(outputs, tf.float32))
        return {ACTION: graph.greedy_action(parameters), **parameters, **next_state}

    model, _ = tf2onnx.convert.from_function(policy, input_signature=inputs, opset=OPSET)
    onnx.helper.set_model_props(model, {ONNX_METADATA_PROPERTY: metadata_json})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

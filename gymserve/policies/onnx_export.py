"""Writing a policy as an ONNX model (opset 17) with its post-processing inside the graph.

Input `observations`: float32 `[batch, *observation_shape]`, batch dimension dynamic.
Outputs: `action` (the greedy action: int64 for Discrete, float32 within the bounds for Box)
and the distribution parameters (`logits`, `mean` and `log_std`, or `mean` and `noise_std`),
from which a client samples. The metadata (policy.json minus hashes) is stored in the model's
`gymserve_metadata` property.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import keras
import onnx
import tensorflow as tf
import tf2onnx

from gymserve.policies import policy_graph
from gymserve.policies.distributions import DistributionKind

OPSET = 17
METADATA_PROPERTY = "gymserve_metadata"


def write_onnx(
    network: keras.Model,
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    metadata_json: str,
    path: Path,
    distribution: DistributionKind | None = None,
) -> None:
    """Convert the network and its post-processing to ONNX and write it to `path`."""
    observations_spec = tf.TensorSpec([None, *observation_space.shape], tf.float32, name="observations")

    @tf.function(input_signature=[observations_spec])
    def policy(observations: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = tf.cast(network(observations, training=False), tf.float32)
        parameters = policy_graph.distribution_parameters(outputs, action_space, distribution)
        return {"action": policy_graph.greedy_action(parameters, action_space), **parameters}

    model, _ = tf2onnx.convert.from_function(policy, input_signature=[observations_spec], opset=OPSET)
    onnx.helper.set_model_props(model, {METADATA_PROPERTY: metadata_json})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))

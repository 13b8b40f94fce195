"""Converting an exported SavedModel to LiteRT (`.tflite`) models for policies that run on a robot.

Each `.tflite` file holds two signatures:

    policy(observations, state_0, ...) -> {"action", <distribution parameters>, "next_state_0", ...}
    metadata()                         -> {"metadata"} JSON string (policy.json minus hashes)

like the ONNX model: one network pass gives the greedy action and the parameters a stochastic
action is drawn from. The float32 model is `policy.tflite`; the optional quantized variants
(dynamic-range int8 weights, float16 weights) are `policy-dynamic-int8.tflite` and
`policy-float16.tflite`. Conversion needs TensorFlow only; running needs `ai-edge-litert`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import tensorflow as tf

from gymserve.policies.distributions import distribution_graph
from gymserve.policies.metadata import PolicyMetadata, TfliteQuantization, state_input_names, tflite_file
from gymserve.policies.signatures import (
    ACTION,
    DISTRIBUTION,
    METADATA,
    OBSERVATIONS,
    TFLITE_METADATA_SIGNATURE,
    TFLITE_POLICY_SIGNATURE,
)


def write_tflite(
    saved_model_dir: Path,
    metadata_json: str,
    directory: Path,
    quantizations: Iterable[TfliteQuantization] = (),
) -> None:
    """Convert the SavedModel's `distribution` signature into `policy.tflite` (and its quantized
    variants) in `directory`, with the greedy action computed in the model as the SavedModel does."""
    metadata = PolicyMetadata.model_validate_json(metadata_json)
    model = tf.saved_model.load(str(saved_model_dir))
    distribution = model.signatures[DISTRIBUTION]
    specs = distribution.structured_input_signature[1]
    names = [OBSERVATIONS, *state_input_names(metadata.policy_state_spec)]
    graph = distribution_graph(metadata.action_gym_space(), metadata.action_distribution)

    def policy(*inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        outputs = distribution(**dict(zip(names, inputs, strict=True)))
        return {ACTION: graph.greedy_action(outputs), **outputs}

    def metadata_signature() -> dict[str, tf.Tensor]:
        return {METADATA: tf.constant(metadata_json)}

    policy.__name__ = TFLITE_POLICY_SIGNATURE  # the converter names each signature after its function
    metadata_signature.__name__ = TFLITE_METADATA_SIGNATURE
    functions = [
        tf.function(policy, input_signature=[specs[name] for name in names]).get_concrete_function(),
        tf.function(metadata_signature, input_signature=[]).get_concrete_function(),
    ]
    for quantization in (None, *quantizations):
        converter = tf.lite.TFLiteConverter.from_concrete_functions(functions, model)
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        (directory / tflite_file(quantization)).write_bytes(converter.convert())

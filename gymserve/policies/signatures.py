"""The names an exported policy's models use, written by the exporters and read by the loaders.

SavedModel signatures and ONNX and LiteRT inputs and outputs share them: `observations` (and a recurrent
policy's `state_0`, `state_1`, ...) in; `action`, the distribution parameters (the kind's
`parameter_names`) and `next_state_0`, `next_state_1`, ... out.
"""

from __future__ import annotations

import numpy as np

GREEDY_ACTION = "greedy_action"
STOCHASTIC_ACTION = "stochastic_action"
DISTRIBUTION = "distribution"
GET_INITIAL_STATE = "get_initial_state"
GET_METADATA = "get_metadata"
SIGNATURES = (GREEDY_ACTION, STOCHASTIC_ACTION, DISTRIBUTION, GET_INITIAL_STATE, GET_METADATA)
DEFAULT_SIGNATURE = "serving_default"  # what TensorFlow Serving runs when a request names no signature

OBSERVATIONS = "observations"
SEED = "seed"
BATCH_SIZE = "batch_size"
ACTION = "action"
METADATA = "metadata"
ONNX_METADATA_PROPERTY = "gymserve_metadata"
NEXT_STATE_PREFIX = "next_"
TFLITE_POLICY_SIGNATURE = "policy"  # a LiteRT model's action, distribution parameters and next state
TFLITE_METADATA_SIGNATURE = "metadata"


def observation_dtype(observation_dtype_of_space: np.dtype) -> np.dtype:
    """The dtype policies and their models take observations in: uint8 for uint8 spaces (image
    frames, scaled inside the network, so a client sends a quarter of the bytes), float32 otherwise."""
    return np.dtype(np.uint8) if observation_dtype_of_space == np.uint8 else np.dtype(np.float32)


def state_name(index: int) -> str:
    """The model input holding part `index` of a recurrent policy's state."""
    return f"state_{index}"


def next_state_name(index: int) -> str:
    """The model output holding part `index` of a recurrent policy's next state."""
    return NEXT_STATE_PREFIX + state_name(index)

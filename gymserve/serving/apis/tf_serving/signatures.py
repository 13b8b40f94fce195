"""The TensorFlow Serving signatures of a served policy, shared by the gRPC and REST APIs.

Plain numpy, no TensorFlow: the REST API describes and runs the same signatures as the gRPC
`PredictionService` without importing tensorflow-serving-api.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gymserve.policies import ActionMode
from gymserve.policies.signatures import observation_dtype
from gymserve.serving.server.echo import capped, echo, echo_all

if TYPE_CHECKING:
    from collections.abc import Collection

    from gymserve.policies import Policy

DEFAULT_SIGNATURE = "serving_default"
SIGNATURES = ("greedy_action", DEFAULT_SIGNATURE, "stochastic_action", "distribution")
PREDICT_METHOD = "tensorflow/serving/predict"

TensorSpec = tuple[np.dtype, tuple[int, ...]]  # dtype (int64 or float32) and shape, -1 for the batch


def check_inputs(signature: str, names: Collection[str]) -> None:
    """ValueError unless `signature` exists and `names` are exactly its inputs."""
    if signature not in SIGNATURES:
        raise ValueError(f"no signature {echo(signature)}; signatures: {', '.join(SIGNATURES)}")
    expected = {"observations", "seed"} if signature == "stochastic_action" else {"observations"}
    if set(names) != expected:
        raise ValueError(
            f"signature {signature} takes inputs {', '.join(sorted(expected))}; "
            f"the request has {echo_all(sorted(names)) or 'none'}"
        )


def check_seed(seed: object) -> int:
    """`seed` when it is an integer >= 0 (numpy or Python, not a bool); ValueError otherwise."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise ValueError(f"seed is {capped(repr(seed), 64)}; expected an integer scalar >= 0")


def run_signature(
    policy: Policy, signature: str, observations: np.ndarray, seed: int | None
) -> dict[str, np.ndarray]:
    """The outputs of `signature` for a batch of `observations`."""
    state = policy.get_initial_state(len(observations))
    if signature == "distribution":
        return policy.distribution(observations, state).parameters()
    mode = ActionMode.STOCHASTIC if signature == "stochastic_action" else ActionMode.GREEDY
    return {"action": policy.action(observations, state, mode, seed=seed).action}


def signature_specs(policy: Policy) -> dict[str, tuple[dict[str, TensorSpec], dict[str, TensorSpec]]]:
    """Each signature's inputs and outputs, found by running the policy on one sample observation."""
    space = policy.observation_space
    sample = np.zeros((1, *space.shape), np.float32).clip(space.low, space.high)
    action = policy.action(sample).action
    parameters = policy.distribution(sample).parameters()
    # float32, or uint8 for image frames: what the exported SavedModel's signatures take
    observations = {"observations": (observation_dtype(space.dtype), (-1, *space.shape))}
    action_output = {"action": (_wire_dtype(action), (-1, *action.shape[1:]))}
    specs = {}
    for name in SIGNATURES:
        inputs, outputs = dict(observations), action_output
        if name == "stochastic_action":
            inputs["seed"] = (np.dtype(np.int64), ())
        elif name == "distribution":
            outputs = {key: (_wire_dtype(value), (-1, *value.shape[1:])) for key, value in parameters.items()}
        specs[name] = (inputs, outputs)
    return specs


def _wire_dtype(array: np.ndarray) -> np.dtype:
    return np.dtype(np.int64) if array.dtype.kind in "iub" else array.dtype.newbyteorder("=")

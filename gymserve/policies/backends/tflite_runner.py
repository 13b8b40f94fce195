"""Running an exported policy's LiteRT (`.tflite`) model with `ai-edge-litert`.

The interpreter runs on the calling thread with `threads` worker threads (1 by default, as for
onnxruntime). It resizes its inputs when the batch size changes, so a robot acting on one
observation at a time pays for the resize once. Observations go in as the model takes them:
float32, or uint8 frames for image policies (scaled inside the model); states are float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from gymserve.policies.base import PolicyState
from gymserve.policies.metadata import (
    PolicyLoadError,
    PolicyMetadata,
    check_embedded_action_space,
    check_model_shapes,
    state_input_names,
)
from gymserve.policies.signatures import (
    ACTION,
    METADATA,
    NEXT_STATE_PREFIX,
    OBSERVATIONS,
    TFLITE_METADATA_SIGNATURE,
    TFLITE_POLICY_SIGNATURE,
)


class TfliteRunner:
    """Greedy actions and distribution parameters from the `policy` signature of a LiteRT model."""

    backend = "tflite"

    def __init__(self, path: Path, metadata: PolicyMetadata, threads: int = 1):
        try:
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            signatures = interpreter.get_signature_list()
        except Exception as error:  # the interpreter raises ValueError or RuntimeError for a bad model
            raise PolicyLoadError(path, f"LiteRT cannot load the model ({error})") from None
        missing = {TFLITE_POLICY_SIGNATURE, TFLITE_METADATA_SIGNATURE} - set(signatures)
        if missing:
            raise PolicyLoadError(path, f"model lacks the signatures {sorted(missing)}")
        self._policy = interpreter.get_signature_runner(TFLITE_POLICY_SIGNATURE)
        inputs = self._policy.get_input_details()
        self._observation_dtype = inputs[OBSERVATIONS]["dtype"] if OBSERVATIONS in inputs else None
        states = [details["dtype"] for name, details in inputs.items() if name != OBSERVATIONS]
        if self._observation_dtype not in (np.float32, np.uint8) or any(
            dtype != np.float32 for dtype in states
        ):
            described = {name: details["dtype"].__name__ for name, details in inputs.items()}
            raise PolicyLoadError(
                path, f"model inputs are {described}; expected float32 (observations: float32 or uint8)"
            )
        check_model_shapes(
            path,
            metadata,
            {name: _per_row(details) for name, details in inputs.items()},
            {name: _per_row(details) for name, details in self._policy.get_output_details().items()},
        )
        embedded = interpreter.get_signature_runner(TFLITE_METADATA_SIGNATURE)()[METADATA]
        check_embedded_action_space(path, metadata, bytes(embedded.item()).decode("utf-8", errors="replace"))
        self._state_names = state_input_names(metadata.policy_state_spec)
        self._next_state_names = [NEXT_STATE_PREFIX + name for name in self._state_names]

    def greedy_actions(self, observations: np.ndarray, state: PolicyState) -> tuple[np.ndarray, PolicyState]:
        outputs = self._run(observations, state)
        return outputs[ACTION], self._next_state(outputs)

    def parameters(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[dict[str, np.ndarray], PolicyState]:
        outputs = self._run(observations, state)
        parameters = {
            name: value
            for name, value in outputs.items()
            if name != ACTION and not name.startswith(NEXT_STATE_PREFIX)
        }
        return parameters, self._next_state(outputs)

    def _run(self, observations: np.ndarray, state: PolicyState) -> dict[str, np.ndarray]:
        named_state = zip(self._state_names, state, strict=True)
        observations = np.asarray(observations, self._observation_dtype)
        return self._policy(**{OBSERVATIONS: observations}, **dict(named_state))

    def _next_state(self, outputs: dict[str, np.ndarray]) -> PolicyState:
        return tuple(outputs[name] for name in self._next_state_names)


def _per_row(details: dict) -> tuple[int | None, ...]:
    return tuple(None if size < 0 else int(size) for size in details["shape_signature"][1:])

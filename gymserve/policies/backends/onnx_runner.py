"""Running an exported policy's ONNX model on onnxruntime.

The session runs on the calling thread with `intra_op_threads` worker threads (1 by default:
policies are small and a server runs many requests side by side, so extra threads only add
contention). Calls go to the session's compiled `run` rather than `InferenceSession.run`,
whose checks of the feed (names, ownership, GPU graph capture) took 2.7 of a small model's
15.6 us per call: the runner builds every feed itself, and with the CPU provider alone there
is no other provider to fall back to.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

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
    NEXT_STATE_PREFIX,
    OBSERVATIONS,
    ONNX_METADATA_PROPERTY,
    observation_dtype,
)

_ONNX_TYPES = {np.dtype(np.float32): "tensor(float)", np.dtype(np.uint8): "tensor(uint8)"}


class OnnxRunner:
    """Greedy actions and distribution parameters from an ONNX policy model."""

    backend = "onnx"

    def __init__(
        self, path: Path, metadata: PolicyMetadata, intra_op_threads: int = 1, inter_op_threads: int = 1
    ):
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = inter_op_threads
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own untyped errors for unreadable models
            raise PolicyLoadError(path, f"onnxruntime cannot load the model ({error})") from None
        self._run = getattr(self._session, "_sess", self._session).run  # (output names, feed, run options)
        inputs = self._session.get_inputs()
        accepted = {node.name: "tensor(float)" for node in inputs}
        accepted[OBSERVATIONS] = _ONNX_TYPES[observation_dtype(np.dtype(metadata.observation_space.dtype))]
        if any(node.type != accepted[node.name] for node in inputs):
            described = [(node.name, node.type) for node in inputs]
            raise PolicyLoadError(path, f"model inputs are {described}; expected {accepted}")
        check_model_shapes(
            path,
            metadata,
            {node.name: _per_row(node.shape) for node in inputs},
            {node.name: _per_row(node.shape) for node in self._session.get_outputs()},
        )
        embedded = self._session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_PROPERTY)
        check_embedded_action_space(path, metadata, embedded)
        self._state_names = state_input_names(metadata.policy_state_spec)
        next_state = [NEXT_STATE_PREFIX + name for name in self._state_names]
        self._greedy_names = [ACTION, *next_state]
        self._parameter_names = [
            name for name in metadata.output_shapes() if name != ACTION and name not in next_state
        ]
        self._distribution_names = [*self._parameter_names, *next_state]

    def greedy_actions(self, observations: np.ndarray, state: PolicyState) -> tuple[np.ndarray, PolicyState]:
        action, *next_state = self._run(self._greedy_names, self._inputs(observations, state), None)
        return action, tuple(next_state)

    def parameters(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[dict[str, np.ndarray], PolicyState]:
        values = self._run(self._distribution_names, self._inputs(observations, state), None)
        count = len(self._parameter_names)
        return dict(zip(self._parameter_names, values[:count], strict=True)), tuple(values[count:])

    def _inputs(self, observations: np.ndarray, state: PolicyState) -> dict[str, np.ndarray]:
        if not self._state_names:  # stateless: the common case, without building a second dict
            return {OBSERVATIONS: observations}
        return {OBSERVATIONS: observations, **dict(zip(self._state_names, state, strict=True))}


def _per_row(shape: list[int | str | None]) -> tuple[int | None, ...]:
    return tuple(size if isinstance(size, int) else None for size in shape[1:])

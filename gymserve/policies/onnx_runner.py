"""Running an exported policy's ONNX model on onnxruntime.

The session runs on the calling thread with `intra_op_threads` worker threads (1 by default:
policies are small and a server runs many requests side by side, so extra threads only add
contention).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from gymserve.policies.metadata import PolicyLoadError, PolicyMetadata, check_model_shapes


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
        inputs = self._session.get_inputs()
        if [node.name for node in inputs] != ["observations"] or inputs[0].type != "tensor(float)":
            described = [(node.name, node.type) for node in inputs]
            raise PolicyLoadError(
                path, f"model inputs are {described}; expected one float tensor 'observations'"
            )
        check_model_shapes(
            path,
            metadata,
            _per_row(inputs[0].shape),
            {node.name: _per_row(node.shape) for node in self._session.get_outputs()},
        )
        self._parameter_names = [name for name in metadata.output_shapes() if name != "action"]

    def greedy_actions(self, observations: np.ndarray) -> np.ndarray:
        return self._session.run(["action"], {"observations": observations})[0]

    def parameters(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        values = self._session.run(self._parameter_names, {"observations": observations})
        return dict(zip(self._parameter_names, values, strict=True))


def _per_row(shape: list[int | str | None]) -> tuple[int | None, ...]:
    return tuple(size if isinstance(size, int) else None for size in shape[1:])

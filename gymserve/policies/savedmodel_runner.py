"""Running an exported policy's SavedModel signatures in TensorFlow.

TensorFlow's thread pools are process-wide; set them with `tf.config.threading` before the
first TensorFlow call if the defaults do not suit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from gymserve.policies.metadata import PolicyLoadError, PolicyMetadata, check_model_shapes


class SavedModelRunner:
    """Greedy actions and distribution parameters from the `greedy_action` / `distribution` signatures."""

    backend = "tensorflow"

    def __init__(self, directory: Path, metadata: PolicyMetadata):
        try:
            self._model = tf.saved_model.load(str(directory))
        except Exception as error:  # TensorFlow raises many types for an unreadable SavedModel
            raise PolicyLoadError(directory, f"TensorFlow cannot load the SavedModel ({error})") from None
        missing = {"greedy_action", "distribution"} - set(self._model.signatures)
        if missing:
            raise PolicyLoadError(directory, f"SavedModel lacks the signatures {sorted(missing)}")
        self._greedy = self._model.signatures["greedy_action"]
        self._distribution = self._model.signatures["distribution"]
        inputs = self._greedy.structured_input_signature[1]
        if set(inputs) != {"observations"} or inputs["observations"].dtype != tf.float32:
            raise PolicyLoadError(directory, f"greedy_action takes {inputs}; expected float32 'observations'")
        outputs = {**self._greedy.structured_outputs, **self._distribution.structured_outputs}
        check_model_shapes(
            directory,
            metadata,
            _per_row(inputs["observations"].shape),
            {name: _per_row(spec.shape) for name, spec in outputs.items()},
        )

    def greedy_actions(self, observations: np.ndarray) -> np.ndarray:
        return self._greedy(observations=tf.constant(observations))["action"].numpy()

    def parameters(self, observations: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self._distribution(observations=tf.constant(observations))
        return {name: value.numpy() for name, value in outputs.items()}


def _per_row(shape: tf.TensorShape) -> tuple[int | None, ...]:
    return tuple(shape.as_list()[1:])

"""Running an exported policy's SavedModel signatures in TensorFlow.

TensorFlow's thread pools are process-wide; set them with `tf.config.threading` before the
first TensorFlow call if the defaults do not suit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

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
    DISTRIBUTION,
    GET_METADATA,
    GREEDY_ACTION,
    METADATA,
    NEXT_STATE_PREFIX,
    OBSERVATIONS,
    observation_dtype,
)


class SavedModelRunner:
    """Greedy actions and distribution parameters from the `greedy_action` / `distribution` signatures."""

    backend = "tensorflow"

    def __init__(self, directory: Path, metadata: PolicyMetadata):
        try:
            self._model = tf.saved_model.load(str(directory))
        except Exception as error:  # TensorFlow raises many types for an unreadable SavedModel
            raise PolicyLoadError(directory, f"TensorFlow cannot load the SavedModel ({error})") from None
        missing = {GREEDY_ACTION, DISTRIBUTION} - set(self._model.signatures)
        if missing:
            raise PolicyLoadError(directory, f"SavedModel lacks the signatures {sorted(missing)}")
        self._greedy = self._model.signatures[GREEDY_ACTION]
        self._distribution = self._model.signatures[DISTRIBUTION]
        inputs = self._greedy.structured_input_signature[1]
        accepted = {name: tf.float32 for name in inputs}
        accepted[OBSERVATIONS] = tf.as_dtype(observation_dtype(np.dtype(metadata.observation_space.dtype)))
        if any(spec.dtype != accepted.get(name) for name, spec in inputs.items()):
            raise PolicyLoadError(
                directory, f"{GREEDY_ACTION} takes {inputs}; expected {[t.name for t in accepted.values()]}"
            )
        outputs = {**self._greedy.structured_outputs, **self._distribution.structured_outputs}
        check_model_shapes(
            directory,
            metadata,
            {name: _per_row(spec.shape) for name, spec in inputs.items()},
            {name: _per_row(spec.shape) for name, spec in outputs.items()},
        )
        check_embedded_action_space(directory, metadata, self._embedded_metadata())
        self._state_names = state_input_names(metadata.policy_state_spec)

    def _embedded_metadata(self) -> str | None:
        if GET_METADATA not in self._model.signatures:
            return None
        return self._model.signatures[GET_METADATA]()[METADATA].numpy().decode("utf-8", errors="replace")

    def greedy_actions(self, observations: np.ndarray, state: PolicyState) -> tuple[np.ndarray, PolicyState]:
        outputs = self._greedy(**self._inputs(observations, state))
        return outputs[ACTION].numpy(), self._next_state(outputs)

    def parameters(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[dict[str, np.ndarray], PolicyState]:
        outputs = self._distribution(**self._inputs(observations, state))
        next_state = self._next_state(outputs)
        return {
            name: value.numpy() for name, value in outputs.items() if not name.startswith(NEXT_STATE_PREFIX)
        }, next_state

    def _inputs(self, observations: np.ndarray, state: PolicyState) -> dict[str, tf.Tensor]:
        named_state = zip(self._state_names, state, strict=True)
        return {
            OBSERVATIONS: tf.constant(observations),
            **{name: tf.constant(part) for name, part in named_state},
        }

    def _next_state(self, outputs: dict[str, tf.Tensor]) -> PolicyState:
        return tuple(outputs[NEXT_STATE_PREFIX + name].numpy() for name in self._state_names)


def _per_row(shape: tf.TensorShape) -> tuple[int | None, ...]:
    return tuple(shape.as_list()[1:])

"""Loading an exported policy back as a `Policy`, on onnxruntime, TensorFlow or LiteRT.

    policy = gymserve.policies.load("exports/cartpole")            # ONNX when exported
    policy = gymserve.policies.load("exports/cartpole", backend="tensorflow")
    policy = gymserve.policies.load("exports/cartpole/policy-dynamic-int8.tflite")
    step = policy.action(observation, mode="stochastic", seed=7)

`path` is an export directory (holding policy.json), or its `policy.onnx` file, `saved_model/`
directory or one of its `.tflite` files (`backend="tflite"` on a directory loads the float32
`policy.tflite`). The model's files are checked against the sha256 hashes in
policy.json and its input and output shapes against the spaces there, so a missing, truncated,
corrupted or mismatched export raises `PolicyLoadError` naming the file.

Greedy actions come from the model's own output; stochastic actions are drawn in numpy from the
model's distribution parameters, so an in-process `ActorPolicy` and both backends draw the same
actions for the same seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from gymserve.common.extras import extra_imports
from gymserve.policies.base import (
    ActionMode,
    Policy,
    PolicyState,
    PolicyStep,
    check_recurrent_state,
    recurrent_state_spec,
    zero_state,
)
from gymserve.policies.distributions import Distribution, distribution_from_parameters
from gymserve.policies.metadata import (
    METADATA_FILE,
    ONNX_FILE,
    SAVED_MODEL_DIR,
    TFLITE_FILE,
    TFLITE_QUANTIZATIONS,
    PolicyLoadError,
    PolicyMetadata,
    read_metadata,
    tflite_file,
    verify_files,
)

Backend = Literal["onnx", "tensorflow", "tflite"]
_BACKEND_FORMATS: dict[str, str] = {"onnx": "onnx", "tensorflow": "savedmodel", "tflite": "tflite"}
_TFLITE_FILES = {tflite_file(quantization) for quantization in (None, *TFLITE_QUANTIZATIONS)}


class ModelRunner(Protocol):
    """What a backend provides: batched greedy actions and distribution parameters."""

    backend: str

    def greedy_actions(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[np.ndarray, PolicyState]: ...

    def parameters(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[dict[str, np.ndarray], PolicyState]: ...


class LoadedPolicy(Policy):
    """A policy served by an exported model; `metadata` is its validated policy.json."""

    def __init__(self, runner: ModelRunner, metadata: PolicyMetadata, seed: int | None = None):
        super().__init__(metadata.observation_gym_space(), metadata.action_gym_space(), seed)
        self._runner = runner
        self._metadata = metadata
        self._state_spec = recurrent_state_spec(tuple(part.shape[0] for part in metadata.policy_state_spec))

    @property
    def metadata(self) -> PolicyMetadata:
        return self._metadata

    @property
    def backend(self) -> str:
        return self._runner.backend

    @property
    def policy_state_spec(self) -> tuple[tuple[tuple[int, ...], np.dtype], ...]:
        return self._state_spec

    def get_initial_state(self, batch_size: int | None = None) -> PolicyState:
        return zero_state(self._state_spec, batch_size)

    def _check_state(self, state: PolicyState, batch_size: int) -> PolicyState:
        return check_recurrent_state(state, self._state_spec, batch_size) if self._state_spec else ()

    def _action(
        self, observations: np.ndarray, state: PolicyState, mode: ActionMode, rng: np.random.Generator
    ) -> PolicyStep:
        if mode is ActionMode.STOCHASTIC:
            distribution, next_state = self._distribution_and_state(observations, state)
            return PolicyStep(distribution.sample(rng), next_state)
        return PolicyStep(*self._runner.greedy_actions(observations, state))

    def _distribution_and_state(
        self, observations: np.ndarray, state: PolicyState
    ) -> tuple[Distribution, PolicyState]:
        parameters, next_state = self._runner.parameters(observations, state)
        return distribution_from_parameters(parameters, self.action_space), next_state

    def _distribution(self, observations: np.ndarray, state: PolicyState) -> Distribution:
        return self._distribution_and_state(observations, state)[0]


def load(
    path: str | Path,
    backend: Backend | None = None,
    *,
    seed: int | None = None,
    intra_op_threads: int = 1,
    inter_op_threads: int = 1,
) -> LoadedPolicy:
    """Load an exported policy; `backend` defaults to ONNX, then TensorFlow, then LiteRT, the first
    the export has.

    The thread counts apply to onnxruntime (LiteRT takes `intra_op_threads`); TensorFlow's are
    process-wide (`tf.config.threading`).
    """
    path = Path(path)
    export_dir, backend = _locate(path, backend)
    model_file = path.name if backend == "tflite" and path.is_file() else TFLITE_FILE
    metadata = read_metadata(export_dir)
    if backend is None:
        backend = next(
            (name for name, format_ in _BACKEND_FORMATS.items() if format_ in metadata.formats), "onnx"
        )
    if backend not in _BACKEND_FORMATS:
        raise ValueError(f"unknown backend {backend!r}; expected 'onnx', 'tensorflow' or 'tflite'")
    if _BACKEND_FORMATS[backend] not in metadata.formats:
        formats = ", ".join(metadata.formats)
        raise PolicyLoadError(
            export_dir / METADATA_FILE,
            f"the export has no {backend} model (formats: {formats}); choose another backend",
        )
    if backend == "onnx":
        with extra_imports("loading a policy with backend='onnx'"):
            from gymserve.policies.backends.onnx_runner import OnnxRunner

        verify_files(export_dir, metadata, ONNX_FILE)
        runner = OnnxRunner(export_dir / ONNX_FILE, metadata, intra_op_threads, inter_op_threads)
    elif backend == "tflite":
        with extra_imports("loading a policy with backend='tflite'"):
            from gymserve.policies.backends.tflite_runner import TfliteRunner

        if model_file not in metadata.files:
            raise PolicyLoadError(export_dir / model_file, "the export records no such LiteRT model")
        verify_files(export_dir, metadata, model_file)
        runner = TfliteRunner(export_dir / model_file, metadata, intra_op_threads)
    else:
        with extra_imports("loading a policy with backend='tensorflow'"):
            from gymserve.policies.backends.savedmodel_runner import SavedModelRunner

        verify_files(export_dir, metadata, f"{SAVED_MODEL_DIR}/")
        runner = SavedModelRunner(export_dir / SAVED_MODEL_DIR, metadata)
    return LoadedPolicy(runner, metadata, seed)


def _locate(path: Path, backend: Backend | None) -> tuple[Path, Backend | None]:
    """The export directory holding `path`, and the backend its kind implies."""
    if path.is_dir() and (path / METADATA_FILE).is_file():
        return path, backend
    implied: Backend | None = None
    if path.is_file() and path.name == ONNX_FILE:
        implied = "onnx"
    elif path.is_file() and path.name in _TFLITE_FILES:
        implied = "tflite"
    elif path.is_dir() and path.name == SAVED_MODEL_DIR:
        implied = "tensorflow"
    if implied is None:
        if not path.exists():
            raise PolicyLoadError(path, "no such file or directory")
        raise PolicyLoadError(
            path,
            f"not a policy export; expected a directory with {METADATA_FILE}, "
            f"or its {ONNX_FILE}, {SAVED_MODEL_DIR}/ or {TFLITE_FILE}",
        )
    if backend is not None and backend != implied:
        raise ValueError(
            f"{path} is a model for the {implied!r} backend, but backend={backend!r} was asked for"
        )
    return path.parent, implied

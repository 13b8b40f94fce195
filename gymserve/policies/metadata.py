"""What an exported policy says about itself: `policy.json`, validated by pydantic.

An export directory holds

    policy.json      this metadata, with the sha256 of every other file
    saved_model/     the TensorFlow SavedModel (format "savedmodel")
    policy.onnx      the ONNX model (format "onnx")
    policy.tflite    the LiteRT model (format "tflite"), with optional quantized variants
                     policy-dynamic-int8.tflite and policy-float16.tflite

The models embed the same metadata without the `files` hashes (a file cannot hold its own
hash), so a model copied on its own still says which spaces it acts in. A Box's `low` and
`high` are each one number when every element has that bound, else a row-major flattened list
(files with a list of equal bounds still load); infinite bounds are the JSON strings
"Infinity" / "-Infinity".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import gymnasium as gym
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import gymserve
from gymserve.policies.distributions import KINDS, DistributionKind, distribution_class
from gymserve.policies.signatures import ACTION, NEXT_STATE_PREFIX, OBSERVATIONS, state_name

METADATA_FILE = "policy.json"
SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = "policy.onnx"
FORMAT_VERSION = 1

ExportFormat = Literal["savedmodel", "onnx", "tflite"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("savedmodel", "onnx", "tflite")
DEFAULT_EXPORT_FORMATS: tuple[ExportFormat, ...] = ("savedmodel", "onnx")
TfliteQuantization = Literal["dynamic-int8", "float16"]
TFLITE_QUANTIZATIONS: tuple[TfliteQuantization, ...] = ("dynamic-int8", "float16")
TFLITE_FILE = "policy.tflite"


def tflite_file(quantization: TfliteQuantization | None = None) -> str:
    """The LiteRT model's file name: `policy.tflite` for float32, `policy-<quantization>.tflite` else."""
    return TFLITE_FILE if quantization is None else f"policy-{quantization}.tflite"


class PolicyLoadError(Exception):
    """An exported policy that cannot be loaded: missing, truncated, corrupted or inconsistent."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class ExportError(Exception):
    """An export that could not be written (a full disk, an unwritable folder); the message is one
    line naming the export and the cause, what `gymserve export` prints."""

    def __init__(self, out_dir: str | Path, cause: BaseException):
        self.path = Path(out_dir)
        self.reason = _one_line(cause)
        super().__init__(f"cannot export to {out_dir}: {self.reason}")


def _one_line(error: BaseException) -> str:
    """The cause of a failed write in one line: 'No space left on device (PATH)'."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror} ({error.filename})" if error.filename else error.strerror
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")


class BoxSpec(_Strict):
    """A Box space: shape, dtype and bounds, each row-major flattened or, when every element has the
    same bound, one number (an 84x84 image's 0 and 255 instead of two lists of 7,056)."""

    kind: Literal["box"] = "box"
    shape: tuple[int, ...]
    dtype: str
    low: float | list[float]
    high: float | list[float]

    @model_validator(mode="after")
    def _one_number_or_one_per_element(self) -> BoxSpec:
        """Equal bounds read as one number, so both forms compare equal; a list must fit `shape`."""
        size = int(np.prod(self.shape))
        for name in ("low", "high"):
            bound = getattr(self, name)
            if isinstance(bound, float):
                continue
            if len(bound) != size:
                raise ValueError(f"{name} has {len(bound)} values for shape {self.shape} ({size} elements)")
            if size and all(value == bound[0] for value in bound):
                object.__setattr__(self, name, float(bound[0]))
        return self

    def to_space(self) -> gym.spaces.Box:
        dtype = np.dtype(self.dtype)
        low, high = (_bound_array(bound, self.shape, dtype) for bound in (self.low, self.high))
        return gym.spaces.Box(low, high, self.shape, dtype)


def _bound_array(bound: float | list[float], shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(bound, float):
        return np.full(shape, bound, dtype)
    return np.asarray(bound, dtype).reshape(shape)


class DiscreteSpec(_Strict):
    """A Discrete space of `n` actions `start, ..., start + n - 1`."""

    kind: Literal["discrete"] = "discrete"
    n: int = Field(gt=0)
    start: int = 0

    def to_space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(self.n, start=self.start)


SpaceSpec = Annotated[BoxSpec | DiscreteSpec, Field(discriminator="kind")]


def space_spec(space: gym.spaces.Space) -> BoxSpec | DiscreteSpec:
    """The serializable description of a Box or Discrete space."""
    if isinstance(space, gym.spaces.Discrete):
        return DiscreteSpec(n=int(space.n), start=int(space.start))
    if isinstance(space, gym.spaces.Box):
        return BoxSpec(
            shape=space.shape,
            dtype=space.dtype.name,
            low=space.low.astype(np.float64).ravel().tolist(),  # one number if all equal: see BoxSpec
            high=space.high.astype(np.float64).ravel().tolist(),
        )
    raise TypeError(f"only Box and Discrete spaces can be exported, got {space}")


class StateSpec(_Strict):
    """One part of a recurrent policy's state, per observation: a float32 array of `shape`."""

    shape: tuple[int, ...]
    dtype: Literal["float32"] = "float32"


def state_input_names(spec: tuple[StateSpec, ...]) -> list[str]:
    """The models' state inputs, `state_0`, `state_1`, ...; their outputs add the prefix `next_`."""
    return [state_name(index) for index in range(len(spec))]


class PolicyEvaluation(_Strict):
    """How well the exported policy did: `episodes` episodes reset with seeds `seed`, `seed + 1`,
    ... With `during_training`, the run's own greedy evaluation of the exported checkpoint (what
    `gymserve export RUN_DIR` and exports while training record); otherwise a separate evaluation of
    the export (what `gymserve eval EXPORT_DIR --episodes N --seed S` prints). None: not recorded."""

    average_return: float
    mode: Literal["greedy", "stochastic"] = "greedy"
    episodes: int | None = Field(default=None, gt=0)
    seed: int | None = None
    return_std: float | None = Field(default=None, ge=0, description="standard deviation of episode returns")
    average_episode_length: float | None = None
    during_training: bool = False


class TrainingInfo(_Strict):
    """Where a policy comes from and how well it did; every field is optional."""

    env_id: str | None = None
    algorithm: str | None = None
    train_step: int | None = Field(default=None, ge=0)
    evaluation: PolicyEvaluation | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_evaluation_return(cls, data: Any) -> Any:
        """policy.json files written before `evaluation` was the one field held the run's greedy
        return as `evaluation_return` (beside `evaluation`, when a separate one was recorded)."""
        if not isinstance(data, dict) or "evaluation_return" not in data:
            return data
        data = dict(data)
        training_return = data.pop("evaluation_return")
        if data.get("evaluation") is None and training_return is not None:
            data["evaluation"] = {"average_return": training_return, "during_training": True}
        return data


class PolicyMetadata(TrainingInfo):
    """The contents of `policy.json`."""

    format_version: Literal[1] = FORMAT_VERSION
    gymserve_version: str = gymserve.__version__
    created: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    observation_space: BoxSpec
    action_space: SpaceSpec
    action_distribution: DistributionKind | None = Field(
        default=None, description="How the model's outputs are read; None: categorical or squashed Gaussian"
    )
    policy_state_spec: tuple[StateSpec, ...] = Field(
        default=(),
        description="The state a recurrent policy's models take and return beside observations; () stateless",
    )
    formats: tuple[ExportFormat, ...]
    files: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256 hex digest")

    def observation_gym_space(self) -> gym.spaces.Box:
        return self.observation_space.to_space()

    def action_gym_space(self) -> gym.spaces.Box | gym.spaces.Discrete:
        return self.action_space.to_space()

    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """The per-observation shape of every model output: the action, the parameters of the
        distribution kind, and a recurrent policy's next state."""
        state = {
            NEXT_STATE_PREFIX + name: part.shape
            for name, part in zip(
                state_input_names(self.policy_state_spec), self.policy_state_spec, strict=True
            )
        }
        action_space = self.action_gym_space()
        kind = self.action_distribution
        if kind is not None and not isinstance(action_space, KINDS[kind].space_type):
            kind = None  # a kind of another space: the space's default, so the shape check names the mismatch
        parameters = distribution_class(action_space, kind).parameter_shapes(action_space)
        return {ACTION: action_space.shape, **parameters, **state}

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """The per-observation shape of every model input."""
        state = dict(zip(state_input_names(self.policy_state_spec), self.policy_state_spec, strict=True))
        return {
            OBSERVATIONS: self.observation_space.shape,
            **{name: part.shape for name, part in state.items()},
        }


def check_model_shapes(
    path: Path,
    metadata: PolicyMetadata,
    input_shapes: dict[str, tuple[int | None, ...]],
    output_shapes: dict[str, tuple[int | None, ...]],
) -> None:
    """Raise if a model's per-observation input or output shapes disagree with the metadata's spaces
    and state.

    Shapes exclude the batch dimension; None stands for a dimension the model leaves dynamic.
    """
    expected_inputs = metadata.input_shapes()
    if sorted(input_shapes) != sorted(expected_inputs):
        raise PolicyLoadError(
            path, f"model inputs are {sorted(input_shapes)}; policy.json says {sorted(expected_inputs)}"
        )
    for name, expected in expected_inputs.items():
        if input_shapes[name] != expected:
            raise PolicyLoadError(
                path, f"model takes {name} of shape {input_shapes[name]}; policy.json says {expected}"
            )
    for name, shape in metadata.output_shapes().items():
        if name not in output_shapes:
            raise PolicyLoadError(path, f"model has no output {name!r}; outputs: {sorted(output_shapes)}")
        if output_shapes[name] != shape:
            raise PolicyLoadError(
                path,
                f"model output {name!r} has shape {output_shapes[name]} per observation; "
                f"policy.json says {shape}",
            )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_tree(directory: Path) -> dict[str, str]:
    """The sha256 of every file under `directory`, keyed by relative POSIX path."""
    return {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def read_metadata(export_dir: Path) -> PolicyMetadata:
    """The validated `policy.json` of an export directory."""
    path = export_dir / METADATA_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyLoadError(
            path, "metadata file is missing; expected the policy.json written by export"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyLoadError(path, f"cannot read metadata ({error})") from None
    try:
        return PolicyMetadata.model_validate_json(text)
    except ValidationError as error:
        raise PolicyLoadError(path, f"metadata is truncated or invalid: {error}") from None


def verify_files(export_dir: Path, metadata: PolicyMetadata, prefix: str) -> None:
    """Check that every recorded file whose path starts with `prefix` exists and has its hash.

    First, before any file is read, that every recorded path and everything under the model's
    own path stays inside the export: policy.json is data from wherever the export came from.
    """
    _check_inside(export_dir, metadata.files, export_dir / prefix.rstrip("/"))
    recorded = {name: digest for name, digest in metadata.files.items() if name.startswith(prefix)}
    if not recorded:
        raise PolicyLoadError(export_dir / METADATA_FILE, f"metadata records no file for {prefix!r}")
    for name, digest in recorded.items():
        path = export_dir / name
        if not path.is_file():
            raise PolicyLoadError(path, "file is missing from the export")
        if sha256_file(path) != digest:
            raise PolicyLoadError(path, "file is corrupted or truncated: its sha256 differs from policy.json")


def _check_inside(export_dir: Path, names: Iterable[str], model_path: Path) -> None:
    """Raise unless every name is a plain relative path, and it and every entry under `model_path`
    resolve (symlinks followed) inside `export_dir`."""
    root = export_dir.resolve()
    for name in names:
        parts = name.split("/")
        if "\\" in name or any(part in ("", ".", "..") for part in parts):
            raise PolicyLoadError(
                export_dir / METADATA_FILE,
                f"files key {name!r} is not a relative path inside the export (no '..', '.', empty "
                "or absolute parts, '/' as the separator); refusing to read it",
            )
        resolved = (export_dir / name).resolve()
        if not resolved.is_relative_to(root):
            raise PolicyLoadError(
                export_dir / METADATA_FILE,
                f"files key {name!r} resolves to {resolved}, outside the export (through a symlink); "
                "refusing to read it",
            )
    entries = model_path.rglob("*") if model_path.is_dir() and not model_path.is_symlink() else []
    for entry in [model_path, *entries]:
        if (entry.exists() or entry.is_symlink()) and not entry.resolve().is_relative_to(root):
            raise PolicyLoadError(
                entry, f"resolves to {entry.resolve()}, outside the export; refusing to read it"
            )


def check_embedded_action_space(path: Path, metadata: PolicyMetadata, embedded_json: str | None) -> None:
    """Raise unless the model was exported for the action space policy.json declares.

    The greedy action is computed inside the model (`start` added, Box bounds applied), so a
    policy.json edited to another start or other bounds would serve actions outside its space.
    """
    try:
        embedded = _EmbeddedActionSpace.model_validate_json(embedded_json or "").action_space
    except ValidationError:
        raise PolicyLoadError(
            path, "the model carries no readable gymserve metadata; re-export it with gymserve export"
        ) from None
    if embedded != metadata.action_space:
        raise PolicyLoadError(
            path,
            f"the model was exported for the action space {embedded.to_space()}, but policy.json "
            f"declares {metadata.action_space.to_space()}; its actions would fall outside the declared "
            "space, re-export the policy instead of editing policy.json",
        )


class _EmbeddedActionSpace(BaseModel):
    """The part of the metadata embedded in a model that the model's own computation depends on."""

    action_space: SpaceSpec

"""Training configuration: the fields every algorithm shares, and how a run's config is resolved.

Each algorithm's hyperparameters are a pydantic model that extends `TrainingConfig`, so one flat
JSON object configures a run. A run's config is resolved in layers, later ones winning:

    the algorithm's defaults
    < the shipped file gymserve/agents/training/configs/<algorithm>_<env name>.json, when it exists
    < the user's config file
    < overrides (the command line's --seed, --max-steps, --max-episodes, --target-reward, --export-*)

The resolved config remembers which layer gave each field its value, so an invalid value is
reported with where it came from, and `gymserve config` shows every field with its source.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gymserve.common.validation_errors import describe_validation_error
from gymserve.policies.repository import split_policy_path

CONFIG_DIRECTORY = Path(__file__).parent / "configs"

# Fields that say when to stop, not how to learn: a run may be resumed with other values.
STOPPING_FIELDS = frozenset({"max_steps", "max_episodes", "target_reward", "early_stopping_patience"})
# Fields that say where the policy is exported while training, not how to learn: also free on resume.
EXPORT_FIELDS = frozenset({"export_every", "export_to", "export_keep"})
DEFAULT_SOURCE = "default"

# The convolutional encoders of image observations (gymserve.agents.networks.IMAGE_ENCODERS).
ImageEncoder = Literal["nature_cnn", "impala_cnn"]
IMAGE_ENCODER_DESCRIPTION = (
    "Convolutional encoder of uint8 image observations [channels, height, width] before the "
    "hidden_sizes layers: 'nature_cnn' (Mnih et al., 2015; hidden_sizes [512]) or 'impala_cnn' "
    "(Espeholt et al., 2018; hidden_sizes [256]); None for vector observations."
)
MIXED_PRECISION_DESCRIPTION = (
    "Compute the gradient steps' image encoder and hidden layers in bfloat16, weights and heads in "
    "float32 (faster on CPUs with AMX or AVX512-BF16, slower without); acting, evaluations and "
    "exports stay float32. Needs image_encoder."
)


def check_mixed_precision(image_encoder: str | None, mixed_precision: bool) -> None:
    """Raise ValueError for mixed precision without an image encoder, where it gains nothing."""
    if mixed_precision and image_encoder is None:
        raise ValueError("mixed_precision applies to image networks: set image_encoder, or leave it false")


class ConfigError(ValueError):
    """A config file or field value that cannot be used."""


class TrainingConfig(BaseModel):
    """The training loop's settings; algorithms extend this model with their hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Old field name -> current name; config files using an old name still load, with a warning.
    renamed_fields: ClassVar[dict[str, str]] = {}

    seed: int = Field(0, description="Seeds Python, numpy, TensorFlow, the network weights and the envs.")
    max_steps: int = Field(100_000, gt=0, description="Stop after this many environment steps (all envs).")
    max_episodes: int | None = Field(
        None,
        gt=0,
        description="Stop once this many training episodes have ended (all envs); None: no episode limit.",
    )
    target_reward: float | None = Field(
        None,
        description="Stop once a greedy evaluation's AverageReturn reaches this; None trains to max_steps.",
    )
    num_envs: int = Field(1, gt=0, description="Training environments stepped side by side.")
    eval_interval: int = Field(10_000, gt=0, description="Environment steps between greedy evaluations.")
    eval_episodes: int = Field(
        20, gt=0, description="Episodes per evaluation (AverageReturn, AverageEpisodeLength)."
    )
    checkpoint_interval: int = Field(
        10_000, gt=0, description="Environment steps between 'latest' checkpoints (also written at the end)."
    )
    export_every: int | None = Field(
        None,
        gt=0,
        description="Export the policy each time the step count crosses a multiple of this, to "
        "export_to/<step>/; None: no exports while training.",
    )
    export_to: str | None = Field(
        None,
        description="REPOSITORY/NAME the exports go to, one version directory each, which "
        "`gymserve serve --repository REPOSITORY` serves as policy NAME.",
    )
    export_keep: int | None = Field(
        None, gt=0, description="Keep this run's newest K exports, deleting its older ones; None keeps all."
    )
    summary_interval: int = Field(
        1_000, gt=0, description="Environment steps between TensorBoard writes of the algorithm's metrics."
    )
    mean_return_window: int = Field(100, gt=0, description="Training episodes averaged into the mean return.")
    lr_plateau_patience: int | None = Field(
        None, gt=0, description="Evaluations without a new best return before the learning rate is reduced."
    )
    lr_plateau_factor: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="Factor the learning rate is multiplied by at each plateau; a learning-rate schedule "
        "(linear_decay_steps) applies on top of it.",
    )
    min_learning_rate: float = Field(1e-5, ge=0, description="The plateau rule never goes below this rate.")
    early_stopping_patience: int | None = Field(
        None, gt=0, description="Evaluations without a new best return before training stops."
    )
    deterministic_ops: bool = Field(
        True, description="Enable TensorFlow op determinism so a seed reproduces a run exactly."
    )

    @field_validator("export_to")
    @classmethod
    def _check_export_to(cls, export_to: str | None) -> str | None:
        if export_to is not None:
            split_policy_path(export_to)
        return export_to

    @model_validator(mode="after")
    def _check_export_fields_go_together(self) -> TrainingConfig:
        if (self.export_every is None) != (self.export_to is None):
            raise ValueError("export_every and export_to go together: give both or neither")
        if self.export_keep is not None and self.export_to is None:
            raise ValueError("export_keep needs export_every and export_to")
        return self

    @model_validator(mode="before")
    @classmethod
    def _accept_renamed_fields(cls, values: Any) -> Any:
        return cls.current_field_names(values) if isinstance(values, dict) else values

    @classmethod
    def current_field_names(cls, values: dict[str, Any]) -> dict[str, Any]:
        """`values` with every renamed field under its current name (a FutureWarning per old name)."""
        renamed = {old: new for old, new in cls.renamed_fields.items() if old in values}
        if not renamed:
            return values
        values = dict(values)
        for old, new in renamed.items():
            if new in values:
                raise ValueError(f"config field {old!r} was renamed {new!r}; give only {new!r}")
            warnings.warn(
                f"config field {old!r} is deprecated and will be removed; it is now called {new!r}",
                FutureWarning,
                stacklevel=2,
            )
            values[new] = values.pop(old)
        return values


@dataclass(frozen=True)
class ResolvedConfig:
    """A validated config and, for every field set by a layer, the layer it came from."""

    config: TrainingConfig
    sources: dict[str, str]

    def source(self, name: str) -> str:
        """Where field `name` got its value: a layer's name, or "default"."""
        return self.sources.get(name, DEFAULT_SOURCE)

    def describe(self) -> str:
        """Every field as `name = value  (source)` over its description, in the model's order."""
        lines = []
        for name, field in type(self.config).model_fields.items():
            lines.append(self.field_line(name))
            lines.append(f"    {field.description}")
        return "\n".join(lines)

    def field_line(self, name: str) -> str:
        """`name = value  (source)` of one field."""
        return f"{name} = {json.dumps(getattr(self.config, name))}  ({self.source(name)})"


def shipped_config_path(algorithm: str, env_id: str) -> Path:
    """Where the tuned defaults of `algorithm` on `env_id` ship, e.g. configs/dqn_CartPole-v1.json."""
    env_name = env_id.rsplit("/", 1)[-1]
    return CONFIG_DIRECTORY / f"{algorithm}_{env_name}.json"


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The JSON object in `path`, with errors that name the file."""
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"config file {path} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {path} holds a {type(values).__name__}; expected a JSON object of fields"
        )
    return values


def resolve_config(
    config_class: type[TrainingConfig],
    algorithm: str,
    env_id: str | None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    override_sources: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """The config of a run, layered as the module docstring says.

    `override_sources` names where each override came from (e.g. "--max-steps"); "override" otherwise.
    Without `env_id`, no shipped per-env config applies.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    shipped = None if env_id is None else shipped_config_path(algorithm, env_id)
    if shipped is not None and shipped.exists():
        layers.append((f"shipped {shipped.name}", read_config_file(shipped)))
    if config_file is not None:
        layers.append((f"config file {config_file}", read_config_file(config_file)))
    return layered_config(config_class, layers, overrides, override_sources)


def layered_config(
    config_class: type[TrainingConfig],
    layers: list[tuple[str, dict[str, Any]]],
    overrides: dict[str, Any] | None = None,
    override_sources: Mapping[str, str] | None = None,
) -> ResolvedConfig:
    """`layers` (source, values) applied in order, then `overrides`, validated as a `config_class`."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        try:
            layer = config_class.current_field_names(layer)
        except ValueError as error:
            raise ConfigError(f"{error} (in {source})") from None
        values.update(layer)
        sources.update(dict.fromkeys(layer, source))
    for name, value in (overrides or {}).items():
        values[name] = value
        sources[name] = (override_sources or {}).get(name, "override")
    return ResolvedConfig(validate_config(config_class, values, sources), sources)


def validate_config(
    config_class: type[TrainingConfig], values: dict[str, Any], source: str | Mapping[str, str]
) -> TrainingConfig:
    """`values` as a `config_class`, or a ConfigError listing each bad field, what it expects and
    where its value came from (`source`: one for all values, or one per field name)."""
    try:
        return config_class.model_validate(values)
    except ValidationError as error:
        sources = dict.fromkeys(values, source) if isinstance(source, str) else source
        problems = describe_validation_error(error, sources)
        raise ConfigError(f"invalid {config_class.__name__}: {problems}") from None


def config_differences(stored: TrainingConfig, requested: TrainingConfig) -> list[str]:
    """The learning-relevant fields whose values differ, as 'name: stored -> requested'."""
    old, new = stored.model_dump(), requested.model_dump()
    return [
        f"{name}: {old.get(name)!r} -> {new.get(name)!r}"
        for name in sorted(old.keys() | new.keys())
        if name not in STOPPING_FIELDS | EXPORT_FIELDS and old.get(name) != new.get(name)
    ]

"""Training configuration: the fields every algorithm shares, and how a run's config is resolved.

Each algorithm's hyperparameters are a pydantic model that extends `TrainingConfig`, so one flat
JSON object configures a run. A run's config is resolved in layers, later ones winning:

    the algorithm's defaults
    < the shipped file gymserve/agents/configs/<algorithm>_<env name>.json, when it exists
    < the user's config file
    < command-line overrides (--seed, --max-steps, --target-reward)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

CONFIG_DIRECTORY = Path(__file__).parent / "configs"

# Fields that say when to stop, not how to learn: a run may be resumed with other values.
STOPPING_FIELDS = frozenset({"max_steps", "target_reward", "early_stopping_patience"})


class ConfigError(ValueError):
    """A config file or field value that cannot be used."""


class TrainingConfig(BaseModel):
    """The training loop's settings; algorithms extend this model with their hyperparameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Old field name -> current name; config files using an old name still load, with a warning.
    renamed_fields: ClassVar[dict[str, str]] = {}

    seed: int = Field(0, description="Seeds Python, numpy, TensorFlow, the network weights and the envs.")
    max_steps: int = Field(100_000, gt=0, description="Stop after this many environment steps (all envs).")
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
    summary_interval: int = Field(
        1_000, gt=0, description="Environment steps between TensorBoard writes of the algorithm's metrics."
    )
    mean_return_window: int = Field(100, gt=0, description="Training episodes averaged into the mean return.")
    lr_plateau_patience: int | None = Field(
        None, gt=0, description="Evaluations without a new best return before the learning rate is reduced."
    )
    lr_plateau_factor: float = Field(
        0.5, gt=0, lt=1, description="Factor the learning rate is multiplied by."
    )
    min_learning_rate: float = Field(1e-5, ge=0, description="The plateau rule never goes below this rate.")
    early_stopping_patience: int | None = Field(
        None, gt=0, description="Evaluations without a new best return before training stops."
    )
    deterministic_ops: bool = Field(
        True, description="Enable TensorFlow op determinism so a seed reproduces a run exactly."
    )

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
    env_id: str,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainingConfig:
    """The config of a run, layered as the module docstring says."""
    values: dict[str, Any] = {}
    shipped = shipped_config_path(algorithm, env_id)
    if shipped.exists():
        values.update(config_class.current_field_names(read_config_file(shipped)))
    if config_file is not None:
        values.update(config_class.current_field_names(read_config_file(config_file)))
    values.update(overrides or {})
    return validate_config(config_class, values, source=str(config_file or shipped))


def validate_config(
    config_class: type[TrainingConfig], values: dict[str, Any], source: str
) -> TrainingConfig:
    """`values` as a `config_class`, or a ConfigError listing each bad field and what it expects."""
    try:
        return config_class.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'config'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(f"invalid {config_class.__name__} (from {source}): {problems}") from None


def config_differences(stored: TrainingConfig, requested: TrainingConfig) -> list[str]:
    """The learning-relevant fields whose values differ, as 'name: stored -> requested'."""
    old, new = stored.model_dump(), requested.model_dump()
    return [
        f"{name}: {old.get(name)!r} -> {new.get(name)!r}"
        for name in sorted(old.keys() | new.keys())
        if name not in STOPPING_FIELDS and old.get(name) != new.get(name)
    ]

"""Search spaces: which config fields a study varies, and over which values.

A search space is a JSON or YAML mapping from config field names to one of

    {"type": "float", "low": 1e-4, "high": 3e-3, "log": true}     # log-uniform, or uniform without log
    {"type": "int", "low": 3, "high": 20, "step": 1, "log": false}
    {"type": "categorical", "choices": [[64, 64], [128, 128]]}    # any JSON values, lists included

each with an optional "note" saying why the range is what it is. Every algorithm ships one,
gymserve/agents/training/configs/<algorithm>_search_space.json; a file given by the user replaces it whole.
A space is checked before any trial starts: every name must be a field of the algorithm's config
that tuning may vary, every range must hold a value, and every bound and choice must be a valid
value of its field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from gymserve.agents.training.config import CONFIG_DIRECTORY, TrainingConfig
from gymserve.common.extras import require
from gymserve.tuning.errors import TuningError

if TYPE_CHECKING:
    import optuna

# Set by the study itself: the seed and budget are the same for every trial, and trials are compared
# (pruned) at the same evaluation steps.
UNTUNABLE_FIELDS = frozenset({"seed", "max_steps", "target_reward", "eval_interval"})


class SearchSpaceError(TuningError):
    """A search-space file or entry that cannot be used."""


class _Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    note: str | None = Field(None, description="Why the range is what it is.")


class FloatRange(_Range):
    type: Literal["float"]
    low: float
    high: float
    log: bool = Field(False, description="Sample log-uniformly (both bounds must be positive).")
    step: float | None = Field(None, gt=0, description="Sample only low + k * step.")


class IntRange(_Range):
    type: Literal["int"]
    low: int
    high: int
    log: bool = Field(False, description="Sample log-uniformly (both bounds must be positive).")
    step: int = Field(1, gt=0, description="Sample only low + k * step.")


class Categorical(_Range):
    type: Literal["categorical"]
    choices: list[Any] = Field(description="The values to choose from; lists and objects are allowed.")


Parameter = Annotated[FloatRange | IntRange | Categorical, Field(discriminator="type")]
_PARAMETERS = TypeAdapter(dict[str, Parameter])


class SearchSpace:
    """Named parameter ranges, checked against one algorithm's config class."""

    def __init__(self, parameters: dict[str, Parameter], source: str):
        self.parameters = parameters
        self.source = source

    @classmethod
    def read(cls, path: str | Path) -> SearchSpace:
        """The search space in a .json, .yaml or .yml file."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise SearchSpaceError(f"search space file {path} does not exist") from None
        if path.suffix in (".yaml", ".yml"):
            # imported here, so that without the tune extra `tune` first says that Optuna is missing
            yaml = require("yaml", "a YAML search space")
            parse, parse_error = yaml.safe_load, yaml.YAMLError
        else:
            parse, parse_error = json.loads, json.JSONDecodeError
        try:
            values = parse(text)
        except parse_error as error:
            raise SearchSpaceError(f"search space file {path} cannot be parsed: {error}") from None
        if not isinstance(values, dict) or not values:
            raise SearchSpaceError(
                f"search space file {path} must hold a non-empty mapping of config fields to ranges"
            )
        try:
            parameters = _PARAMETERS.validate_python(values)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}" for problem in error.errors()
            )
            raise SearchSpaceError(f"search space file {path}: {problems}") from None
        return cls(parameters, str(path))

    @classmethod
    def shipped(cls, algorithm: str) -> SearchSpace:
        """The search space gymserve ships for `algorithm`."""
        path = shipped_search_space_path(algorithm)
        if not path.exists():
            raise SearchSpaceError(f"no search space ships for {algorithm!r}; give one with --search-space")
        return cls.read(path)

    def check(self, config_class: type[TrainingConfig]) -> None:
        """Raise a SearchSpaceError naming the first unusable entry for `config_class`."""
        fields = config_class.model_fields
        for name, parameter in self.parameters.items():
            where = f"search space {self.source}: {name}"
            if name not in fields:
                raise SearchSpaceError(
                    f"{where}: unknown parameter for {config_class.__name__}; "
                    f"its fields are {', '.join(sorted(set(fields) - UNTUNABLE_FIELDS))}"
                )
            if name in UNTUNABLE_FIELDS:
                raise SearchSpaceError(
                    f"{where}: cannot be tuned ({', '.join(sorted(UNTUNABLE_FIELDS))} are set by the study)"
                )
            for problem in _range_problems(parameter):
                raise SearchSpaceError(f"{where}: {problem}")
            field = TypeAdapter(Annotated[fields[name].annotation, fields[name]])
            for value in _extreme_values(parameter):
                try:
                    field.validate_python(value)
                except ValidationError as error:
                    message = error.errors()[0]["msg"]
                    raise SearchSpaceError(f"{where}: {value!r} is not a valid value ({message})") from None

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Config field values for `trial`, drawn by its study's sampler."""
        values = {}
        for name, parameter in self.parameters.items():
            if isinstance(parameter, FloatRange):
                values[name] = trial.suggest_float(
                    name, parameter.low, parameter.high, log=parameter.log, step=parameter.step
                )
            elif isinstance(parameter, IntRange):
                values[name] = trial.suggest_int(
                    name, parameter.low, parameter.high, log=parameter.log, step=parameter.step
                )
            else:
                labels = {_choice_label(choice): choice for choice in parameter.choices}
                values[name] = labels[trial.suggest_categorical(name, list(labels))]
        return values


def shipped_search_space_path(algorithm: str) -> Path:
    return CONFIG_DIRECTORY / f"{algorithm}_search_space.json"


def _choice_label(choice: Any) -> Any:
    """Optuna stores only scalars as choices: lists and objects go in as their JSON text."""
    return json.dumps(choice) if isinstance(choice, list | dict) else choice


def _range_problems(parameter: Parameter) -> list[str]:
    if isinstance(parameter, Categorical):
        if not parameter.choices:
            return ["empty range: no choices"]
        labels = [_choice_label(choice) for choice in parameter.choices]
        return [] if len(set(map(repr, labels))) == len(labels) else ["choices repeat a value"]
    if parameter.low > parameter.high:
        return [f"empty range: low {parameter.low} > high {parameter.high}"]
    if parameter.log and parameter.low <= 0:
        return [f"a log range needs low > 0, got {parameter.low}"]
    stepped = parameter.step is not None if isinstance(parameter, FloatRange) else parameter.step != 1
    if parameter.log and stepped:
        return ["a range takes log or step, not both"]
    return []


def _extreme_values(parameter: Parameter) -> list[Any]:
    if isinstance(parameter, Categorical):
        return list(parameter.choices)
    return [parameter.low, parameter.high]

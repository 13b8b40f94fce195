"""Command-line flags for every training config field, generated from the algorithms' config models.

`--n-steps 128` sets `n_steps`, `--hidden-sizes 64,64` sets `hidden_sizes`, `--lr` and `--n-envs`
are the names xagents users know. The flags are read from the shipped `config_fields.json`, so
`gymserve train --help` lists them without importing an algorithm (and TensorFlow); after a config
model changes, regenerate the file with

    python -m gymserve.cli.config_flags

A flag's value is read as JSON where it parses (numbers, true/false, null, lists), as a
comma-separated list for list fields, else as a string; the config model then validates it, naming
the flag.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any

FIELDS_FILE = Path(__file__).with_name("config_fields.json")

# xagents' flag -> our config field, for flags whose name differs.
ALIASES = {
    "--n-envs": "num_envs",
    "--lr": "learning_rate",
    "--entropy-coef": "ent_coef",
    "--value-coef": "vf_coef",
    "--grad-norm": "max_grad_norm",
    "--lam": "gae_lambda",
    "--ppo-epochs": "n_epochs",
    "--buffer-max-size": "buffer_size",
    "--buffer-batch-size": "batch_size",
    "--buffer-initial-size": "learning_starts",
    "--reward-buffer-size": "mean_return_window",
    "--plateau-reduce-factor": "lr_plateau_factor",
    "--plateau-reduce-patience": "lr_plateau_patience",
    "--early-stop-patience": "early_stopping_patience",
    "--policy-noise-coef": "target_policy_noise",
    "--noise-clip": "target_noise_clip",
    "--ema-alpha": "average_decay",
    "--importance-c": "truncation_clip",
    "--delta": "trust_region_delta",
    "--critic-iterations": "critic_epochs",
}
OVERRIDES = "config_overrides"  # the namespace attribute: field -> (value, flag given)


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@functools.cache
def config_fields() -> dict[str, dict[str, Any]]:
    """The shipped description of every field: its help (the most common one, and under "helps"
    the algorithms' own where it differs), value kind and the algorithms that have it."""
    return json.loads(FIELDS_FILE.read_text())


def describe_models() -> dict[str, dict[str, Any]]:
    """What `config_fields.json` should hold, read from the registered algorithms' config models."""
    from gymserve.agents.training.registry import REGISTRY, algorithm_class

    fields: dict[str, dict[str, Any]] = {}
    helps: dict[str, dict[str, str]] = {}
    for algorithm in REGISTRY:
        for name, field in algorithm_class(algorithm).config_class.model_fields.items():
            entry = fields.setdefault(name, {"help": "", **_accepted(field.annotation)})
            entry.setdefault("algorithms", []).append(algorithm)
            helps.setdefault(name, {})[algorithm] = field.description
    for name, entry in fields.items():
        [(entry["help"], _)] = collections.Counter(helps[name].values()).most_common(1)
        differing = {algorithm: text for algorithm, text in helps[name].items() if text != entry["help"]}
        if differing:
            entry["helps"] = differing
    return dict(sorted(fields.items()))


def field_help(entry: dict[str, Any], every: set[str], algorithm: str | None = None) -> str:
    """A field's description for `algorithm` if it has the field, else each description with the
    algorithms it is for (named unless it is for `every` algorithm)."""
    helps = entry.get("helps", {})
    if algorithm in entry["algorithms"]:
        return helps.get(algorithm, entry["help"])
    texts = collections.defaultdict(list)
    for name in entry["algorithms"]:
        texts[helps.get(name, entry["help"])].append(name)
    return "; ".join(
        text if set(names) == every else f"{text} [{', '.join(names)}]" for text, names in texts.items()
    )


def _accepted(annotation: Any) -> dict[str, Any]:
    """{"accepts": the kinds of value a field takes (int, float, bool, str, list, choice, null)}, with
    "choices" for a Literal field."""
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    accepts, choices = [], []
    for kind in members:
        if kind is type(None):
            accepts.append("null")
        elif typing.get_origin(kind) is typing.Literal:
            accepts.append("choice")
            choices.extend(typing.get_args(kind))
        elif typing.get_origin(kind) in (tuple, list):
            accepts.append("list")
        else:
            accepts.append(kind.__name__)
    return {"accepts": accepts, "choices": choices} if choices else {"accepts": accepts}


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _metavar(entry: dict[str, Any]) -> str:
    """INT, FLOAT, BOOL, STR, {a,b} or INT,INT,..., with |null when None is allowed."""
    names = {"list": "INT,INT,...", "choice": "{" + ",".join(map(str, entry.get("choices", ()))) + "}"}
    return "|".join(names.get(kind, kind.upper()) if kind != "null" else kind for kind in entry["accepts"])


def _is_accepted(value: Any, entry: dict[str, Any]) -> bool:
    """Whether `value` is of a kind the field takes; the config model checks its range later."""
    checks = {
        "null": lambda: value is None,
        "bool": lambda: isinstance(value, bool),
        "int": lambda: isinstance(value, int) and not isinstance(value, bool),
        "float": lambda: isinstance(value, int | float) and not isinstance(value, bool),
        "str": lambda: isinstance(value, str),
        "list": lambda: isinstance(value, list),
        "choice": lambda: value in entry.get("choices", ()),
    }
    return any(checks[kind]() for kind in entry["accepts"])


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (and the xagents aliases), in a group after the command's own."""
    fields = config_fields()
    group = parser.add_argument_group(
        "config fields",
        "set one field each, over --config FILE; `gymserve config ALGORITHM` lists each with its "
        "default and meaning (fields not every algorithm has name theirs)",
    )
    aliases: dict[str, list[str]] = {}
    for alias, name in ALIASES.items():
        aliases.setdefault(name, []).append(alias)
    parser.set_defaults(**{OVERRIDES: {}})
    parser.formatter_class = _UsageWithoutFieldFlags
    everyone = _all_algorithms(fields)
    for name, entry in fields.items():
        group.add_argument(
            flag(name),
            *aliases.get(name, ()),
            action=_ConfigField,
            dest=f"field {name}",
            metavar=_metavar(entry),
            help=_escaped(field_help(entry, everyone)),
        )


def _escaped(text: str) -> str:
    """`text` as argparse's help, which formats it with %."""
    return text.replace("%", "%%")


class AlgorithmChoice(argparse.Action):
    """Stores ALGORITHM, and words the field flags' help for it, as `--help` after it shows them."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, *_
    ) -> None:
        setattr(namespace, self.dest, values)
        fields = config_fields()
        everyone = _all_algorithms(fields)
        for action in parser._actions:
            if isinstance(action, _ConfigField):
                entry = fields[action.dest.removeprefix("field ")]
                action.help = _escaped(field_help(entry, everyone, values))


def _all_algorithms(fields: dict[str, dict[str, Any]]) -> set[str]:
    return {algorithm for entry in fields.values() for algorithm in entry["algorithms"]}


class _UsageWithoutFieldFlags(argparse.HelpFormatter):
    """Some ninety field flags would bury the command's own in the usage line: they are listed
    in their group below it, and named there as [FIELD FLAGS]."""

    def _format_usage(self, usage: Any, actions: Any, groups: Any, prefix: Any) -> str:
        own = [action for action in actions if not isinstance(action, _ConfigField)]
        text = super()._format_usage(usage, own, groups, prefix)
        return text.rstrip("\n") + " [FIELD FLAGS]\n\n" if len(own) < len(actions) else text


class _ConfigField(argparse.Action):
    """Stores the parsed value, and the flag that gave it, under the field's name."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        name = self.dest.removeprefix("field ")
        entry = config_fields()[name]
        value = parse_value(values, "list" in entry["accepts"])
        if not _is_accepted(value, entry):
            raise argparse.ArgumentError(self, f"invalid {'|'.join(entry['accepts'])} value: {values!r}")
        overrides = dict(getattr(namespace, OVERRIDES))
        overrides[name] = (value, option_string)
        setattr(namespace, OVERRIDES, overrides)


def parse_value(text: str, is_list: bool) -> Any:
    """A flag's text as JSON where it parses, a list from `a,b` or `a` for list fields, else the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text
    if is_list and not isinstance(value, list | None):
        return [parse_value(part.strip(), False) for part in text.split(",") if part.strip()]
    return value


def config_overrides(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields set by flags, and the flag that set each; a flag `algorithm` lacks is an error."""
    fields = config_fields()
    overrides, sources = {}, {}
    known = args.algorithm in _all_algorithms(fields)
    for name, (value, option) in getattr(args, OVERRIDES, {}).items():
        algorithms = fields[name]["algorithms"]
        if known and args.algorithm not in algorithms:
            raise ValueError(f"{option} does not apply to {args.algorithm} (only to {', '.join(algorithms)})")
        overrides[name], sources[name] = value, option
    return overrides, sources


def fields_text(fields: dict[str, dict[str, Any]]) -> str:
    """The file's text: one field a line, so a change to a model is a one-line diff."""
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(entry)}" for name, entry in fields.items())
    return "{\n" + lines + "\n}\n"


def main() -> None:
    """Rewrite config_fields.json from the config models."""
    FIELDS_FILE.write_text(fields_text(describe_models()))
    print(f"wrote {FIELDS_FILE}")


if __name__ == "__main__":
    main()

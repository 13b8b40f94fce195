"""The algorithms `gymserve train` knows: one table of lazy "module:Class" entry points and what
each supports.

Importing this table is cheap; an algorithm's module (and TensorFlow) is imported only when the
algorithm is used. The CLI's choices, the README's table and the error messages read it, so a new
algorithm is one module plus one `register_algorithm` line.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from gymserve.common.extras import extra_imports

if TYPE_CHECKING:  # not the Algorithm base: it reads this table for its error messages
    from gymserve.agents.training.config import TrainingConfig

ActionKind = Literal["Discrete", "Box"]
Family = Literal["on-policy", "off-policy"]


@dataclass(frozen=True)
class AlgorithmEntry:
    """One registered algorithm: where its class is and what it supports."""

    entry_point: str  # "module:Class"
    # the gym action spaces it acts in: its class's `action_spaces`, named without importing it
    action_kinds: tuple[ActionKind, ...]
    # the skeleton it is built on: agents/on_policy (fresh rollouts) or agents/off_policy (replay)
    family: Family
    summary: str  # one line for the README table and listings
    # config field -> entry point of the class built instead when a run's config sets that field
    variants: Mapping[str, str] = field(default_factory=dict)


REGISTRY: dict[str, AlgorithmEntry] = {
    "dqn": AlgorithmEntry(
        "gymserve.agents.off_policy.dqn:DQN",
        ("Discrete",),
        "off-policy",
        "Deep Q-Network: double-Q targets, optional dueling head",
    ),
    "ppo": AlgorithmEntry(
        "gymserve.agents.on_policy.ppo:PPO",
        ("Discrete", "Box"),
        "on-policy",
        "Proximal Policy Optimization, clipped surrogate; `lstm_units` makes it recurrent",
        variants={"lstm_units": "gymserve.agents.on_policy.recurrent_ppo:RecurrentPPO"},
    ),
    "a2c": AlgorithmEntry(
        "gymserve.agents.on_policy.a2c:A2C",
        ("Discrete", "Box"),
        "on-policy",
        "Advantage Actor-Critic, one gradient step per rollout",
    ),
    "a3c": AlgorithmEntry(
        "gymserve.agents.on_policy.a3c:A3C",
        ("Discrete", "Box"),
        "on-policy",
        "Asynchronous A2C: worker threads apply gradients to shared weights",
    ),
    "sac": AlgorithmEntry(
        "gymserve.agents.off_policy.sac:SAC",
        ("Box",),
        "off-policy",
        "Soft Actor-Critic with a learned entropy temperature",
    ),
    "td3": AlgorithmEntry(
        "gymserve.agents.off_policy.td3:TD3",
        ("Box",),
        "off-policy",
        "Twin Delayed DDPG: twin critics, delayed actor, target smoothing",
    ),
    "ddpg": AlgorithmEntry(
        "gymserve.agents.off_policy.ddpg:DDPG",
        ("Box",),
        "off-policy",
        "Deep Deterministic Policy Gradient with Gaussian or Ornstein-Uhlenbeck noise",
    ),
    "trpo": AlgorithmEntry(
        "gymserve.agents.on_policy.trpo:TRPO",
        ("Discrete", "Box"),
        "on-policy",
        "Trust Region Policy Optimization: conjugate-gradient step within a KL bound",
    ),
    "acer": AlgorithmEntry(
        "gymserve.agents.on_policy.acer:ACER",
        ("Discrete",),
        "on-policy",
        "Actor-Critic with Experience Replay: Retrace targets, trust region, replayed rollouts",
    ),
}


class _EntryPoints(Mapping[str, str]):
    """Registry name -> "module:Class", read-only and always in step with REGISTRY."""

    def __getitem__(self, name: str) -> str:
        return REGISTRY[name].entry_point

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)

    def __repr__(self) -> str:
        return repr(dict(self))


ALGORITHMS: Mapping[str, str] = _EntryPoints()


class UnknownAlgorithmError(ValueError):
    """The name is not registered, or its implementation is not installed."""


def register_algorithm(
    name: str,
    entry_point: str,
    *,
    action_kinds: tuple[ActionKind, ...],
    family: Family,
    summary: str,
    variants: Mapping[str, str] | None = None,
) -> None:
    """Make `name` trainable (`train(name, ...)`, `gymserve train NAME`); `entry_point` is
    "module:Class", imported only when the algorithm is used."""
    if name in REGISTRY:
        raise ValueError(f"algorithm {name!r} is already registered as {REGISTRY[name].entry_point}")
    if entry_point.count(":") != 1:
        raise ValueError(f"entry point {entry_point!r} is not of the form 'module:Class'")
    REGISTRY[name] = AlgorithmEntry(entry_point, tuple(action_kinds), family, summary, dict(variants or {}))


def algorithm_class(name: str, config: TrainingConfig | None = None) -> type:
    """The Algorithm subclass registered as `name`; given a run's config, the variant that config
    asks for (`ppo` with `lstm_units`: RecurrentPPO), which shares the registered class's config."""
    try:
        entry = REGISTRY[name]
    except KeyError:
        raise UnknownAlgorithmError(
            f"unknown algorithm {name!r}; expected one of: {', '.join(REGISTRY)}"
        ) from None
    entry_point = entry.entry_point
    if config is not None:
        for config_field, variant in entry.variants.items():
            if getattr(config, config_field, None) is not None:
                entry_point = variant
    try:
        with extra_imports(f"the {name} algorithm"):
            return load_entry_point(entry_point)
    except ModuleNotFoundError as error:
        module_name = entry_point.split(":")[0]
        if error.name != module_name:
            raise
        raise UnknownAlgorithmError(
            f"algorithm {name!r} is not available in this version of gymserve ({module_name} is missing)"
        ) from None


def load_entry_point(entry_point: str) -> type:
    """The class a "module:Class" entry point names."""
    module_name, class_name = entry_point.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def actor_support(name: str) -> tuple[str, ...] | None:
    """How `name` trains with Ray actors: None if it cannot, else the config fields that must stay
    unset (their variants train in one process only); empty when it always can."""
    if algorithm_class(name).remote_collection is None:
        return None
    return tuple(
        config_field
        for config_field, variant in REGISTRY[name].variants.items()
        if load_entry_point(variant).remote_collection is None
    )

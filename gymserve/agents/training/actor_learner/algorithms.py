"""`make_algorithm`: an algorithm built as `gymserve train` builds it, ready for a Learner.

    algorithm = make_algorithm("sac", "Pendulum-v1", {"max_steps": 20_000})   # shipped config + overrides

It seeds Python, numpy and TensorFlow with the config's seed first, so the same seed gives the
same initial weights, and the same run, in a user loop as in `gymserve train`.
"""

from __future__ import annotations

from typing import Any

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.training.config import TrainingConfig, resolve_config
from gymserve.agents.training.registry import algorithm_class
from gymserve.agents.training.runs import RunInfo, build_algorithm


def make_algorithm(
    name: str, env_id: str, config: TrainingConfig | dict[str, Any] | None = None
) -> Algorithm:
    """Algorithm `name` for `env_id` with `config`: a full config, or field overrides on the shipped one."""
    if isinstance(config, TrainingConfig):
        info = RunInfo(name, env_id, config, {})
    else:
        resolved = resolve_config(algorithm_class(name).config_class, name, env_id, None, config)
        info = RunInfo(name, env_id, resolved.config, resolved.sources)
    return build_seeded(info)


def build_seeded(info: RunInfo) -> Algorithm:
    """The algorithm for `info`, built after seeding everything with its config's seed."""
    seed_everything(info.config)
    algorithm = build_algorithm(info)
    algorithm.run_info = info
    return algorithm


def seed_everything(config: TrainingConfig) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    if config.deterministic_ops:
        tf.config.experimental.enable_op_determinism()

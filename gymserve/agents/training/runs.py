"""Run directories: what a training run is (run.json) and loading its trained policy.

RUN_DIR/
    run.json        algorithm, env id, the resolved config and each field's source; written once,
                    checked on resume
    history.csv     the learning curve (history.py)
    checkpoints/    'latest' and 'best' (checkpoints.py)
    tensorboard/    summaries for `tensorboard --logdir RUN_DIR`
    exports.json    the policy versions the run exported while training (periodic_exports.py)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym

import gymserve
from gymserve.agents.training.checkpoints import CheckpointStore
from gymserve.agents.training.config import (
    ResolvedConfig,
    TrainingConfig,
    config_differences,
    layered_config,
    resolve_config,
    validate_config,
)
from gymserve.agents.training.registry import algorithm_class
from gymserve.agents.training.run_info import RunInfo
from gymserve.common.files import write_text_atomically
from gymserve.policies.metadata import PolicyEvaluation

if TYPE_CHECKING:
    from gymserve.agents.algorithm import Algorithm
    from gymserve.policies.actor_policy import ActorPolicy

RUN_FILE = "run.json"
EVAL_SEED_OFFSET = 1_000_000  # evaluation episodes never start like training episodes


class RunMismatchError(ValueError):
    """A run directory holds a run of another algorithm, environment or config."""


class UnknownEnvironmentError(ValueError):
    """Gymnasium cannot make the environment id."""


def read_run_info(run_dir: str | Path) -> RunInfo:
    """The RunInfo of `run_dir`, with an error that says so when it is not a run directory."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{run_dir} is not a training run directory (no {RUN_FILE}); create one with gymserve train"
        )
    values = json.loads(path.read_text())
    config_class = algorithm_class(values["algorithm"]).config_class
    config = validate_config(config_class, values["config"], source=str(path))
    return RunInfo(values["algorithm"], values["env_id"], config, values.get("config_sources", {}))


def run_config(
    algorithm: str,
    env_id: str,
    run_dir: str | Path,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    override_sources: dict[str, str] | None = None,
) -> ResolvedConfig:
    """The config to train `run_dir` with, and where each field's value comes from.

    A new run resolves the shipped defaults, `config_file` and `overrides` (config.py). A run
    directory of the same algorithm and env, given no config file, keeps its stored config with
    `overrides` on top, so rerunning the same command resumes it.
    """
    config_class = algorithm_class(algorithm).config_class
    if config_file is None and (Path(run_dir) / RUN_FILE).exists():
        stored = read_run_info(run_dir)
        if (stored.algorithm, stored.env_id) == (algorithm, env_id):
            layers = [(str(Path(run_dir) / RUN_FILE), stored.config.model_dump())]
            return layered_config(config_class, layers, overrides, override_sources)
    return resolve_config(config_class, algorithm, env_id, config_file, overrides, override_sources)


def open_run_dir(run_dir: str | Path, info: RunInfo) -> bool:
    """Create `run_dir` for `info`, or check it already holds that run; True if it does (resume)."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_FILE).exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(run_dir / RUN_FILE, info.to_json())
        return False
    stored = read_run_info(run_dir)
    problems = []
    if stored.algorithm != info.algorithm:
        problems.append(f"algorithm: {stored.algorithm!r} -> {info.algorithm!r}")
    if stored.env_id != info.env_id:
        problems.append(f"env: {stored.env_id!r} -> {info.env_id!r}")
    if not problems:
        problems = config_differences(stored.config, info.config)
    if problems:
        raise RunMismatchError(
            f"{run_dir} holds another run ({'; '.join(problems)}); resume it with its own settings "
            f"or choose a new --out directory"
        )
    return True


def environment_spaces(env_id: str) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """The observation and action spaces of `env_id`."""
    try:
        env = gym.make(env_id)
    except gym.error.Error as error:
        known = ", ".join(gymserve.envs.env_ids())
        raise UnknownEnvironmentError(
            f"cannot make environment {env_id!r}: {error} (gymserve environments: {known})"
        ) from None
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


def build_algorithm(info: RunInfo) -> Algorithm:
    """A freshly initialised algorithm for `info`, of the class its config asks for (spaces checked
    before anything is built)."""
    algorithm_type = algorithm_class(info.algorithm, info.config)
    observation_space, action_space = environment_spaces(info.env_id)
    algorithm_type.check_spaces(observation_space, action_space)
    return algorithm_type(info.config, observation_space, action_space)


@dataclass(frozen=True)
class TrainedPolicy:
    """A policy restored from a run's checkpoint, with what it was trained on."""

    policy: ActorPolicy
    env_id: str
    algorithm: str
    train_step: int
    evaluation_return: float | None  # greedy AverageReturn measured at that checkpoint
    config: TrainingConfig

    @property
    def evaluation(self) -> PolicyEvaluation | None:
        """The run's greedy evaluation of this checkpoint, as an export's policy.json records it."""
        return training_evaluation(self.config, self.evaluation_return)


def training_evaluation(config: TrainingConfig, average_return: float | None) -> PolicyEvaluation | None:
    """A greedy evaluation of a run with `config` (its `eval_episodes` episodes, from its seed plus
    EVAL_SEED_OFFSET) that averaged `average_return`; None when there was none."""
    if average_return is None:
        return None
    return PolicyEvaluation(
        average_return=average_return,
        episodes=config.eval_episodes,
        seed=config.seed + EVAL_SEED_OFFSET,
        during_training=True,
    )


def load_trained_policy(run_dir: str | Path, checkpoint: str = "best") -> TrainedPolicy:
    """The greedy-capable policy of `run_dir` at its 'best' or 'latest' checkpoint."""
    info = read_run_info(run_dir)
    store = CheckpointStore(Path(run_dir))
    directory = store.path(checkpoint)
    if directory is None:
        raise FileNotFoundError(
            f"{run_dir} has no {checkpoint!r} checkpoint yet; train longer (an evaluation writes 'best')"
        )
    algorithm = build_algorithm(info)
    algorithm.restore(directory, variables_only=True)
    state = store.trainer_state(checkpoint)
    return TrainedPolicy(
        policy=algorithm.policy(),
        env_id=info.env_id,
        algorithm=info.algorithm,
        train_step=int(state["total_steps"]),
        evaluation_return=state["evaluation_return"],
        config=info.config,
    )

"""The algorithm interface: what a learning algorithm supplies to the one training loop.

The `Trainer` (trainer.py) owns what all algorithms share: seeding, the training envs, greedy
evaluation, checkpoints, history, TensorBoard, the progress bar and the stop rules. An algorithm
supplies its networks, its optimizers and one method that collects experience and learns:

    algorithm = DQN(config, observation_space, action_space)  # builds networks and optimizers
    runner = EnvRunner.make(env_id, config.num_envs, seed)     # training envs + step clock
    while runner.total_steps < config.max_steps and not solved:
        metrics = algorithm.train_iteration(runner)            # act, store, update; scalar metrics
        # between iterations: evaluate algorithm.policy(), checkpoint, log, check stop rules

A subclass provides:

- class attributes `name` (its registry name), `config_class` (a pydantic model extending
  `TrainingConfig` with the hyperparameters, each a documented `Field`) and `action_spaces` (the
  gym space types it acts in; others are rejected before anything is built).
- `__init__(config, observation_space, action_space)`: call `super().__init__` first (it checks
  the spaces and config, stores them and seeds `self.rng`), then build networks and optimizers.
  The trainer has already seeded Python, numpy and TensorFlow.
- `networks()`: name -> keras.Model for every network whose weights are checkpointed (targets too).
- `optimizers()`: name -> keras optimizer; checkpointed (their slots may be created lazily). The
  plateau rule scales their learning rates through `reduce_learning_rate`, which also multiplies
  `learning_rate_scale`; a subclass that schedules its rates (on_policy's linear decay) sets
  each one to configured rate x schedule x `learning_rate_scale`, so the two compose.
- `policy_network()`: the network acting maps a float32 (B, *obs_shape) batch of raw observations
  to what gymserve.policies.distributions reads: logits (B, n) for Discrete (DQN: Q-values),
  [pre-tanh mean | log_std] (B, 2d) for Box, or [pre-tanh action | noise std] (B, 2d) for a
  deterministic actor that sets `policy_distribution = "noisy_deterministic"`; a recurrent one
  (PPO with `lstm_units`) also takes and returns its state parts (actor_policy.py). Evaluation,
  `gymserve play` and export act with it through `ActorPolicy`, so observation normalization
  must be a layer inside it
  (networks.RunningNormalization; the base class updates every such layer in `networks()` with
  each new batch of observations the runner produces).
- `train_iteration(runner) -> dict[str, float]`: step the runner (an env_runner.EnvRunner) at
  least once, learn, and return scalar metrics (losses, epsilon, ...) for TensorBoard and the
  progress bar. The trainer evaluates, checkpoints and checks stop rules only between
  iterations, so keep one short next to `eval_interval` (DQN: `train_freq` steps; PPO: one
  rollout). Drive schedules from `runner.total_steps`, which continues across resumes.
  Asynchronous workers (A3C) may `runner.split(n)` the envs and step the parts from threads;
  envs simulated elsewhere (inside a TensorFlow graph) report with `runner.record_steps`.
- optionally `remote_collection` (see below) for training with Ray actors, which needs
  `store` / `learn` (off_policy.algorithm) or `collect` / `learn_from_rollout` (on_policy).
- optionally `state()` / `load_state(arrays)`: extra numpy arrays to checkpoint, e.g. the replay
  buffer. Network and optimizer variables, `self.rng` and `learning_rate_scale` are checkpointed
  by the base class.

Off-policy algorithms also train from a user's loop (actor_learner/): `collect_policy` for an
`Actor`, `store` as its replay observer, and `train(sample_experience())` for one update from a
batch the caller holds; the others refuse those with UnsupportedInUserLoopError.

Runs find a subclass by its registry name: one entry in training/registry.py, or a
`register_algorithm` call from outside gymserve (docs/adding_an_algorithm.md).
"""

from __future__ import annotations

import abc
import json
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

import gymnasium as gym
import numpy as np

from gymserve.agents.training.config import TrainingConfig

if TYPE_CHECKING:
    import keras

    from gymserve.agents.training.actor_learner.collect_policy import CollectPolicy
    from gymserve.agents.training.env_runner import EnvRunner
    from gymserve.agents.training.run_info import RunInfo
    from gymserve.policies.actor_policy import ActorPolicy
    from gymserve.policies.distributions import DistributionKind

_WEIGHTS_PREFIX = "variables"
_STATE_FILE = "algorithm_state.npz"
_RNG_FILE = "rng.json"
_LEARNING_RATE_SCALE_FILE = "learning_rate_scale.json"


class UnsupportedActionSpaceError(ValueError):
    """The algorithm cannot act in the environment's action space."""


class UnsupportedInUserLoopError(TypeError):
    """The algorithm collects its own experience (whole rollouts), so a user loop cannot feed it."""


def check_spaces(
    name: str,
    action_spaces: tuple[type[gym.spaces.Space], ...],
    observation_space: gym.spaces.Space,
    action_space: gym.spaces.Space,
) -> None:
    """Raise UnsupportedActionSpaceError unless algorithm `name`, acting in `action_spaces`, can learn
    in these spaces. Callers that know only the registry's entry (no TensorFlow yet) call it too."""
    if not isinstance(observation_space, gym.spaces.Box):
        raise UnsupportedActionSpaceError(f"{name} needs a Box observation space, got {observation_space}")
    if not isinstance(action_space, action_spaces):
        supported = " or ".join(space.__name__ for space in action_spaces)
        raise UnsupportedActionSpaceError(
            f"{name} acts only in {supported} action spaces, but the environment's is "
            f"{action_space}; choose an algorithm that supports it"
        )


class Algorithm(abc.ABC):
    """A learning algorithm run by the `Trainer`; see the module docstring for the contract."""

    name: ClassVar[str]
    config_class: ClassVar[type[TrainingConfig]]
    action_spaces: ClassVar[tuple[type[gym.spaces.Space], ...]]
    # How the policy network's outputs are read; None: logits or a squashed Gaussian.
    policy_distribution: ClassVar[DistributionKind | None] = None
    # What Ray actors ship to a learner for it (agents/distributed): replay "transitions"
    # (off-policy), whole "rollouts" (on-policy), or None: the algorithm trains in one process only.
    remote_collection: ClassVar[Literal["transitions", "rollouts"] | None] = None

    def __init__(
        self, config: TrainingConfig, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
    ):
        self.check_spaces(observation_space, action_space)
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{self.name} takes a {self.config_class.__name__}, got a {type(config).__name__}"
            )
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.rng = np.random.default_rng(config.seed)
        self.learning_rate_scale = 1.0  # the plateau rule's reductions so far, on every optimizer's rate
        self._policy: ActorPolicy | None = None
        # What run it trains for (algorithm, env, config): make_algorithm sets it, a Learner reads it.
        self.run_info: RunInfo | None = None
        self._normalizers: list | None = None

    @classmethod
    def check_spaces(cls, observation_space: gym.spaces.Space, action_space: gym.spaces.Space) -> None:
        """Raise UnsupportedActionSpaceError unless this algorithm can learn in these spaces."""
        check_spaces(cls.name, cls.action_spaces, observation_space, action_space)

    # What a subclass provides.

    @abc.abstractmethod
    def networks(self) -> dict[str, keras.Model]:
        """Every network whose weights are checkpointed, by name."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """Every optimizer, by name."""

    @abc.abstractmethod
    def policy_network(self) -> keras.Model:
        """The network acting uses: observations -> distribution parameters (module docstring)."""

    @abc.abstractmethod
    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        """Step `runner` at least once, learn, and return scalar metrics."""

    def state(self) -> dict[str, np.ndarray]:
        """Extra arrays to checkpoint beside the variables (e.g. a replay buffer)."""
        return {}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:  # noqa: B027 (optional hook)
        """Restore what `state()` returned."""

    # What the base class provides.

    @property
    def collect_policy(self) -> CollectPolicy:
        """The exploring behaviour an `Actor` steps envs with (off-policy algorithms only)."""
        raise self._not_in_user_loop()

    def sample_experience(self, total_steps: int = 0) -> dict[str, np.ndarray]:
        """A batch for `train` from the algorithm's replay (off-policy algorithms only)."""
        raise self._not_in_user_loop()

    def train(self, experience: dict[str, np.ndarray]) -> dict[str, float]:
        """One update from a batch the caller sampled (off-policy algorithms only)."""
        raise self._not_in_user_loop()

    def _not_in_user_loop(self) -> UnsupportedInUserLoopError:
        from gymserve.agents.training.registry import REGISTRY

        off_policy = [name for name, entry in REGISTRY.items() if entry.family == "off-policy"]
        return UnsupportedInUserLoopError(
            f"{self.name} learns from rollouts it collects with its own value estimates, so an Actor or a "
            f"sampled batch cannot feed it; let it collect: Learner(algorithm, run_dir, collects=True) "
            f"(the off-policy algorithms, {', '.join(off_policy)}, train from a user loop)"
        )

    def policy(self) -> ActorPolicy:
        """An ActorPolicy over `policy_network()`; it sees every later weight update."""
        if self._policy is None:
            from gymserve.policies.actor_policy import ActorPolicy

            self._policy = ActorPolicy(
                self.policy_network(),
                self.observation_space,
                self.action_space,
                distribution=self.policy_distribution,
            )
        return self._policy

    def evaluation_policy(self) -> ActorPolicy:
        """The policy greedy evaluations act with: `policy()`, unless the algorithm has a faster one
        with the same outputs (the weights do not change during an evaluation)."""
        return self.policy()

    def policy_weights(self) -> list[np.ndarray]:
        """The acting network's weights (normalization statistics included), to act elsewhere."""
        return self.policy_network().get_weights()

    def set_policy_weights(self, weights: list[np.ndarray]) -> None:
        """Act with `policy_weights()` of another copy of this algorithm."""
        self.policy_network().set_weights(weights)

    def update_observation_statistics(self, observations: np.ndarray) -> None:
        """Feed a batch of observations to every RunningNormalization layer of the networks."""
        if self._normalizers is None:
            from gymserve.agents.networks import normalization_layers

            self._normalizers = normalization_layers(self.networks().values())
        for layer in self._normalizers:
            layer.update(observations)

    @property
    def learning_rate(self) -> float:
        """The learning rate of the first optimizer."""
        return float(next(iter(self.optimizers().values())).learning_rate.numpy())

    def reduce_learning_rate(self, factor: float, min_learning_rate: float) -> bool:
        """Multiply every optimizer's rate by `factor`, stopping at `min_learning_rate` (on the first
        optimizer's rate, which never rises); True if it was reduced.

        The reduction joins `learning_rate_scale`, which schedules apply on top of their own factor.
        """
        current = self.learning_rate
        reduced = max(current * factor, min_learning_rate)
        if reduced >= current:
            return False
        ratio = reduced / current
        self.learning_rate_scale *= ratio
        for optimizer in self.optimizers().values():
            optimizer.learning_rate.assign(float(optimizer.learning_rate.numpy()) * ratio)
        return True

    def save(self, directory: Path) -> None:
        """Write variables, extra state and the random generator's state into `directory`."""
        import tensorflow as tf

        tf.train.Checkpoint(**self._trackables()).write(str(directory / _WEIGHTS_PREFIX))
        np.savez(directory / _STATE_FILE, **self.state())
        (directory / _RNG_FILE).write_text(json.dumps(self.rng.bit_generator.state))
        (directory / _LEARNING_RATE_SCALE_FILE).write_text(json.dumps(self.learning_rate_scale))

    def restore(self, directory: Path, variables_only: bool = False) -> None:
        """Load what `save` wrote into this algorithm (built with the same config).

        `variables_only` skips the extra state and the generator, enough to act.
        """
        import tensorflow as tf

        tf.train.Checkpoint(**self._trackables()).read(str(directory / _WEIGHTS_PREFIX)).expect_partial()
        if variables_only:
            return
        with np.load(directory / _STATE_FILE) as arrays:
            self.load_state({name: arrays[name] for name in arrays.files})
        self.rng.bit_generator.state = json.loads((directory / _RNG_FILE).read_text())
        scale_file = directory / _LEARNING_RATE_SCALE_FILE
        if scale_file.exists():  # checkpoints written before the plateau scale was saved have none
            self.learning_rate_scale = json.loads(scale_file.read_text())

    def _trackables(self) -> dict[str, object]:
        trackables: dict[str, object] = {f"network_{name}": net for name, net in self.networks().items()}
        trackables.update({f"optimizer_{name}": opt for name, opt in self.optimizers().items()})
        return trackables

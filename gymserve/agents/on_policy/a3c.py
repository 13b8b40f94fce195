"""Asynchronous Advantage Actor-Critic (A3C, Mnih et al., 2016) with Python-thread workers.

The algorithm holds the global actor-critic and its optimizer. Each of `num_workers` threads has
its own group of envs and its own local copy of the networks, and repeats:

    rollout = n_steps steps of its envs with the local actor        # compiled, releases the GIL
    gradients = gradient of A2C's loss on it, w.r.t. the local weights
    with lock: apply gradients to the global weights; copy the global weights to the local copy

so workers compute on weights that other workers have since moved (the global step may advance
between a worker's pull and its push: the gradient staleness reported as a metric). One
`train_iteration` runs every worker for `rollouts_per_iteration` rollouts concurrently.
"""

from __future__ import annotations

import threading

import gymnasium as gym
import numpy as np
import tensorflow as tf
from pydantic import Field, model_validator

from gymserve.agents.on_policy.a2c import A2C
from gymserve.agents.on_policy.algorithm import (
    ActorCriticLoss,
    OnPolicyConfig,
    Rollout,
    collect_rollout,
    network_weights,
    prefixed,
    training_batch,
    unprefixed,
)
from gymserve.agents.on_policy.graph_envs import GraphEnvs
from gymserve.agents.training.env_runner import EnvRunner


class A3CConfig(OnPolicyConfig):
    """A3C hyperparameters; the defaults follow the classic A3C CartPole setup."""

    num_workers: int = Field(2, gt=0, description="Worker threads, each with its own envs and network copy.")
    num_envs: int = Field(2, gt=0, description="Training environments, shared out among the workers.")
    n_steps: int = Field(20, gt=0, description="Steps of a worker's envs per rollout (one gradient push).")
    learning_rate: float = Field(5e-4, gt=0, description="Learning rate of the shared optimizer.")
    ent_coef: float = Field(0.01, ge=0, description="Weight of the entropy bonus.")
    rollouts_per_iteration: int = Field(
        8, gt=0, description="Rollouts (pushes) of every worker per iteration."
    )

    @model_validator(mode="after")
    def _every_worker_has_an_env(self) -> A3CConfig:
        if self.num_envs < self.num_workers:
            raise ValueError(
                f"num_envs {self.num_envs} is less than num_workers {self.num_workers}; "
                f"every worker needs at least one env"
            )
        return self


class A3C(A2C):
    """A3C for Discrete and (tanh-squashed Gaussian) Box action spaces."""

    name = "a3c"
    config_class = A3CConfig
    remote_collection = None  # its workers are threads sharing one set of weights

    def __init__(self, config: A3CConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Space):
        super().__init__(config, observation_space, action_space)
        self.config: A3CConfig = config
        self.lock = threading.Lock()  # guards the global weights, the optimizer and `pushes`
        self.pushes = 0  # gradient pushes to the global networks, by all workers
        self.workers: list[Worker] = []

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        if not self.workers:

            def make() -> None:
                envs = self.make_envs(runner, self.config.num_workers)
                self.workers = [Worker(self, env, int(self.rng.integers(2**31))) for env in envs]

            self.make_streams(make)
        self.apply_decay(runner.total_steps)
        pushes: list[dict[str, float]] = []  # the metrics of every push, from all workers
        errors: list[BaseException] = []

        def work(worker: Worker) -> None:
            try:
                pushes.extend(worker.run(runner, self.config.rollouts_per_iteration))
            except BaseException as error:  # re-raised in the calling thread below
                errors.append(error)

        threads = [
            threading.Thread(target=work, args=(worker,), name=f"a3c-worker-{i}")
            for i, worker in enumerate(self.workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return {f"{self.name}/{name}": float(np.mean([push[name] for push in pushes])) for name in pushes[0]}

    def stream_states(self) -> dict[str, np.ndarray]:
        arrays = super().stream_states()
        for index, worker in enumerate(self.workers):
            arrays[f"worker{index}_generator"] = worker.generator.state.numpy()
            arrays.update(prefixed(f"worker{index}_env_", worker.env.state()))
        return arrays

    def load_streams(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_streams(arrays)
        for index, worker in enumerate(self.workers):
            worker.generator.state.assign(arrays[f"worker{index}_generator"])
            worker.env.load_state(unprefixed(f"worker{index}_env_", arrays))


class Worker:
    """One A3C worker: its envs, a local copy of the networks and a generator for its actions."""

    def __init__(self, algorithm: A3C, env: GraphEnvs, seed: int):
        self.algorithm = algorithm
        self.env = env
        self.networks = algorithm.build_networks()
        self.loss = ActorCriticLoss(self.networks, algorithm.distribution, algorithm.config)
        self.generator = tf.random.Generator.from_seed(seed)
        self.pushes = 0
        self._weight_pairs = list(
            zip(network_weights(self.networks), network_weights(algorithm.actor_critic), strict=True)
        )
        self._compute = tf.function(self._rollout_and_gradients, autograph=False)
        self._push = tf.function(self._apply_and_pull, autograph=False)
        self._pulled_at = algorithm.pushes
        self._pull()

    def run(self, runner: EnvRunner, rollouts: int) -> list[dict[str, float]]:
        """Collect `rollouts` rollouts, pushing the gradient of each to the global networks.

        Returns each push's loss terms and staleness (pushes of other workers since this one pulled).
        """
        algorithm = self.algorithm
        pushes = []
        for _ in range(rollouts):
            rollout, gradients, metrics = self._compute()
            with algorithm.lock:
                staleness = algorithm.pushes - self._pulled_at
                self._push(gradients)
                algorithm.pushes += 1
                self._pulled_at = algorithm.pushes
                algorithm.account_rollout(runner, self.env, rollout)
            self.pushes += 1
            pushes.append(
                {"staleness": float(staleness), **{name: float(value) for name, value in metrics.items()}}
            )
        return pushes

    def _rollout_and_gradients(self) -> tuple[Rollout, list[tf.Tensor], dict[str, tf.Tensor]]:
        config = self.algorithm.config
        rollout = collect_rollout(
            self.env, self.networks.both, self.algorithm.distribution, self.generator, config.n_steps
        )
        batch = training_batch(rollout, self.networks.critic, config.gamma, config.gae_lambda)
        no_decay = tf.constant(1.0)

        def policy_loss(log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor) -> tf.Tensor:
            return self.algorithm.policy_loss(log_probs, old_log_probs, advantages, no_decay)

        gradients, metrics = self.loss.gradients(batch, policy_loss)
        return rollout, gradients, metrics

    def _apply_and_pull(self, gradients: list[tf.Tensor]) -> None:
        self.algorithm.optimizer.apply_gradients(zip(gradients, self.algorithm.loss.variables, strict=True))
        self._pull()

    def _pull(self) -> None:
        """Copy every global weight (normalization statistics too) into the local networks."""
        for local, shared in self._weight_pairs:
            local.assign(shared)

"""What PPO, A2C and A3C share: the config, the compiled rollout, GAE targets and the loss.

One on-policy iteration, all inside one `tf.function` call:

    rollout = collect_rollout(env, networks.both, distribution, generator, n_steps)  # (n_steps, num_envs)
    batch = training_batch(rollout, critic, gamma, gae_lambda)                       # flat, with GAE
    for epoch, minibatch in ...:                                              # PPO: many; A2C: one
        loss = policy_loss + vf_coef * value_loss - ent_coef * entropy       # one gradient step

The algorithms differ only in the policy term (`clipped_surrogate_loss` for PPO,
`policy_gradient_loss` for A2C and A3C), in how often they reuse a batch, and, for A3C, in who
applies the gradients. On `gymserve/CartPole-v1` the envs themselves are TensorFlow ops
(graph_envs.InGraphCartPole), so the whole iteration runs without returning to Python.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar, Literal, NamedTuple

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field, model_validator

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.fused_adam import FusedAdam
from gymserve.agents.networks import ActorCritic, actor_critic, bfloat16_compute
from gymserve.agents.on_policy.gae import generalized_advantages
from gymserve.agents.on_policy.graph_envs import GraphEnvs, graph_envs
from gymserve.agents.training.config import (
    IMAGE_ENCODER_DESCRIPTION,
    MIXED_PRECISION_DESCRIPTION,
    ImageEncoder,
    TrainingConfig,
    check_mixed_precision,
)
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.agents.training.schedules import linear_schedule
from gymserve.policies.distributions import DistributionGraph, distribution_graph

METRICS = ("policy_loss", "value_loss", "entropy", "approx_kl")
STREAMS_PREFIX = "streams_"  # the random streams' part of a checkpoint's algorithm state


class OnPolicyConfig(TrainingConfig):
    """Hyperparameters every on-policy actor-critic shares (names follow Stable-Baselines3)."""

    n_steps: int = Field(5, gt=0, description="Steps of every env per rollout.")
    gamma: float = Field(0.99, gt=0, le=1, description="Discount factor.")
    gae_lambda: float = Field(1.0, ge=0, le=1, description="GAE lambda; 1 gives n-step returns.")
    learning_rate: float = Field(7e-4, gt=0, description="Initial learning rate.")
    optimizer: Literal["adam", "rmsprop"] = Field(
        "adam", description="Adam, or RMSprop (alpha 0.99, eps 1e-5)."
    )
    linear_decay_steps: int | None = Field(
        None,
        gt=0,
        description="Decay the learning rate (PPO: also clip_coef) linearly to 0 over these env steps.",
    )
    ent_coef: float = Field(0.0, ge=0, description="Weight of the entropy bonus.")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the value loss.")
    max_grad_norm: float | None = Field(0.5, gt=0, description="Clip gradients to this global norm.")
    normalize_advantage: bool = Field(False, description="Standardize advantages within each minibatch.")
    hidden_sizes: tuple[int, ...] = Field(
        (64, 64), description="Hidden units of the actor and of the critic."
    )
    activation: str = Field("tanh", description="Activation of the hidden layers.")
    image_encoder: ImageEncoder | None = Field(None, description=IMAGE_ENCODER_DESCRIPTION)
    mixed_precision: bool = Field(False, description=MIXED_PRECISION_DESCRIPTION)
    shared_torso: bool = Field(False, description="Actor and critic share their hidden layers.")
    orthogonal_init: bool = Field(
        False,
        description=(
            "Start the convolutions and hidden layers orthogonal with gain sqrt(2) (Stable-Baselines3, "
            "CleanRL); false: Keras' Glorot uniform. The policy and state-value heads start orthogonal "
            "either way."
        ),
    )
    normalize_observations: bool = Field(
        False, description="Standardize observations with running statistics."
    )
    state_dependent_std: bool = Field(
        False, description="Box actions: log_std from the features, not one per dim."
    )
    initial_log_std: float = Field(
        0.0, description="Box actions: initial log standard deviation of the Gaussian."
    )
    in_graph_env: bool = Field(
        True,
        description=(
            "Step gymserve/CartPole-v1 and gymserve/CartPoleNoVelocity-v1 as TensorFlow ops inside "
            "the compiled rollout."
        ),
    )

    @model_validator(mode="after")
    def _mixed_precision_needs_images(self) -> OnPolicyConfig:
        check_mixed_precision(self.image_encoder, self.mixed_precision)
        return self


def check_minibatches_tile_the_rollout(config: OnPolicyConfig, batch_size: int) -> None:
    """Raise ValueError unless minibatches of `batch_size` rows tile the rollout exactly."""
    rows = config.n_steps * config.num_envs
    if rows % batch_size:
        raise ValueError(
            f"batch_size {batch_size} does not divide the rollout of n_steps * num_envs = "
            f"{rows} rows; choose a divisor of {rows}"
        )


class Rollout(NamedTuple):
    """`n_steps` steps of every env, time-major: (n_steps, num_envs, ...)."""

    observations: tf.Tensor
    raw_actions: tf.Tensor  # as stored by the action distribution (pre-squash for Box)
    log_probs: tf.Tensor  # of the acting policy
    policy_outputs: tf.Tensor  # the acting policy's distribution parameters (ACER replays them)
    rewards: tf.Tensor
    terminated: tf.Tensor
    truncated: tf.Tensor
    next_observations: tf.Tensor  # the true successors: final observations where an episode ended
    values: tf.Tensor  # V(s_t), computed with the policy outputs the actor acted on


def collect_rollout(
    env: GraphEnvs,
    actor_and_values: Callable[..., tuple[tf.Tensor, tf.Tensor]],
    distribution: DistributionGraph,
    generator: tf.random.Generator,
    n_steps: int,
) -> Rollout:
    """Act with samples of the actor's distribution for `n_steps` steps of every env (traceable).

    `actor_and_values(observations, training=False)` gives the distribution parameters and the
    state values (B,). With a shared torso one forward pass yields both, and GAE then needs the
    critic only for the few successors that are not the next step's observation.
    """
    fields = {
        "observations": tf.float32,
        "raw_actions": distribution.raw_dtype,
        "log_probs": tf.float32,
        "policy_outputs": tf.float32,
        "rewards": tf.float32,
        "terminated": tf.bool,
        "truncated": tf.bool,
        "next_observations": tf.float32,
        "values": tf.float32,
    }

    def act(t: tf.Tensor, arrays: dict[str, tf.TensorArray]) -> tuple[tf.Tensor, dict[str, tf.TensorArray]]:
        observations = env.observations()
        outputs, acting_values = actor_and_values(observations, training=False)
        raw_actions = distribution.sample(outputs, generator)
        step = env.step(distribution.env_actions(raw_actions))
        values = {
            "observations": observations,
            "raw_actions": raw_actions,
            "log_probs": distribution.log_prob(outputs, raw_actions),
            "policy_outputs": outputs,
            "rewards": step.rewards,
            "terminated": step.terminated,
            "truncated": step.truncated,
            "next_observations": step.final_observations,
            "values": tf.reshape(acting_values, tf.shape(outputs)[:1]),  # fails loudly for (B, n)
        }
        return t + 1, {name: arrays[name].write(t, values[name]) for name in fields}

    arrays = {name: tf.TensorArray(dtype, size=n_steps) for name, dtype in fields.items()}
    _, arrays = tf.while_loop(lambda t, _: t < n_steps, act, (tf.constant(0), arrays))
    return Rollout(**{name: array.stack() for name, array in arrays.items()})


def training_batch(
    rollout: Rollout, critic: keras.Model, gamma: float, gae_lambda: float
) -> dict[str, tf.Tensor]:
    """The rollout flattened to (n_steps * num_envs, ...) rows, with GAE advantages and returns."""
    columns = advantage_columns(rollout, rollout.values, successor_values(critic, rollout), gamma, gae_lambda)
    return {
        name: tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], axis=0))
        for name, value in columns.items()
    }


def state_values(critic: keras.Model, observations: tf.Tensor) -> tf.Tensor:
    """The critic's value of each of time-major `observations`, shaped (n_steps, num_envs)."""
    flat = tf.reshape(observations, tf.concat([[-1], tf.shape(observations)[2:]], axis=0))
    return tf.reshape(critic(flat, training=False), tf.shape(observations)[:2])


def successor_values(critic: keras.Model, rollout: Rollout) -> tf.Tensor:
    """V(s'_t) of every step of `rollout`.

    Where an episode went on, s'_t is the next step's observation, whose value the rollout already
    holds; only a step that ended its episode and the rollout's last step need the critic on their
    `next_observations`: a few rows, not the whole rollout again.
    """
    values = rollout.values
    ended = rollout.terminated | rollout.truncated
    own = tf.concat([ended[:-1], tf.ones_like(ended[-1:])], axis=0)
    rows = tf.where(own)
    own_values = critic(tf.gather_nd(rollout.next_observations, rows), training=False)
    later = tf.concat([values[1:], tf.zeros_like(values[:1])], axis=0)
    return tf.tensor_scatter_nd_update(later, rows, tf.reshape(own_values, [-1]))


def advantage_columns(
    rollout: Rollout, values: tf.Tensor, next_values: tf.Tensor, gamma: float, gae_lambda: float
) -> dict[str, tf.Tensor]:
    """What the loss reads of a rollout, time-major, with GAE advantages and returns computed from
    the state values of its observations (`values`) and of their true successors (`next_values`)."""
    advantages, returns = generalized_advantages(
        rollout.rewards, values, next_values, rollout.terminated, rollout.truncated, gamma, gae_lambda
    )
    return {
        "observations": rollout.observations,
        "raw_actions": rollout.raw_actions,
        "log_probs": rollout.log_probs,
        "advantages": advantages,
        "returns": returns,
    }


def policy_gradient_loss(log_probs: tf.Tensor, advantages: tf.Tensor) -> tf.Tensor:
    """The actor-critic policy loss -mean(A * log pi(a|s)) (A2C, A3C)."""
    return -tf.reduce_mean(advantages * log_probs)


def clipped_surrogate_loss(
    log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor, clip_coef: tf.Tensor
) -> tf.Tensor:
    """PPO's clipped objective, negated: -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)), r = pi / pi_old."""
    ratio = tf.exp(log_probs - old_log_probs)
    clipped_ratio = tf.clip_by_value(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    return -tf.reduce_mean(tf.minimum(ratio * advantages, clipped_ratio * advantages))


def standardized(advantages: tf.Tensor) -> tf.Tensor:
    """Advantages shifted and scaled to mean 0 and standard deviation 1."""
    mean, variance = tf.nn.moments(advantages, axes=[0])
    return (advantages - mean) / (tf.sqrt(variance) + 1e-8)


class ActorCriticLoss:
    """The loss of one minibatch for an actor-critic pair, with its parts as metrics."""

    def __init__(self, networks: ActorCritic, distribution: DistributionGraph, config: OnPolicyConfig):
        self.networks = networks
        self.distribution = distribution
        self.config = config
        self.variables = [weight for weight in network_weights(networks) if weight.trainable]

    def forward(self, batch: dict[str, tf.Tensor]) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """The minibatch as one row per step, with the policy outputs and values of those rows."""
        outputs, values = self.networks.both(batch["observations"], training=True)
        return batch, outputs, values

    def gradients(
        self,
        batch: dict[str, tf.Tensor],
        policy_loss: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor],
        policy_metrics: Callable[[tf.Tensor, tf.Tensor], dict[str, tf.Tensor]] | None = None,
    ) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        """Gradients for `self.variables` (clipped to `max_grad_norm`) and the loss terms.

        `policy_loss(log_probs, old_log_probs, advantages)` is the algorithm's policy term;
        `policy_metrics(log_probs, old_log_probs)` adds the algorithm's own metrics.
        """
        config = self.config
        with tf.GradientTape() as tape, bfloat16_compute(self.networks.both, config.mixed_precision):
            batch, outputs, values = self.forward(batch)
            advantages = batch["advantages"]
            if config.normalize_advantage:
                advantages = standardized(advantages)
            log_probs = self.distribution.log_prob(outputs, batch["raw_actions"])
            policy = policy_loss(log_probs, batch["log_probs"], advantages)
            value = tf.reduce_mean(tf.square(batch["returns"] - values))
            entropy = tf.reduce_mean(self.distribution.entropy(outputs))
            loss = policy + config.vf_coef * value - config.ent_coef * entropy
        gradients = tape.gradient(loss, self.variables)
        if config.max_grad_norm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, config.max_grad_norm)
        approx_kl = tf.reduce_mean(batch["log_probs"] - log_probs)
        metrics = dict(zip(METRICS, (policy, value, entropy, approx_kl), strict=True))
        if policy_metrics is not None:
            metrics.update(policy_metrics(log_probs, batch["log_probs"]))
        return gradients, metrics


def make_optimizer(config: OnPolicyConfig, variables: list[tf.Variable]) -> keras.optimizers.Optimizer:
    """The configured optimizer, built for `variables` so compiled steps create no variables."""
    if config.optimizer == "rmsprop":
        optimizer = keras.optimizers.RMSprop(config.learning_rate, rho=0.99, epsilon=1e-5)
    else:
        optimizer = FusedAdam(config.learning_rate, epsilon=1e-5)
    optimizer.build(variables)
    return optimizer


class OnPolicyAlgorithm(Algorithm):
    """An actor-critic trained on its own fresh rollouts; subclasses pick the policy loss and reuse.

    Each `train_iteration` is one compiled call: a rollout of `n_steps` steps of every env, GAE,
    then `n_epochs()` passes over the batch in minibatches of `minibatch_size()` rows.
    """

    config_class = OnPolicyConfig
    action_spaces = (gym.spaces.Discrete, gym.spaces.Box)
    remote_collection = "rollouts"
    action_value_critic: ClassVar[bool] = False  # the critic gives Q(s, .) (Discrete), not V(s)
    loss_class: ClassVar[type[ActorCriticLoss]] = ActorCriticLoss
    policy_metric_names: ClassVar[tuple[str, ...]] = ()  # what `policy_metrics` adds to METRICS

    def __init__(
        self, config: OnPolicyConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Space
    ):
        super().__init__(config, observation_space, action_space)
        self.config: OnPolicyConfig = config
        self.actor_critic = self.build_networks()
        self.distribution = distribution_graph(action_space)
        self.loss = self.loss_class(self.actor_critic, self.distribution, config)
        self.optimizer = make_optimizer(config, self.loss.variables)
        self._envs: list[GraphEnvs] | None = None
        self._generator: tf.random.Generator | None = None
        self._saved_streams: dict[str, np.ndarray] = {}  # from a checkpoint, until the streams exist
        self._iteration = tf.function(self._compiled_iteration, autograph=False)
        self._collect: Callable[[], Rollout] | None = None  # compiled on first use, as is `_learn`
        self._learn: Callable[[Rollout, tf.Tensor], dict[str, tf.Tensor]] | None = None

    def networks(self) -> dict[str, keras.Model]:
        return {"actor": self.actor_critic.actor, "critic": self.actor_critic.critic}

    def state(self) -> dict[str, np.ndarray]:
        """The random streams made on first use; restored ones not made yet are saved as restored,
        so a checkpoint taken before the first iteration after a resume keeps them."""
        return prefixed(STREAMS_PREFIX, self._saved_streams or self.stream_states())

    def stream_states(self) -> dict[str, np.ndarray]:
        """The generator's state and the in-graph envs' (none before they are made)."""
        arrays = {} if self._generator is None else {"generator": self._generator.state.numpy()}
        for index, env in enumerate(self._envs or ()):
            arrays.update(prefixed(f"env{index}_", env.state()))
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._saved_streams = unprefixed(STREAMS_PREFIX, arrays)

    def make_streams(self, make: Callable[[], None]) -> None:
        """Run `make`, which seeds new random streams (generators, in-graph envs) from `self.rng`;
        after a restore, undo its draws and give the streams the states the checkpoint saved, so
        they continue where the checkpointed run's left off."""
        saved, self._saved_streams = self._saved_streams, {}
        rng_state = self.rng.bit_generator.state
        make()
        if not saved:
            return
        self.rng.bit_generator.state = rng_state
        self.load_streams(saved)

    def load_streams(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the streams `state()` saved, named without STREAMS_PREFIX (`make_streams` made them)."""
        if "generator" in arrays:
            self._generator.state.assign(arrays["generator"])
        for index, env in enumerate(self._envs or ()):
            env.load_state(unprefixed(f"env{index}_", arrays))

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {"actor_critic": self.optimizer}

    def policy_network(self) -> keras.Model:
        return self.actor_critic.actor

    def n_epochs(self) -> int:
        """Passes over each rollout."""
        return 1

    def batch_rows(self) -> int:
        """Rows of a rollout's training batch, which minibatches draw from."""
        return self.config.n_steps * self.config.num_envs

    def minibatch_size(self) -> int:
        """Rows per gradient step; the default is the whole rollout."""
        return self.batch_rows()

    @abc.abstractmethod
    def policy_loss(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor, decay_fraction: tf.Tensor
    ) -> tf.Tensor:
        """The policy term of the loss (traced); `decay_fraction` is `decay_fraction(step)` as a tensor."""

    def policy_metrics(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, decay_fraction: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """The algorithm's own metrics of a minibatch, named in `policy_metric_names` (traced)."""
        return {}

    def decay_fraction(self, total_steps: int) -> float:
        """1 at the start, falling linearly to 0 at `linear_decay_steps` (always 1 without it)."""
        steps = self.config.linear_decay_steps
        return 1.0 if steps is None else linear_schedule(1.0, 0.0, steps, total_steps)

    def apply_decay(self, total_steps: int) -> float:
        """Set the learning rate for this point of the run (when decaying): the configured rate x
        the decay fraction x the plateau rule's `learning_rate_scale`. Returns the decay fraction."""
        fraction = self.decay_fraction(total_steps)
        if self.config.linear_decay_steps is not None:
            self.optimizer.learning_rate.assign(
                self.config.learning_rate * fraction * self.learning_rate_scale
            )
        return fraction

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        self._prepare_envs(runner)
        fraction = self.apply_decay(runner.total_steps)
        rollout, metrics = self._iteration(tf.constant(fraction, tf.float32))
        self.account_rollout(runner, self._envs[0], rollout)
        return self._metric_values(metrics)

    def collect(self, runner: EnvRunner) -> Rollout:
        """One rollout of `runner`'s envs with the current weights, reported to the runner: what a
        remote actor gathers for `learn_from_rollout` elsewhere."""
        self._prepare_envs(runner)
        if self._collect is None:
            self._collect = tf.function(self._collect_rollout, autograph=False)
        rollout = self._collect()
        self.account_rollout(runner, self._envs[0], rollout)
        return rollout

    def learn_from_rollout(self, rollout: Rollout, total_steps: int) -> dict[str, float]:
        """Update on a rollout of `n_steps` x `num_envs` gathered by `collect` (possibly in parts).

        Remote actors receive only the policy's weights, so the values their critics recorded are
        stale: the learner's critic values the observations again.
        """
        if self._generator is None:
            self.make_streams(self._make_generator)
        if self._learn is None:
            self._learn = tf.function(self._update_on_remote_rollout, autograph=False)
        fraction = self.apply_decay(total_steps)
        tensors = Rollout(*(tf.convert_to_tensor(part) for part in rollout))
        return self._metric_values(self._learn(tensors, tf.constant(fraction, tf.float32)))

    def build_networks(self) -> ActorCritic:
        config = self.config
        return actor_critic(
            self.observation_space,
            self.action_space,
            hidden_sizes=config.hidden_sizes,
            activation=config.activation,
            shared_torso=config.shared_torso,
            state_dependent_std=config.state_dependent_std,
            initial_log_std=config.initial_log_std,
            normalize_observations=config.normalize_observations,
            action_values=self.action_value_critic,
            image_encoder=config.image_encoder,
            orthogonal_torso=config.orthogonal_init,
        )

    def make_envs(self, runner: EnvRunner, parts: int) -> list[GraphEnvs]:
        seed = int(self.rng.integers(2**31))
        return graph_envs(runner, parts, in_graph=self.config.in_graph_env, seed=seed)

    def account_rollout(self, runner: EnvRunner, env: GraphEnvs, rollout: Rollout) -> None:
        """Report the rollout's steps; in-graph envs also feed the observation statistics here."""
        env.account(runner, rollout.rewards.numpy(), (rollout.terminated | rollout.truncated).numpy())
        if self.config.normalize_observations and env.in_graph:
            self.update_observation_statistics(
                tf.reshape(rollout.observations, (-1, *self.observation_space.shape))
            )

    def _prepare_envs(self, runner: EnvRunner) -> None:
        if self._envs is None:

            def make() -> None:
                self._envs = self.make_envs(runner, parts=1)
                self._make_generator()

            self.make_streams(make)

    def _make_generator(self) -> None:
        self._generator = tf.random.Generator.from_seed(int(self.rng.integers(2**31)))

    def _metric_values(self, metrics: dict[str, tf.Tensor]) -> dict[str, float]:
        return {f"{self.name}/{name}": float(value) for name, value in metrics.items()}

    def _collect_rollout(self) -> Rollout:
        return collect_rollout(
            self._envs[0], self.actor_critic.both, self.distribution, self._generator, self.config.n_steps
        )

    def _update_on_rollout(self, rollout: Rollout, decay_fraction: tf.Tensor) -> dict[str, tf.Tensor]:
        config = self.config
        batch = training_batch(rollout, self.actor_critic.critic, config.gamma, config.gae_lambda)
        return self.update(batch, decay_fraction)

    def _update_on_remote_rollout(self, rollout: Rollout, decay_fraction: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._update_on_rollout(self.revalued(rollout), decay_fraction)

    def _compiled_iteration(self, decay_fraction: tf.Tensor) -> tuple[Rollout, dict[str, tf.Tensor]]:
        rollout = self._collect_rollout()
        if self.acting_values_are_stale(self._envs[0]):
            rollout = self.revalued(rollout)
        return rollout, self._update_on_rollout(rollout, decay_fraction)

    def acting_values_are_stale(self, env: GraphEnvs) -> bool:
        """Whether the values a rollout recorded while acting differ from the critic's at learning
        time: with normalized observations from Python envs the statistics move at every step.
        (A3C's workers act with local copies whose statistics change only between rollouts.)"""
        return self.config.normalize_observations and not env.in_graph

    def revalued(self, rollout: Rollout) -> Rollout:
        """`rollout` with its values computed again by this algorithm's critic (traced)."""
        return rollout._replace(values=state_values(self.actor_critic.critic, rollout.observations))

    def update(self, batch: dict[str, tf.Tensor], decay_fraction: tf.Tensor) -> dict[str, tf.Tensor]:
        """Learn from one rollout's `training_batch` (traced); the mean of each metric.

        The default: one gradient step of the actor-critic loss per minibatch of `minibatch_passes`.
        """

        def policy_loss(log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor) -> tf.Tensor:
            return self.policy_loss(log_probs, old_log_probs, advantages, decay_fraction)

        def policy_metrics(log_probs: tf.Tensor, old_log_probs: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.policy_metrics(log_probs, old_log_probs, decay_fraction)

        def gradient_step(minibatch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
            gradients, metrics = self.loss.gradients(minibatch, policy_loss, policy_metrics)
            self.optimizer.apply_gradients(zip(gradients, self.loss.variables, strict=True))
            return metrics

        return self.minibatch_passes(batch, gradient_step, METRICS + self.policy_metric_names)

    def minibatch_passes(
        self,
        batch: dict[str, tf.Tensor],
        gradient_step: Callable[[dict[str, tf.Tensor]], dict[str, tf.Tensor]],
        metric_names: tuple[str, ...],
    ) -> dict[str, tf.Tensor]:
        """`gradient_step` on each minibatch of `n_epochs()` passes over `batch` (traced).

        Every pass is a fresh shuffle of the rows cut into minibatches of `minibatch_size()` rows;
        returns the mean over all steps of each of the step's metrics in `metric_names`.
        """
        rows = self.batch_rows()
        minibatch = self.minibatch_size()
        gradient_steps = self.n_epochs() * (rows // minibatch)
        shuffles = tf.argsort(self._generator.uniform([self.n_epochs(), rows]))
        minibatch_rows = tf.reshape(shuffles, (gradient_steps, minibatch))

        def step(index: tf.Tensor, sums: dict[str, tf.Tensor]) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
            metrics = gradient_step(
                {name: tf.gather(column, minibatch_rows[index]) for name, column in batch.items()}
            )
            return index + 1, {name: sums[name] + metrics[name] for name in metric_names}

        sums = {name: tf.constant(0.0) for name in metric_names}
        _, sums = tf.while_loop(lambda index, _: index < gradient_steps, step, (tf.constant(0), sums))
        return {name: total / gradient_steps for name, total in sums.items()}


def network_weights(networks: ActorCritic) -> list[tf.Variable]:
    """Every weight of the actor and the critic, each once (a shared torso belongs to both)."""
    seen: dict[int, tf.Variable] = {}
    for weight in (*networks.actor.weights, *networks.critic.weights):
        seen.setdefault(id(weight), weight)
    return list(seen.values())


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`arrays` with every name prefixed, to share a checkpoint's flat namespace."""
    return {prefix + name: array for name, array in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays whose names start with `prefix`, named without it."""
    return {name.removeprefix(prefix): array for name, array in arrays.items() if name.startswith(prefix)}

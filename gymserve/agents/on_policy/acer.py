"""Actor-Critic with Experience Replay (Wang et al., 2016, "Sample Efficient Actor-Critic with
Experience Replay"), for Discrete actions.

An actor pi (logits) and a critic Q(s, .) (one value per action) learn from trajectories of
`n_steps` steps of `num_envs` envs. Each iteration collects one rollout (algorithm.py), stores it
in a trajectory replay, learns from it, then learns from Poisson(`replay_ratio`) rollouts drawn
from the replay. Learning from a rollout acted by a behaviour policy mu:

1. Retrace targets, backwards along each trajectory, with V(s) = sum_a pi(a|s) Q(s, a) and the
   truncated weights c_t = min(1, rho_t), rho_t = pi(a_t|s_t) / mu(a_t|s_t):

       Q_ret_t = r_t + gamma * (V(s_t+1) + c_t+1 * (Q_ret_t+1 - Q(s_t+1, a_t+1)))

   where the bracket is V(s_t+1) alone at the rollout's last step or an episode's end (0 when
   terminated). The critic regresses Q(s_t, a_t) on Q_ret_t (weight `vf_coef`).
2. The policy gradient with truncated importance weights and bias correction:

       min(c, rho_t) * grad log pi(a_t|s_t) * (Q_ret_t - V(s_t))
     + sum_a [1 - c / rho(a)]_+ * pi(a|s_t) * grad log pi(a|s_t) * (Q(s_t, a) - V(s_t))

   with c = `truncation_clip`, plus `ent_coef` times the entropy's gradient. The first term is
   unbiased only up to the truncation; the second, an expectation under pi, adds back what the
   truncation removed.
3. The efficient trust region: the gradient g of that objective with respect to the policy's
   logits, per state, is projected onto the half-space k . z <= `trust_region_delta`, where k is the
   gradient of KL(pi_avg || pi) and pi_avg is an average policy network whose weights follow the
   actor's with decay `average_decay`: z = g - max(0, (k . g - delta) / |k|^2) k. The projected z
   is back-propagated through the actor.

On a fresh rollout mu = pi, so every rho is 1 and the update is an A2C step with Retrace
targets. What differs from the paper: the distribution statistics the trust region acts on are the
logits rather than the probabilities (the KL's gradient is then pi - pi_avg, which stays finite
when a probability nears 0); envs that end an episode inside a rollout bootstrap from the true
final observation (0 when terminated), so rollouts need not end at an episode boundary; one optimizer
(Adam or RMSprop) trains actor and critic together with global-norm gradient clipping.

The shipped gymserve/CartPole-v1 config (Stable-Baselines' ACER defaults as rl-baselines-zoo used
them, a shared torso, the learning rate decaying over 200,000 steps) solved it on seeds 0-4 after
30,080 to 125,120 steps, with greedy 20-episode returns of 487-494 on episodes never evaluated.
"""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
from pydantic import Field, model_validator

from gymserve.agents.on_policy.algorithm import OnPolicyAlgorithm, OnPolicyConfig, Rollout, collect_rollout
from gymserve.agents.on_policy.graph_envs import GraphEnvs
from gymserve.agents.on_policy.trajectory_replay import TrajectoryReplay
from gymserve.agents.training.env_runner import EnvRunner

METRICS = ("policy_loss", "value_loss", "entropy", "average_kl", "trust_region_active")


class ACERConfig(OnPolicyConfig):
    """ACER hyperparameters: the paper's Atari values where they carry over (replay ratio 4,
    truncation 10, trust region 1, average decay 0.99), with 8 envs x 16 steps per rollout.

    `gae_lambda`, `normalize_advantage`, `state_dependent_std` and `initial_log_std` do not apply.
    """

    num_envs: int = Field(8, gt=0, description="Training environments stepped side by side.")
    n_steps: int = Field(16, gt=0, description="Steps of every env per rollout (the trajectory length).")
    ent_coef: float = Field(0.01, ge=0, description="Weight of the entropy bonus.")
    vf_coef: float = Field(0.5, ge=0, description="Weight of the critic's loss (Q(s, a) on Retrace targets).")
    max_grad_norm: float | None = Field(10.0, gt=0, description="Clip gradients to this global norm.")
    replay_ratio: float = Field(
        4.0, ge=0, description="Mean of the Poisson number of replayed rollouts after each fresh one."
    )
    buffer_size: int = Field(
        50_000, gt=0, description="Env steps the trajectory replay holds (whole rollouts, oldest dropped)."
    )
    learning_starts: int = Field(1_000, ge=0, description="Env steps stored before replayed updates begin.")
    truncation_clip: float = Field(10.0, gt=0, description="c: importance weights are truncated at c.")
    trust_region: bool = Field(True, description="Project policy gradients into the trust region.")
    trust_region_delta: float = Field(
        1.0, gt=0, description="delta: the largest step along the KL's gradient per state."
    )
    average_decay: float = Field(
        0.99, ge=0, lt=1, description="How slowly the average policy network follows the actor."
    )

    @model_validator(mode="after")
    def _fits_acer(self) -> ACERConfig:
        unused = (
            "gae_lambda",
            "normalize_advantage",
            "state_dependent_std",
            "initial_log_std",
            "mixed_precision",
        )
        for name in unused:
            if getattr(self, name) != OnPolicyConfig.model_fields[name].default:
                raise ValueError(f"{name} does not apply to acer")
        rollout = self.n_steps * self.num_envs
        if self.buffer_size < rollout:
            raise ValueError(
                f"buffer_size {self.buffer_size} holds no rollout of n_steps * num_envs = {rollout} steps"
            )
        return self


def retrace_targets(
    rewards: tf.Tensor,
    taken_q_values: tf.Tensor,
    next_values: tf.Tensor,
    retrace_weights: tf.Tensor,
    terminated: tf.Tensor,
    truncated: tf.Tensor,
    gamma: float,
) -> tf.Tensor:
    """Q_ret of every step of a time-major (T, E) rollout (module docstring, step 1).

    `taken_q_values[t] = Q(s_t, a_t)`, `next_values[t] = V(s'_t)` of the step's true successor,
    `retrace_weights[t] = c_t`; `terminated`, `truncated` are the env's flags of step t.
    """
    survives = 1.0 - tf.cast(terminated, tf.float32)
    continues = 1.0 - tf.cast(tf.logical_or(terminated, truncated), tf.float32)

    def accumulate(
        later: tuple[tf.Tensor, tf.Tensor], step: tuple[tf.Tensor, ...]
    ) -> tuple[tf.Tensor, tf.Tensor]:
        _, later_correction = later
        reward, next_value, step_survives, step_continues, q_value, weight = step
        target = reward + gamma * step_survives * (next_value + step_continues * later_correction)
        return target, weight * (target - q_value)

    zeros = tf.zeros_like(rewards[0])
    steps = (rewards, next_values, survives, continues, taken_q_values, retrace_weights)
    targets, _ = tf.scan(accumulate, steps, initializer=(zeros, zeros), reverse=True)
    return targets


def bias_correction_objective(
    log_probabilities: tf.Tensor,
    behaviour_probabilities: tf.Tensor,
    q_values: tf.Tensor,
    values: tf.Tensor,
    truncation_clip: float,
) -> tf.Tensor:
    """Per row: sum_a [1 - c / rho(a)]_+ pi(a) log pi(a) (Q(a) - V), the weights held constant.

    Rows (B, n) of the current policy's log-probabilities, the behaviour policy's probabilities
    and the critic's Q-values; `values` (B,) is V under the current policy.
    """
    probabilities = tf.stop_gradient(tf.exp(log_probabilities))
    ratios = probabilities / behaviour_probabilities
    weights = tf.nn.relu(1.0 - truncation_clip / ratios) * probabilities
    advantages = q_values - values[:, tf.newaxis]
    return tf.reduce_sum(tf.stop_gradient(weights * advantages) * log_probabilities, axis=-1)


def trust_region_projection(gradient: tf.Tensor, kl_gradient: tf.Tensor, delta: float) -> tf.Tensor:
    """Per row, the z closest to `gradient` with kl_gradient . z <= delta (module docstring, step 3)."""
    excess = tf.reduce_sum(kl_gradient * gradient, axis=-1) - delta
    squared_norm = tf.reduce_sum(tf.square(kl_gradient), axis=-1)
    scale = tf.nn.relu(excess) / tf.maximum(squared_norm, 1e-12)
    return gradient - scale[:, tf.newaxis] * kl_gradient


def flat_rows(value: tf.Tensor) -> tf.Tensor:
    """A time-major (T, E, ...) tensor as (T * E, ...) rows."""
    return tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], axis=0))


class ACER(OnPolicyAlgorithm):
    """ACER for Discrete action spaces: fresh and replayed rollouts, Retrace, a trust region."""

    name = "acer"
    config_class = ACERConfig
    remote_collection = None  # it replays its own past rollouts, which the learner would have to hold
    action_spaces = (gym.spaces.Discrete,)
    action_value_critic = True

    def __init__(
        self, config: ACERConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Discrete
    ):
        super().__init__(config, observation_space, action_space)
        self.config: ACERConfig = config
        self.actor = self.actor_critic.actor
        self.average_actor = keras.models.clone_model(self.actor)
        self.average_actor.set_weights(self.actor.get_weights())
        rollout_steps = config.n_steps * config.num_envs
        self.replay = TrajectoryReplay(config.buffer_size // rollout_steps, self._example_rollout())
        self._replay_iteration = tf.function(self._compiled_replay_iteration, autograph=False)

    def networks(self) -> dict[str, keras.Model]:
        return {**super().networks(), "average_actor": self.average_actor}

    def state(self) -> dict[str, np.ndarray]:
        return {**super().state(), **self.replay.state()}

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state(arrays)
        self.replay.load_state(arrays)

    def policy_loss(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor, decay_fraction: tf.Tensor
    ) -> tf.Tensor:
        """The truncated importance-weighted term, negated: -mean(min(c, rho) A log pi(a|s))."""
        ratios = tf.stop_gradient(tf.exp(log_probs - old_log_probs))
        weights = tf.minimum(self.config.truncation_clip, ratios)
        return -tf.reduce_mean(tf.stop_gradient(weights * advantages) * log_probs)

    def train_iteration(self, runner: EnvRunner) -> dict[str, float]:
        metrics = super().train_iteration(runner)
        stored_steps = int(self.replay.size.numpy()) * self.config.n_steps * self.config.num_envs
        replays = (
            int(self.rng.poisson(self.config.replay_ratio))
            if stored_steps >= self.config.learning_starts
            else 0
        )
        for _ in range(replays):
            self._replay_iteration()
        return {**metrics, f"{self.name}/replayed_rollouts": float(replays)}

    def _compiled_iteration(self, decay_fraction: tf.Tensor) -> tuple[Rollout, dict[str, tf.Tensor]]:
        # The decay reaches ACER through the optimizer's learning rate alone (apply_decay).
        rollout = self.collect(self._envs[0])
        self.replay.add(rollout)
        return rollout, self.learn(rollout)

    def _compiled_replay_iteration(self) -> dict[str, tf.Tensor]:
        return self.learn(self.replay.sample(self._generator))

    def collect(self, env: GraphEnvs) -> Rollout:
        return collect_rollout(
            env, self._actor_and_values, self.distribution, self._generator, self.config.n_steps
        )

    def _actor_and_values(
        self, observations: tf.Tensor, training: bool = False
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """The actor's logits, and zeros for the values: ACER values each step it learns from with
        its current critic (it replays rollouts long after acting them), so acting computes none."""
        return self.actor(observations, training=training), tf.zeros(tf.shape(observations)[:1])

    def learn(self, rollout: Rollout) -> dict[str, tf.Tensor]:
        """One gradient step on `rollout` (acted by the policy in its `policy_outputs`), then the
        average policy follows the actor (traced)."""
        config = self.config
        time_and_envs = tf.shape(rollout.rewards)
        observations = flat_rows(rollout.observations)
        actions = flat_rows(rollout.raw_actions)
        behaviour_probabilities = tf.nn.softmax(flat_rows(rollout.policy_outputs))
        next_logits, next_q_values = self.actor_critic.both(
            flat_rows(rollout.next_observations), training=False
        )
        next_values = tf.reduce_sum(tf.nn.softmax(next_logits) * next_q_values, axis=-1)
        average_probabilities = tf.nn.softmax(self.average_actor(observations, training=False))

        with tf.GradientTape() as tape:
            logits, q_values = self.actor_critic.both(observations, training=True)
            log_probabilities = tf.nn.log_softmax(logits)
            probabilities = tf.exp(log_probabilities)
            taken_q_values = tf.gather(q_values, actions, axis=-1, batch_dims=1)
            values = tf.stop_gradient(tf.reduce_sum(probabilities * q_values, axis=-1))
            log_probs = tf.gather(log_probabilities, actions, axis=-1, batch_dims=1)
            behaviour_log_probs = tf.math.log(
                tf.gather(behaviour_probabilities, actions, axis=-1, batch_dims=1)
            )
            ratios = tf.stop_gradient(tf.exp(log_probs - behaviour_log_probs))
            q_retrace = retrace_targets(
                rollout.rewards,
                tf.reshape(tf.stop_gradient(taken_q_values), time_and_envs),
                tf.reshape(next_values, time_and_envs),
                tf.reshape(tf.minimum(1.0, ratios), time_and_envs),
                rollout.terminated,
                rollout.truncated,
                config.gamma,
            )
            q_retrace = tf.reshape(q_retrace, [-1])
            value_loss = 0.5 * tf.reduce_mean(tf.square(q_retrace - taken_q_values))
            logits_gradient, policy_loss, entropy = self._policy_gradient(
                tf.stop_gradient(logits),
                behaviour_probabilities,
                behaviour_log_probs,
                tf.stop_gradient(q_values),
                values,
                actions,
                q_retrace,
            )
            kl_gradient = tf.stop_gradient(probabilities) - average_probabilities
            if config.trust_region:
                projected = trust_region_projection(logits_gradient, kl_gradient, config.trust_region_delta)
            else:
                projected = logits_gradient
            rows = tf.cast(tf.shape(logits)[0], tf.float32)
            loss = -tf.reduce_sum(tf.stop_gradient(projected) * logits) / rows + config.vf_coef * value_loss
        gradients = tape.gradient(loss, self.loss.variables)
        if config.max_grad_norm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, config.max_grad_norm)
        self.optimizer.apply_gradients(zip(gradients, self.loss.variables, strict=True))
        self._follow_actor()

        average_log_probabilities = tf.math.log(tf.maximum(average_probabilities, 1e-12))
        average_kl = tf.reduce_mean(
            tf.reduce_sum(average_probabilities * (average_log_probabilities - log_probabilities), axis=-1)
        )
        active = tf.reduce_mean(tf.cast(tf.reduce_any(projected != logits_gradient, axis=-1), tf.float32))
        metrics = (policy_loss, value_loss, entropy, average_kl, active)
        return dict(zip(METRICS, metrics, strict=True))

    def _policy_gradient(
        self,
        logits: tf.Tensor,
        behaviour_probabilities: tf.Tensor,
        behaviour_log_probs: tf.Tensor,
        q_values: tf.Tensor,
        values: tf.Tensor,
        actions: tf.Tensor,
        q_retrace: tf.Tensor,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Per row, the gradient of the policy objective (module docstring, step 2) with respect to
        the logits; also the policy loss and the mean entropy."""
        config = self.config
        rows = tf.cast(tf.shape(logits)[0], tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(logits)
            log_probabilities = tf.nn.log_softmax(logits)
            log_probs = tf.gather(log_probabilities, actions, axis=-1, batch_dims=1)
            truncated_term = self.policy_loss(log_probs, behaviour_log_probs, q_retrace - values, 1.0)
            correction = bias_correction_objective(
                log_probabilities, behaviour_probabilities, q_values, values, config.truncation_clip
            )
            entropy = tf.reduce_mean(self.distribution.entropy(logits))
            objective = -truncated_term + tf.reduce_mean(correction) + config.ent_coef * entropy
        # The objective is a mean over rows; each row's own gradient is `rows` times its share.
        return tape.gradient(objective, logits) * rows, -objective, entropy

    def _follow_actor(self) -> None:
        decay = self.config.average_decay
        for average, weight in zip(
            self.average_actor.trainable_weights, self.actor.trainable_weights, strict=True
        ):
            average.assign(decay * average + (1.0 - decay) * weight)

    def _example_rollout(self) -> Rollout:
        config = self.config
        time_and_envs = (config.n_steps, config.num_envs)
        observations = np.zeros((*time_and_envs, *self.observation_space.shape), np.float32)
        flags = np.zeros(time_and_envs, bool)
        return Rollout(
            observations=observations,
            raw_actions=np.zeros(time_and_envs, np.int64),
            log_probs=np.zeros(time_and_envs, np.float32),
            policy_outputs=np.zeros((*time_and_envs, int(self.action_space.n)), np.float32),
            rewards=np.zeros(time_and_envs, np.float32),
            terminated=flags,
            truncated=flags,
            next_observations=observations,
            values=np.zeros(time_and_envs, np.float32),
        )

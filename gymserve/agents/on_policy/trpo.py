"""Trust Region Policy Optimization (Schulman et al., 2015, "Trust Region Policy Optimization").

Each iteration collects `n_steps` steps of `num_envs` envs and computes GAE advantages
(algorithm.py), then, in the same compiled call:

1. The policy maximizes the surrogate L(theta) = mean(pi_theta(a|s) / pi_old(a|s) * A) subject to
   mean KL(pi_old || pi_theta) <= `max_kl` over the rollout's states. With g the surrogate's
   gradient and F the Hessian of that KL at theta_old (the Fisher information), the step
   direction s ~= F^-1 g comes from `cg_iterations` of conjugate gradient on Fisher-vector
   products F v = grad((grad KL) . v) + `cg_damping` v, never forming F. The step
   sqrt(2 max_kl / s.F s) s is where the quadratic model of the KL reaches `max_kl`.
2. A backtracking line search shrinks that step by `line_search_shrink` until the surrogate
   improves and the exact mean KL is within `max_kl`; after `line_search_steps` failures the
   policy stays where it was.
3. The critic regresses on the GAE returns: `critic_epochs` passes of Adam (or RMSprop) in
   minibatches of `batch_size` rows.

What differs from the paper: advantages are GAE (Schulman et al., 2016) with a critic trained by
plain regression, rather than Monte Carlo single-path or vine estimates; the line search accepts
any improvement of the surrogate instead of comparing it with the linear model's prediction;
advantages are standardized over the rollout; `ent_coef` adds an entropy bonus to the surrogate.
Box actions use the tanh-squashed Gaussian of every gymserve policy: the squash is one invertible
map applied to both distributions, so the KL is exactly that of the Gaussians over the
pre-squash actions. The defaults follow sb3-contrib's TRPO.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import keras
import tensorflow as tf
from pydantic import Field, model_validator

from gymserve.agents.on_policy.algorithm import (
    OnPolicyAlgorithm,
    OnPolicyConfig,
    check_minibatches_tile_the_rollout,
    make_optimizer,
    standardized,
)

METRICS = ("policy_loss", "entropy", "kl", "step_fraction")


class TRPOConfig(OnPolicyConfig):
    """TRPO hyperparameters: sb3-contrib's defaults, with rollouts of 8 envs x 256 steps.

    `learning_rate`, `optimizer` and `max_grad_norm` are the critic's; `vf_coef` and `shared_torso`
    do not apply (the critic is a separate network with its own optimizer).
    """

    num_envs: int = Field(8, gt=0, description="Training environments stepped side by side.")
    n_steps: int = Field(256, gt=0, description="Steps of every env per rollout.")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda.")
    learning_rate: float = Field(1e-3, gt=0, description="Initial learning rate of the critic.")
    max_grad_norm: float | None = Field(None, gt=0, description="Clip critic gradients to this global norm.")
    normalize_advantage: bool = Field(True, description="Standardize advantages over each rollout.")
    max_kl: float = Field(0.01, gt=0, description="Largest mean KL(old || new) policy of one update.")
    cg_iterations: int = Field(15, gt=0, description="Conjugate gradient steps for the step direction.")
    cg_damping: float = Field(0.1, ge=0, description="Added to the Fisher matrix's diagonal for stability.")
    line_search_shrink: float = Field(0.8, gt=0, lt=1, description="Step factor of each backtrack.")
    line_search_steps: int = Field(10, gt=0, description="Step sizes tried before the update is dropped.")
    critic_epochs: int = Field(10, gt=0, description="Passes of critic regression over each rollout.")
    batch_size: int = Field(
        128, gt=0, description="Rows per critic minibatch; must divide n_steps * num_envs."
    )

    @model_validator(mode="after")
    def _fits_trpo(self) -> TRPOConfig:
        if self.shared_torso:
            raise ValueError("shared_torso must be false: trpo's critic regression would move the policy")
        if self.vf_coef != TRPOConfig.model_fields["vf_coef"].default:
            raise ValueError("vf_coef does not apply to trpo: its critic has its own optimizer")
        if self.mixed_precision:
            raise ValueError("mixed_precision does not apply to trpo: its natural gradient needs float32")
        check_minibatches_tile_the_rollout(self, self.batch_size)
        return self


def conjugate_gradient(
    matrix_vector_product: Callable[[tf.Tensor], tf.Tensor],
    b: tf.Tensor,
    iterations: int,
    residual_tolerance: float = 1e-10,
) -> tf.Tensor:
    """x ~= A^-1 b for a symmetric positive definite A known only through v -> A v (traceable).

    Stops after `iterations` steps or once |b - A x|^2 <= `residual_tolerance`; in exact
    arithmetic an n x n system is solved in n steps.
    """
    b = tf.convert_to_tensor(b)

    def step(
        index: tf.Tensor, x: tf.Tensor, residual: tf.Tensor, direction: tf.Tensor, residual_norm: tf.Tensor
    ) -> tuple[tf.Tensor, ...]:
        product = matrix_vector_product(direction)
        alpha = residual_norm / tf.tensordot(direction, product, 1)
        x = x + alpha * direction
        residual = residual - alpha * product
        new_residual_norm = tf.tensordot(residual, residual, 1)
        direction = residual + (new_residual_norm / residual_norm) * direction
        return index + 1, x, residual, direction, new_residual_norm

    def unfinished(index: tf.Tensor, *state: tf.Tensor) -> tf.Tensor:
        return (index < iterations) & (state[-1] > residual_tolerance)

    start = (tf.constant(0), tf.zeros_like(b), b, b, tf.tensordot(b, b, 1))
    return tf.while_loop(unfinished, step, start)[1]


def backtracking_line_search(
    objective_and_kl: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]],
    start: tf.Tensor,
    full_step: tf.Tensor,
    max_kl: float,
    shrink: float,
    steps: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """The first of `start + shrink^k full_step`, k = 0, 1, ... `steps - 1`, that is acceptable.

    Acceptable: `objective_and_kl(parameters)` gives an objective above the one at `start` and a
    KL within `max_kl`. Returns the parameters and the accepted fraction of `full_step`, or
    `start` and 0 when no step is acceptable (traceable).
    """
    start_objective, _ = objective_and_kl(start)

    def try_smaller(index: tf.Tensor, accepted: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        fraction = shrink ** tf.cast(index, start.dtype)
        objective, kl = objective_and_kl(start + fraction * full_step)
        return index + 1, (objective > start_objective) & (kl <= max_kl)

    def searching(index: tf.Tensor, accepted: tf.Tensor) -> tf.Tensor:
        return (index < steps) & tf.logical_not(accepted)

    tries, accepted = tf.while_loop(searching, try_smaller, (tf.constant(0), tf.constant(False)))
    fraction = tf.where(accepted, shrink ** tf.cast(tries - 1, start.dtype), tf.zeros((), start.dtype))
    return start + fraction * full_step, fraction


def flat_concat(tensors: list[tf.Tensor]) -> tf.Tensor:
    """The tensors' elements in one vector, in order."""
    return tf.concat([tf.reshape(tensor, [-1]) for tensor in tensors], axis=0)


def assign_flat(variables: list[tf.Variable], flat: tf.Tensor) -> None:
    """Set `variables` from one vector laid out as `flat_concat(variables)`."""
    offset = 0
    for variable in variables:
        size = variable.shape.num_elements()
        variable.assign(tf.reshape(flat[offset : offset + size], variable.shape))
        offset += size


class TRPO(OnPolicyAlgorithm):
    """TRPO for Discrete and (tanh-squashed Gaussian) Box action spaces."""

    name = "trpo"
    config_class = TRPOConfig

    def __init__(self, config: TRPOConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Space):
        super().__init__(config, observation_space, action_space)
        self.config: TRPOConfig = config
        self.policy_variables = self.actor_critic.actor.trainable_weights
        self.critic_variables = self.actor_critic.critic.trainable_weights
        # The policy moves by natural-gradient steps; the optimizer trains only the critic.
        self.optimizer = make_optimizer(config, self.critic_variables)

    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        return {"critic": self.optimizer}

    def n_epochs(self) -> int:
        return self.config.critic_epochs

    def minibatch_size(self) -> int:
        return self.config.batch_size

    def policy_loss(
        self, log_probs: tf.Tensor, old_log_probs: tf.Tensor, advantages: tf.Tensor, decay_fraction: tf.Tensor
    ) -> tf.Tensor:
        """The surrogate, negated: -mean(pi / pi_old * A)."""
        return -tf.reduce_mean(tf.exp(log_probs - old_log_probs) * advantages)

    def update(self, batch: dict[str, tf.Tensor], decay_fraction: tf.Tensor) -> dict[str, tf.Tensor]:
        policy_metrics = self.policy_step(batch, decay_fraction)
        critic_metrics = self.minibatch_passes(batch, self.critic_step, ("value_loss",))
        return {**policy_metrics, **critic_metrics}

    def policy_step(self, batch: dict[str, tf.Tensor], decay_fraction: tf.Tensor) -> dict[str, tf.Tensor]:
        """One trust-region step of the actor on the whole batch (traced); its metrics."""
        config, actor, distribution = self.config, self.actor_critic.actor, self.distribution
        observations = batch["observations"]
        advantages = standardized(batch["advantages"]) if config.normalize_advantage else batch["advantages"]
        old_outputs = tf.stop_gradient(actor(observations, training=False))

        def objective(outputs: tf.Tensor) -> tf.Tensor:
            log_probs = distribution.log_prob(outputs, batch["raw_actions"])
            surrogate = -self.policy_loss(log_probs, batch["log_probs"], advantages, decay_fraction)
            return surrogate + config.ent_coef * tf.reduce_mean(distribution.entropy(outputs))

        def mean_kl(outputs: tf.Tensor) -> tf.Tensor:
            return tf.reduce_mean(distribution.kl_divergence(old_outputs, outputs))

        def gradient(function: Callable[[tf.Tensor], tf.Tensor]) -> tf.Tensor:
            with tf.GradientTape() as tape:
                value = function(actor(observations, training=True))
            return flat_concat(tape.gradient(value, self.policy_variables))

        def fisher_vector_product(vector: tf.Tensor) -> tf.Tensor:
            with tf.GradientTape() as tape:
                directional_derivative = tf.tensordot(gradient(mean_kl), vector, 1)
            return flat_concat(tape.gradient(directional_derivative, self.policy_variables)) + (
                config.cg_damping * vector
            )

        def objective_and_kl(parameters: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            assign_flat(self.policy_variables, parameters)
            outputs = actor(observations, training=False)
            return objective(outputs), mean_kl(outputs)

        direction = conjugate_gradient(fisher_vector_product, gradient(objective), config.cg_iterations)
        curvature = tf.tensordot(direction, fisher_vector_product(direction), 1)
        full_step = tf.sqrt(2.0 * config.max_kl / tf.maximum(curvature, 1e-12)) * direction
        parameters, fraction = backtracking_line_search(
            objective_and_kl,
            flat_concat(self.policy_variables),
            full_step,
            config.max_kl,
            config.line_search_shrink,
            config.line_search_steps,
        )
        assign_flat(self.policy_variables, parameters)
        outputs = actor(observations, training=False)
        metrics = (
            -objective(outputs),
            tf.reduce_mean(distribution.entropy(outputs)),
            mean_kl(outputs),
            fraction,
        )
        return dict(zip(METRICS, metrics, strict=True))

    def critic_step(self, minibatch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One regression step of the critic towards the minibatch's returns (traced)."""
        with tf.GradientTape() as tape:
            values = self.actor_critic.critic(minibatch["observations"], training=True)
            loss = tf.reduce_mean(tf.square(minibatch["returns"] - values))
        gradients = tape.gradient(loss, self.critic_variables)
        if self.config.max_grad_norm is not None:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.max_grad_norm)
        self.optimizer.apply_gradients(zip(gradients, self.critic_variables, strict=True))
        return {"value_loss": loss}

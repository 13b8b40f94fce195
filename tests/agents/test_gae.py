import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.on_policy.algorithm import Rollout, successor_values
from gymserve.agents.on_policy.gae import generalized_advantages

GAMMA, LAMBDA = 0.9, 0.5
REWARDS = np.array([1.0, 1.0, 1.0], np.float32)
VALUES = np.array([0.5, 1.0, 2.0], np.float32)
# Step 1's successor is worth 4.0; it is the final observation if step 1 ends an episode.
NEXT_VALUES = np.array([1.0, 4.0, 3.0], np.float32)
NO_END = np.zeros(3, bool)
END_AT_1 = np.array([False, True, False])


def gae(terminated: np.ndarray, truncated: np.ndarray, next_values: np.ndarray = NEXT_VALUES):
    advantages, returns = generalized_advantages(
        REWARDS, VALUES, next_values, terminated, truncated, gamma=GAMMA, gae_lambda=LAMBDA
    )
    return advantages.numpy(), returns.numpy()


def test_continuing_steps_accumulate_discounted_td_errors():
    next_values = np.array([1.0, 2.0, 3.0], np.float32)
    # deltas: 1 + .9*1 - .5 = 1.4, 1 + .9*2 - 1 = 1.8, 1 + .9*3 - 2 = 1.7; gamma * lambda = .45
    advantages, returns = gae(NO_END, NO_END, next_values)
    np.testing.assert_allclose(
        advantages, [1.4 + 0.45 * (1.8 + 0.45 * 1.7), 1.8 + 0.45 * 1.7, 1.7], rtol=1e-6
    )
    np.testing.assert_allclose(returns, advantages + VALUES, rtol=1e-6)


def test_termination_does_not_bootstrap_and_stops_the_advantage():
    advantages, returns = gae(terminated=END_AT_1, truncated=NO_END)
    # step 1: 1 - 1.0 = 0.0 (the final observation's 4.0 is ignored); step 0 sees nothing of step 2.
    np.testing.assert_allclose(advantages, [1.4, 0.0, 1.7], rtol=1e-6)
    np.testing.assert_allclose(returns, [1.9, 1.0, 3.7], rtol=1e-6)


def test_truncation_bootstraps_from_the_final_observation_but_stops_the_advantage():
    advantages, returns = gae(terminated=NO_END, truncated=END_AT_1)
    # step 1: 1 + .9*4 - 1 = 3.6; step 0: 1.4 + .45*3.6; step 2 belongs to the next episode.
    np.testing.assert_allclose(advantages, [1.4 + 0.45 * 3.6, 3.6, 1.7], rtol=1e-6)
    np.testing.assert_allclose(returns, [3.52, 4.6, 3.7], rtol=1e-6)


def test_lambda_one_gives_bootstrapped_discounted_returns():
    next_values = np.append(VALUES[1:], 3.0)
    advantages, returns = generalized_advantages(
        REWARDS, VALUES, next_values, NO_END, NO_END, gamma=GAMMA, gae_lambda=1.0
    )
    expected = [1 + 0.9 + 0.81 + 0.729 * 3.0, 1 + 0.9 + 0.81 * 3.0, 1 + 0.9 * 3.0]
    np.testing.assert_allclose(returns.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(advantages.numpy(), np.array(expected) - VALUES, rtol=1e-6)


def test_parallel_envs_are_independent_columns():
    terminated = np.stack([NO_END, END_AT_1], axis=1)
    truncated = np.stack([END_AT_1, NO_END], axis=1)
    advantages, _ = generalized_advantages(
        np.stack([REWARDS] * 2, 1),
        np.stack([VALUES] * 2, 1),
        np.stack([NEXT_VALUES] * 2, 1),
        terminated,
        truncated,
        gamma=GAMMA,
        gae_lambda=LAMBDA,
    )
    np.testing.assert_allclose(advantages.numpy()[:, 0], gae(NO_END, END_AT_1)[0], rtol=1e-6)
    np.testing.assert_allclose(advantages.numpy()[:, 1], gae(END_AT_1, NO_END)[0], rtol=1e-6)


def test_mismatched_shapes_are_named():
    with pytest.raises(
        ValueError, match=r"next_values has shape \(2,\); expected the shape of rewards \(3,\)"
    ):
        generalized_advantages(
            REWARDS, VALUES, NEXT_VALUES[:2], NO_END, NO_END, gamma=GAMMA, gae_lambda=LAMBDA
        )


class RowCountingCritic:
    """A critic worth the sum of an observation, which records how many rows each call gets."""

    def __init__(self):
        self.rows: list[int] = []

    def __call__(self, observations, training: bool = False):
        self.rows.append(int(observations.shape[0]))
        return tf.reduce_sum(observations, axis=-1)


def test_successor_values_reuse_the_rollouts_values_and_ask_the_critic_only_where_needed():
    steps, envs = 5, 3
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(steps + 1, envs, 2)).astype(np.float32)
    terminated = np.zeros((steps, envs), bool)
    truncated = np.zeros((steps, envs), bool)
    terminated[1, 0] = truncated[3, 2] = True
    next_observations = observations[1:].copy()
    # where an episode ended the env restarted: the successor is a final observation of its own
    for step, env in ((1, 0), (3, 2)):
        next_observations[step, env] = rng.normal(size=2)
    rollout = Rollout(
        observations=tf.constant(observations[:-1]),
        raw_actions=tf.zeros((steps, envs), tf.int64),
        log_probs=tf.zeros((steps, envs)),
        policy_outputs=tf.zeros((steps, envs, 2)),
        rewards=tf.zeros((steps, envs)),
        terminated=tf.constant(terminated),
        truncated=tf.constant(truncated),
        next_observations=tf.constant(next_observations),
        values=tf.constant(observations[:-1].sum(axis=-1)),  # as the actor computed them
    )
    critic = RowCountingCritic()

    successors = successor_values(critic, rollout)

    np.testing.assert_allclose(successors, next_observations.sum(axis=-1), rtol=1e-6)
    assert critic.rows == [envs + 2]  # the last step's successors and the two that ended episodes

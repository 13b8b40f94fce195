import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents import load_trained_policy, train
from gymserve.agents.algorithm import UnsupportedActionSpaceError
from gymserve.agents.networks import normalization_layers
from gymserve.agents.off_policy.sac import SAC, SACConfig
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.policies import RandomPolicy
from gymserve.policies.episodes import evaluate

CARTPOLE = "gymserve/CartPoleContinuousBullet-v0"
CARTPOLE_OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
CARTPOLE_ACTIONS = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


class DriftingPoint(gym.Env):
    """A point in the plane pushed by actions of any Box shape; rewarded for staying near the origin."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)

    def __init__(self, action_space: gym.spaces.Box):
        self.action_space = action_space
        self.position = np.zeros(2, np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position = self.np_random.uniform(-1.0, 1.0, 2).astype(np.float32)
        return self.position.copy(), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32)), action
        push = np.resize(np.asarray(action, np.float32).reshape(-1), 2)
        self.position = np.clip(self.position + 0.1 * push, -5.0, 5.0).astype(np.float32)
        return self.position.copy(), -float(np.abs(self.position).sum()), False, False, {}


def tiny_sac(observation_space=CARTPOLE_OBSERVATIONS, action_space=CARTPOLE_ACTIONS, **fields) -> SAC:
    defaults = {
        "actor_hidden_sizes": (8,),
        "critic_hidden_sizes": (8,),
        "batch_size": 4,
        "learning_starts": 0,
        "jit_compile": False,
    }
    return SAC(SACConfig(**(defaults | fields)), observation_space, action_space)


def test_sampled_action_log_prob_by_hand_includes_the_tanh_and_bounds_correction():
    sac = tiny_sac(action_space=gym.spaces.Box(0.0, 4.0, (1,), np.float32))
    outputs = tf.constant([[0.3, math.log(0.5)]])  # mean 0.3, std 0.5
    critic_actions, log_probs = sac.sample_actions(outputs, tf.constant([[0.8]]))  # u = 0.3 + 0.5 * 0.8
    u = 0.7
    gaussian = -0.5 * 0.8**2 - math.log(0.5) - 0.5 * math.log(2 * math.pi)
    # a = 0 + (tanh(u) + 1) / 2 * 4, so da/du = (1 - tanh(u)^2) * 2
    expected = gaussian - math.log((1 - math.tanh(u) ** 2) * 2.0)
    np.testing.assert_allclose(critic_actions, [[math.tanh(u)]], rtol=1e-6)
    np.testing.assert_allclose(log_probs, [expected], rtol=1e-5)


def test_sampled_actions_follow_the_density_their_log_probs_state():
    """Monte Carlo: bin frequencies of sampled env actions match the integral of exp(log pi)."""
    low, high = -1.0, 3.0
    sac = tiny_sac(action_space=gym.spaces.Box(low, high, (1,), np.float32))
    mean, std = 0.4, 0.8
    outputs = tf.constant([[mean, math.log(std)]])

    def env_actions(critic_actions: np.ndarray) -> np.ndarray:
        return low + (critic_actions[:, 0] + 1.0) / 2.0 * (high - low)

    noise = np.random.default_rng(0).standard_normal((200_000, 1)).astype(np.float32)
    samples, _ = sac.sample_actions(tf.repeat(outputs, len(noise), axis=0), tf.constant(noise))
    edges = np.linspace(low, high, 21)
    frequencies = np.histogram(env_actions(samples.numpy()), edges)[0] / len(noise)

    # The density on a fine grid of env actions, through the noise that produces each of them.
    grid = np.linspace(low + 1e-4, high - 1e-4, 40_001)
    pre_squash = np.arctanh(2.0 * (grid - low) / (high - low) - 1.0)
    grid_noise = ((pre_squash - mean) / std).astype(np.float32)[:, None]
    _, log_probs = sac.sample_actions(tf.repeat(outputs, len(grid), axis=0), tf.constant(grid_noise))
    density = np.exp(log_probs.numpy().astype(np.float64))
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
    probabilities = np.diff(np.interp(edges, grid, cumulative))
    np.testing.assert_allclose(frequencies, probabilities, atol=3e-3)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-3)


def test_target_critics_move_tau_of_the_way_every_interval():
    sac = tiny_sac(tau=0.25, target_update_interval=2)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    initial = [weight.numpy() for weight in sac.target_critic.trainable_weights]
    sac.train_iteration(runner)  # gradient step 1: no target update
    for old, target in zip(initial, sac.target_critic.trainable_weights, strict=True):
        np.testing.assert_array_equal(target.numpy(), old)
    sac.train_iteration(runner)  # gradient step 2: updated after it
    for old, target, online in zip(
        initial, sac.target_critic.trainable_weights, sac.critic.trainable_weights, strict=True
    ):
        np.testing.assert_allclose(target.numpy(), 0.25 * online.numpy() + 0.75 * old, rtol=1e-5, atol=1e-7)
    assert int(sac.critic_optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize(("target_entropy", "direction"), [(5.0, 1), (-20.0, -1)])
def test_alpha_rises_below_the_target_entropy_and_falls_above_it(target_entropy, direction):
    # A squashed Gaussian on [-1, 1] has entropy at most log 2, and at least -20 is easy.
    sac = tiny_sac(target_entropy=target_entropy, initial_alpha=0.5)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    alphas = [sac.alpha]
    for _ in range(3):
        metrics = sac.train_iteration(runner)
        alphas.append(sac.alpha)
    assert np.all(direction * np.diff(alphas) > 0), alphas
    assert metrics["sac/alpha"] == pytest.approx(alphas[-2], rel=1e-6)  # the alpha the step used


def test_minibatches_carry_n_step_returns_cut_at_the_episode_end():
    sac = tiny_sac(bootstrap_horizon=3, gamma=0.5, batch_size=64)
    rewards = np.array([1.0, 2.0, 4.0, 8.0, 16.0], np.float32)
    for step, reward in enumerate(rewards):  # one episode of five steps; the observation encodes the step
        sac.replay.add_batch(
            {
                "observation": np.full((1, 4), step, np.float32),
                "action": np.zeros((1, 1), np.float32),
                "reward": reward[None],
                "next_observation": np.full((1, 4), step + 1, np.float32),
                "terminated": np.array([step == 4]),
                "done": np.array([step == 4]),
            }
        )
    batch, _ = sac._sample_minibatches(total_steps=5)
    observations, returns, discounts = batch["observations"], batch["returns"], batch["discounts"]
    next_observations = batch["next_observations"]
    starts = observations[0, :, 0].astype(int)
    assert set(starts) == {0, 1, 2, 3, 4}
    expected_returns = {
        0: 1 + 0.5 * 2 + 0.25 * 4,
        1: 2 + 0.5 * 4 + 0.25 * 8,
        2: 4 + 0.5 * 8 + 0.25 * 16,
        3: 8 + 0.5 * 16,
        4: 16,
    }
    # From step 2 on, the window reaches the terminal step 4: no bootstrap.
    expected_discounts = {0: 0.125, 1: 0.125, 2: 0.0, 3: 0.0, 4: 0.0}
    np.testing.assert_allclose(returns[0], [expected_returns[t] for t in starts])
    np.testing.assert_allclose(discounts[0], [expected_discounts[t] for t in starts])
    np.testing.assert_array_equal(next_observations[0, :, 0], np.minimum(starts + 3, 5))


def test_default_target_entropy_is_minus_the_action_dimension():
    assert tiny_sac(action_space=gym.spaces.Box(-1.0, 1.0, (2, 3), np.float32)).target_entropy == -6.0


def test_initial_collection_is_uniform_then_the_actor_acts():
    sac = tiny_sac(learning_starts=300, gradient_steps=1)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    for _ in range(299):
        assert sac.train_iteration(runner) == {}  # no learning before the collection ends
    metrics = sac.train_iteration(runner)
    actions = sac.replay.gather_all()["action"].reshape(-1)
    assert actions.min() < -0.9 and actions.max() > 0.9 and abs(actions.mean()) < 0.1
    assert set(metrics) == {"sac/critic_loss", "sac/actor_loss", "sac/alpha_loss", "sac/alpha", "sac/entropy"}
    assert int(sac.actor_optimizer.iterations.numpy()) == 1


def test_any_box_action_shape_and_bounds():
    action_space = gym.spaces.Box(
        np.array([[0.0, -2.0], [-1.0, 5.0]], np.float32), np.array([[1.0, 2.0], [1.0, 6.0]], np.float32)
    )
    env = DriftingPoint(action_space)
    sac = tiny_sac(
        DriftingPoint.observation_space, action_space, learning_starts=5, normalize_observations=True
    )
    runner = EnvRunner([env], seed=0, on_observations=sac.update_observation_statistics)
    for _ in range(20):  # DriftingPoint asserts that every action is inside the bounds
        sac.train_iteration(runner)
    stored = sac.replay.gather_all()["action"]
    assert stored.shape == (1, 20, 4) and np.all(np.abs(stored) <= 1.0)
    greedy = sac.policy().action(runner.observations, mode="greedy").action
    assert greedy.shape == (1, 2, 2) and action_space.contains(greedy[0])


def test_observation_normalization_is_one_layer_shared_by_actor_and_critics():
    sac = tiny_sac(normalize_observations=True)
    (layer,) = normalization_layers(sac.networks().values())
    assert layer in sac.actor.layers and layer in sac.critic.layers and layer in sac.target_critic.layers
    runner = EnvRunner.make(CARTPOLE, 1, seed=0, on_observations=sac.update_observation_statistics)
    for _ in range(4):
        sac.train_iteration(runner)
    assert float(layer.count.numpy()) == 5  # the reset observation and four steps


def test_only_bounded_box_action_spaces_are_accepted():
    with pytest.raises(UnsupportedActionSpaceError, match=r"sac acts only in Box action spaces.*Discrete"):
        tiny_sac(action_space=gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="bounded Box"):
        tiny_sac(action_space=gym.spaces.Box(-np.inf, np.inf, (1,), np.float32))


def test_restored_algorithm_continues_exactly_like_the_original(tmp_path):
    """Variables, optimizer slots, log(alpha), the replay buffer and the generator are all saved."""
    sac = tiny_sac(learning_starts=3)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    for _ in range(8):
        sac.train_iteration(runner)
    sac.save(tmp_path)
    restored = tiny_sac(learning_starts=3)
    restored.restore(tmp_path)
    for name, array in sac.replay.gather_all().items():
        np.testing.assert_array_equal(restored.replay.gather_all()[name], array)
    assert restored.alpha == sac.alpha != 1.0

    for algorithm in (sac, restored):
        continued = EnvRunner.make(CARTPOLE, 1, seed=7)
        for _ in range(3):
            algorithm.train_iteration(continued)
    for network in ("actor", "critic", "target_critic", "temperature"):
        pairs = zip(sac.networks()[network].weights, restored.networks()[network].weights, strict=True)
        for original, copy in pairs:
            np.testing.assert_array_equal(copy.numpy(), original.numpy())


@pytest.mark.slow  # two short runs with XLA compiles, about 20 s
def test_the_first_steps_of_a_run_do_not_depend_on_max_steps(tmp_path):
    """Two runs that differ only in max_steps act, learn and evaluate alike up to the shorter one's end
    (XLA-compiled updates and normalization included, as in the shipped Minitaur config)."""
    config = {
        "actor_hidden_sizes": (16,),
        "critic_hidden_sizes": (16,),
        "batch_size": 16,
        "initial_collect_steps": 50,
        "normalize_observations": True,
        "n_step": 5,
        "jit_compile": True,
        "eval_interval": 100,
        "eval_episodes": 1,
        "checkpoint_interval": 100,
    }
    short = train("sac", CARTPOLE, tmp_path / "short", {**config, "max_steps": 200}, progress_bar=False)
    long = train("sac", CARTPOLE, tmp_path / "long", {**config, "max_steps": 300}, progress_bar=False)

    def without_wall_time(rows):
        return [{name: value for name, value in row.items() if name != "wall_time"} for row in rows]

    shared = [row for row in long.history.rows if row["step"] <= 200]
    assert len(short.history.evaluations()) == 2 and len(shared) > 4
    assert without_wall_time(short.history.rows) == without_wall_time(shared)


@pytest.mark.slow
def test_short_training_clearly_beats_a_random_policy(tmp_path):
    """About 15 s: 4000 steps on the continuous Bullet cart-pole, greedy vs uniform random actions."""
    config = {
        "max_steps": 4000,
        "eval_interval": 1000,
        "eval_episodes": 5,
        "actor_hidden_sizes": (64, 64),
        "critic_hidden_sizes": (64, 64),
        "batch_size": 64,
        "learning_starts": 500,
        "actor_learning_rate": 1e-3,
        "critic_learning_rate": 1e-3,
        "alpha_learning_rate": 1e-3,
    }
    result = train("sac", CARTPOLE, tmp_path / "run", config, progress_bar=False)
    assert result.stop_reason == "max_steps" and result.total_steps == 4000
    trained = load_trained_policy(tmp_path / "run")
    random_return = evaluate(
        RandomPolicy(trained.policy.observation_space, CARTPOLE_ACTIONS, seed=0), CARTPOLE, 20, seed=99
    )
    greedy_return = evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=99)
    assert greedy_return.average_return >= max(80.0, 3 * random_return.average_return), (
        greedy_return.average_return,
        random_return.average_return,
    )

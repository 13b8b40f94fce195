import math

import gymnasium as gym
import numpy as np
import pytest

from gymserve.agents.off_policy.ddpg import DDPG, DDPGConfig
from gymserve.agents.off_policy.exploration_noise import OrnsteinUhlenbeckNoise
from gymserve.agents.off_policy.td3 import TD3, TD3Config
from gymserve.agents.training.env_runner import EnvRunner

CARTPOLE = "gymserve/CartPoleContinuousBullet-v0"
OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACTIONS = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
TINY = {"actor_hidden_sizes": (8,), "critic_hidden_sizes": (8,), "batch_size": 4, "learning_starts": 0}


def tiny(algorithm=TD3, config_class=TD3Config, action_space=ACTIONS, **fields):
    return algorithm(config_class(**(TINY | {"jit_compile": False} | fields)), OBSERVATIONS, action_space)


def weights(model):
    return [weight.numpy().copy() for weight in model.trainable_weights]


def test_td3_updates_the_actor_and_targets_only_every_policy_delay_critic_steps():
    td3 = tiny(policy_delay=2, tau=0.5)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    actor, target_actor, critic = weights(td3.actor), weights(td3.target_actor), weights(td3.critic)
    td3.train_iteration(runner)  # critic step 1
    assert any(np.any(new != old) for new, old in zip(weights(td3.critic), critic, strict=True))
    for new, old in zip(weights(td3.actor), actor, strict=True):
        np.testing.assert_array_equal(new, old)
    for new, old in zip(weights(td3.target_actor), target_actor, strict=True):
        np.testing.assert_array_equal(new, old)
    td3.train_iteration(runner)  # critic step 2: actor step, then the targets move half way
    assert any(np.any(new != old) for new, old in zip(weights(td3.actor), actor, strict=True))
    for online, target, old in zip(weights(td3.actor), weights(td3.target_actor), target_actor, strict=True):
        np.testing.assert_allclose(target, 0.5 * online + 0.5 * old, rtol=1e-5, atol=1e-7)
    assert td3.critic.output_shape == (None, 2)


def test_ddpg_has_one_critic_and_updates_the_actor_every_step():
    ddpg = tiny(DDPG, DDPGConfig)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    actor = weights(ddpg.actor)
    ddpg.train_iteration(runner)
    assert any(np.any(new != old) for new, old in zip(weights(ddpg.actor), actor, strict=True))
    assert ddpg.critic.output_shape == (None, 1)
    assert "target_noise" not in ddpg._sample_minibatches(1)[0]


def test_exploration_adds_the_configured_noise_to_the_greedy_action_in_action_units():
    space = gym.spaces.Box(-2.0, 6.0, (1,), np.float32)  # half range 4
    td3 = tiny(action_space=space, exploration_noise_std=0.05)
    observations = np.zeros((1, 4), np.float32)
    greedy = td3.policy().action(observations).action
    assert 0.0 < greedy[0, 0] < 4.0  # near the middle, so clipping does not shape the spread
    samples = np.concatenate([td3.explore(observations, total_steps=1) for _ in range(4000)])
    assert np.std(samples) == pytest.approx(0.2, rel=0.05)
    assert np.mean(samples) == pytest.approx(greedy[0, 0], abs=0.02)
    stochastic = td3.policy().distribution(observations)
    np.testing.assert_allclose(stochastic.noise_std, [[0.2]], rtol=1e-6)


def test_evaluations_act_on_a_numpy_copy_of_the_actor_as_the_policy_does():
    td3 = tiny(normalize_observations=True)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    for _ in range(3):
        td3.train_iteration(runner)  # moves the weights and the observation statistics
    observations = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32) * 3
    evaluation = td3.evaluation_policy()
    assert evaluation is not td3.policy()
    np.testing.assert_allclose(
        evaluation.action(observations).action, td3.policy().action(observations).action, rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        evaluation.distribution(observations).noise_std, td3.policy().distribution(observations).noise_std
    )
    before = evaluation.action(observations).action
    td3.train_iteration(runner)
    np.testing.assert_array_equal(evaluation.action(observations).action, before)  # a snapshot
    assert not np.array_equal(td3.evaluation_policy().action(observations).action, before)


def test_ornstein_uhlenbeck_noise_settles_to_its_stationary_std_and_resets():
    noise = OrnsteinUhlenbeckNoise((2000, 1), sigma=0.3, theta=0.15, dt=0.01)
    rng = np.random.default_rng(0)
    for _ in range(3000):  # several mean-reversion times (1 / (theta dt) = 667 steps)
        values = noise.sample(rng)
    expected = 0.3 * math.sqrt(0.01 / (1 - (1 - 0.0015) ** 2))
    assert noise.stationary_std == pytest.approx(expected)
    assert np.std(values) == pytest.approx(expected, rel=0.1)
    correlation = np.corrcoef(values[:, 0], noise.sample(rng)[:, 0])[0, 1]
    assert correlation > 0.99  # correlated in time, unlike Gaussian noise
    noise.reset(np.arange(2000) < 1000)
    assert np.all(noise.values[:1000] == 0) and np.all(noise.values[1000:] != 0)


def test_ddpg_with_ornstein_uhlenbeck_noise_exports_its_stationary_std_and_checkpoints_the_process(tmp_path):
    ddpg = tiny(DDPG, DDPGConfig, exploration_noise="ornstein_uhlenbeck", exploration_noise_std=0.2)
    observations = np.zeros((1, 4), np.float32)
    np.testing.assert_allclose(
        ddpg.policy().distribution(observations).noise_std, [[ddpg._ou_noise.stationary_std]], rtol=1e-6
    )
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    for _ in range(3):
        ddpg.train_iteration(runner)
    ddpg.save(tmp_path)
    restored = tiny(DDPG, DDPGConfig, exploration_noise="ornstein_uhlenbeck", exploration_noise_std=0.2)
    restored.restore(tmp_path)
    np.testing.assert_array_equal(restored._ou_noise.values, ddpg._ou_noise.values)
    assert np.any(ddpg._ou_noise.values != 0)


def test_td3_refuses_discrete_and_unbounded_action_spaces():
    with pytest.raises(ValueError, match="td3 acts only in Box action spaces"):
        tiny(action_space=gym.spaces.Discrete(2))
    with pytest.raises(ValueError, match="bounded Box"):
        tiny(action_space=gym.spaces.Box(-np.inf, np.inf, (1,), np.float32))


class PointToOrigin(gym.Env):
    """A point on a line pushed by actions in [-1, 1]; each step costs its distance from the origin."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = ACTIONS

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.steps = self.np_random.uniform(-2.0, 2.0, 1).astype(np.float32), 0
        return self.position.copy(), {}

    def step(self, action):
        self.position = np.clip(self.position + 0.2 * np.asarray(action, np.float32), -3.0, 3.0)
        self.steps += 1
        return self.position.copy(), -float(abs(self.position[0])), False, self.steps == 30, {}


def average_return(policy, episodes: int = 20) -> float:
    env, total = PointToOrigin(), 0.0
    for episode in range(episodes):
        observation, _ = env.reset(seed=1000 + episode)
        truncated = False
        while not truncated:
            observation, reward, _, truncated, _ = env.step(policy(observation))
            total += reward
    return total / episodes


@pytest.mark.parametrize(("algorithm", "config_class"), [(TD3, TD3Config), (DDPG, DDPGConfig)])
def test_short_training_clearly_beats_random_actions(algorithm, config_class):
    """A few seconds: 1500 steps on a 1-D point that should be steered to the origin."""
    config = config_class(
        actor_hidden_sizes=(16,),
        critic_hidden_sizes=(32,),
        batch_size=32,
        learning_starts=200,
        jit_compile=False,
    )
    agent = algorithm(config, PointToOrigin.observation_space, ACTIONS)
    runner = EnvRunner([PointToOrigin()], seed=0)
    while runner.total_steps < 1500:
        agent.train_iteration(runner)
    rng = np.random.default_rng(0)
    random_return = average_return(lambda observation: rng.uniform(-1.0, 1.0, 1))
    greedy_return = average_return(lambda observation: agent.policy().action(observation).action)
    # Random play drifts around its start (about -30 per episode); steering home costs under a third of it.
    assert greedy_return > random_return / 3, (greedy_return, random_return)


@pytest.mark.parametrize("algorithm", ["td3", "ddpg"])
def test_cli_trains_exports_and_evaluates_a_deterministic_actor(tmp_path, capsys, algorithm):
    import json

    from gymserve.cli import main
    from gymserve.policies import load

    config = tmp_path / "config.json"
    tiny = {
        **TINY,
        "eval_interval": 100,
        "eval_episodes": 2,
        "checkpoint_interval": 100,
        "jit_compile": False,
    }
    config.write_text(json.dumps(tiny))
    run, export = str(tmp_path / "run"), str(tmp_path / "export")
    train_argv = ["train", algorithm, "--env", "Pendulum-v1", "--config", str(config), "--max-steps", "200"]
    assert main([*train_argv, "--out", run, "--quiet"]) == 0
    assert main(["export", run, "--out", export]) == 0
    capsys.readouterr()
    averages = []
    for source in (run, export):
        for mode in ([], ["--stochastic"]):
            argv = ["eval", source, "--episodes", "2", "--seed", "3", "--env", "Pendulum-v1", *mode]
            assert main(argv) == 0
            averages.append(capsys.readouterr().out.split("AverageReturn: ")[1].split()[0])
    assert averages[:2] == averages[2:]  # the export acts as the run's policy, greedy and stochastic
    assert averages[0] != averages[1]
    assert load(export).metadata.action_distribution == "noisy_deterministic"

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.networks import actor_critic
from gymserve.agents.on_policy.algorithm import collect_rollout
from gymserve.agents.on_policy.graph_envs import InGraphCartPole, PythonEnvsInGraph, graph_envs
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.envs.cartpole import RESET_BOUND
from gymserve.policies.distributions import Categorical

CARTPOLE = "gymserve/CartPole-v1"
STARTS = (-0.05, -0.02, 0.01, 0.04)  # every state variable of env i starts at STARTS[i]


def balancing_action(observation: np.ndarray) -> int:
    """Push towards where the pole falls: keeps it up until the time limit."""
    return int(observation[2] + 0.5 * observation[3] > 0)


def test_in_graph_cartpole_gives_the_numpy_envs_transitions_through_termination_and_truncation():
    time_limit = 60  # short enough that rounding differences stay far below float32 resolution
    numpy_envs = [gym.make(CARTPOLE, max_episode_steps=time_limit) for _ in STARTS]
    observations = [
        env.reset(options={"low": start, "high": start})[0]
        for env, start in zip(numpy_envs, STARTS, strict=True)
    ]
    in_graph = InGraphCartPole(len(STARTS), max_episode_steps=time_limit)
    in_graph.set_states(np.repeat(np.array(STARTS)[:, None], 4, axis=1))
    np.testing.assert_array_equal(in_graph.observations().numpy(), np.stack(observations))
    step = tf.function(in_graph.step)
    rng = np.random.default_rng(0)
    running = [True] * len(STARTS)
    ends = {}
    for t in range(time_limit):
        # envs 0 and 1 act at random and fall early; envs 2 and 3 balance until the time limit
        actions = [
            int(rng.integers(2)) if i < 2 else balancing_action(observations[i]) for i in range(len(STARTS))
        ]
        graph_step = step(tf.constant(actions, tf.int64))
        for i, env in enumerate(numpy_envs):
            if not running[i]:
                continue
            observations[i], reward, terminated, truncated, _ = env.step(actions[i])
            # TensorFlow's float64 sin and cos may round differently from libm's in the last bit
            np.testing.assert_allclose(
                graph_step.final_observations[i].numpy(),
                observations[i],
                rtol=1e-6,
                atol=1e-9,
                err_msg=f"env {i} step {t}",
            )
            assert (graph_step.rewards[i], graph_step.terminated[i], graph_step.truncated[i]) == (
                reward,
                terminated,
                truncated,
            ), f"env {i} step {t}"
            if terminated or truncated:
                running[i] = False
                ends[i] = (t + 1, bool(terminated))
                restarted = graph_step.observations[i].numpy()
                assert np.all(np.abs(restarted) <= RESET_BOUND), (
                    "a finished episode restarts in the same step"
                )
    assert ends[0][1] and ends[1][1], "the random envs fall before the time limit"
    assert ends[2] == (time_limit, False) and ends[3] == (time_limit, False)


def test_in_graph_cartpole_reports_its_steps_and_episodes_to_the_runner():
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    env = InGraphCartPole(2)
    rewards = np.ones((3, 2), np.float32)
    dones = np.array([[False, True], [False, False], [True, True]])
    env.account(runner, rewards, dones)
    assert runner.total_steps == 6
    assert sorted((e.total_return, e.length) for e in runner.pop_finished_episodes()) == [
        (1, 1),
        (2, 2),
        (3, 3),
    ]


def test_runner_env_steps_the_runner_from_inside_a_graph():
    runner = EnvRunner.make(CARTPOLE, 3, seed=5)
    twin = EnvRunner.make(CARTPOLE, 3, seed=5)
    env = PythonEnvsInGraph(runner)
    networks = actor_critic(runner.observation_space, runner.action_space, hidden_sizes=(8,))
    generator = tf.random.Generator.from_seed(0)
    rollout = tf.function(
        lambda: collect_rollout(env, networks.both, Categorical.Graph(runner.action_space), generator, 40)
    )()
    assert runner.total_steps == 120
    for t in range(40):
        np.testing.assert_array_equal(rollout.observations[t].numpy(), twin.observations)
        np.testing.assert_allclose(rollout.values[t], networks.critic(twin.observations), atol=1e-6)
        transition = twin.step(rollout.raw_actions[t].numpy())
        np.testing.assert_array_equal(rollout.next_observations[t].numpy(), transition.next_observations)
        np.testing.assert_array_equal(rollout.terminated[t].numpy(), transition.terminated)
    assert rollout.terminated.numpy().any(), "40 random steps end some episode"


def test_graph_envs_are_in_graph_only_for_cartpole_and_split_for_workers():
    cartpole = EnvRunner.make(CARTPOLE, 5, seed=0)
    groups = graph_envs(cartpole, parts=2, in_graph=True, seed=0)
    assert [type(env) for env in groups] == [InGraphCartPole, InGraphCartPole]
    assert [env.num_envs for env in groups] == [3, 2]
    python_groups = graph_envs(cartpole, parts=2, in_graph=False, seed=0)
    assert [type(env) for env in python_groups] == [PythonEnvsInGraph, PythonEnvsInGraph]
    with pytest.raises(ValueError, match=r"cannot split 5 environments into 6 groups"):
        graph_envs(cartpole, parts=6, in_graph=True, seed=0)


def test_in_graph_cartpole_without_velocity_observes_position_and_angle():
    runner = EnvRunner.make("gymserve/CartPoleNoVelocity-v1", 3, seed=0)
    (env,) = graph_envs(runner, parts=1, in_graph=True, seed=0)
    assert isinstance(env, InGraphCartPole)
    states = np.array([[0.01, 0.2, -0.03, 0.4], [0.5, -1.0, 0.1, 2.0], [-0.2, 0.0, 0.05, -0.3]])
    env.set_states(states)
    np.testing.assert_array_equal(env.observations().numpy(), states[:, [0, 2]].astype(np.float32))
    step = env.step(tf.constant([0, 1, 1]))
    assert step.final_observations.shape == (3, 2) and step.observations.shape == (3, 2)

"""gymserve/Minitaur-v0: step-for-step parity with pybullet_envs' MinitaurBulletEnv, and its API."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pybullet
import pytest
from gymnasium.utils.env_checker import check_env
from pybullet_envs_reference import minitaur_rollouts

import gymserve  # noqa: F401  (registers the gymserve/ environments)
from gymserve.envs.errors import ResetNeededError
from gymserve.envs.minitaur import MinitaurEnv
from gymserve.envs.minitaur.robot import FOOT_LINK_IDS

UPSIDE_DOWN = (1.0, 0.0, 0.0, 0.0)  # quaternion (x, y, z, w): half a turn about x


def reference_warnings(test):
    """The reference warns about pkg_resources and about its float64 space bounds; not under test here."""
    for message in ("pkg_resources is deprecated", "precision lowered"):
        test = pytest.mark.filterwarnings(f"ignore:.*{message}:UserWarning")(test)
    return test


def uniform_actions(steps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (steps, 8)).astype(np.float32)


def rollout(env: MinitaurEnv, actions: np.ndarray, seed: int | None = None):
    """(observations starting with the reset one, rewards, terminations) until the first termination."""
    observations = [env.reset(seed=seed)[0]]
    rewards, terminations = [], []
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(action)
        assert not truncated
        observations.append(observation)
        rewards.append(reward)
        terminations.append(terminated)
        if terminated:
            break
    return np.array(observations), np.array(rewards), np.array(terminations)


def assert_same_trajectory(ours, reference, saturate_at: gym.spaces.Box | None = None):
    observations, rewards, terminations = ours
    reference_observations, reference_rewards, reference_dones = reference
    reference_observations = reference_observations.astype(np.float32)
    if saturate_at is not None:
        reference_observations = np.clip(reference_observations, saturate_at.low, saturate_at.high)
    np.testing.assert_array_equal(terminations, reference_dones)
    np.testing.assert_array_equal(observations, reference_observations)
    np.testing.assert_allclose(rewards, reference_rewards, rtol=0, atol=1e-9)


@pytest.mark.slow
@reference_warnings
def test_full_episode_matches_reference():
    actions = uniform_actions(1000, seed=0)
    ((observations, rewards, terminations),) = minitaur_rollouts(actions, seed=0)
    env = MinitaurEnv(randomize_dynamics=False)
    ours = rollout(env, actions, seed=0)
    env.close()
    assert len(rewards) == 1000 and not terminations.any()  # the whole episode, no early fall
    assert_same_trajectory(ours, (observations, rewards, terminations))


@reference_warnings
@pytest.mark.parametrize(
    "options",
    [
        {"hard_reset": False},
        {"accurate_motor_model_enabled": False, "pd_control_enabled": True},
        {"accurate_motor_model_enabled": False},
        {"motor_velocity_limit": 20.0, "motor_kp": 1.5},
        {"action_repeat": 2, "self_collision_enabled": False},
        {"distance_limit": 0.05, "drift_weight": 1.0, "shake_weight": 2.0, "energy_weight": 0.1},
    ],
    ids=lambda options: ",".join(options),
)
def test_options_match_reference_over_two_episodes(options):
    actions = uniform_actions(150, seed=1)
    env = MinitaurEnv(randomize_dynamics=False, **options)
    ours = [rollout(env, actions) for _ in range(2)]
    env.close()
    # The ideal PD controller's torques exceed the sensed torque range; ours saturate there.
    saturate_at = env.observation_space if options.get("pd_control_enabled") else None
    references = minitaur_rollouts(actions, episodes=2, **options)
    for our_episode, reference_episode in zip(ours, references, strict=True):
        assert_same_trajectory(our_episode, reference_episode, saturate_at)


@reference_warnings
def test_legs_beyond_half_a_turn_match_reference():
    """A smooth gait drives motors past pi rad, the bound MinitaurBulletEnv declared."""
    phases = np.arange(200)[:, None] * 0.1 + np.arange(8)
    actions = np.sin(phases).astype(np.float32)
    env = MinitaurEnv(randomize_dynamics=False)
    ours = rollout(env, actions)
    (reference,) = minitaur_rollouts(actions)
    assert np.abs(reference[0][:, :8]).max() > math.pi + 0.01
    assert_same_trajectory(ours, reference)
    assert all(env.observation_space.contains(observation) for observation in ours[0])
    env.close()


@reference_warnings
def test_overheated_motors_shut_down_like_reference():
    """Standing with the legs half extended overloads two motors for over a second."""
    actions = np.tile(np.array([0.5, 0.5, 0.5, 0.5, 0, 0, 0, 0], dtype=np.float32), (300, 1))
    env = MinitaurEnv(randomize_dynamics=False)
    ours = rollout(env, actions)
    assert not all(env.robot.motor_model.enabled)
    env.close()
    (reference,) = minitaur_rollouts(actions)
    assert_same_trajectory(ours, reference)


def test_check_env_passes_without_warnings():
    env = gym.make("gymserve/Minitaur-v0", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_same_seed_same_rollout_and_different_seeds_different_dynamics():
    actions = uniform_actions(200, seed=2)
    first, second, other = (MinitaurEnv() for _ in range(3))
    assert len({first.physics_client, second.physics_client, other.physics_client}) == 3
    for first_values, second_values in zip(
        rollout(first, actions, seed=7), rollout(second, actions, seed=7), strict=True
    ):
        np.testing.assert_array_equal(first_values, second_values)
    _, first_info = first.reset(seed=7)
    _, other_info = other.reset(seed=8)
    nominal = first.robot.nominal_base_mass
    masses = [
        pybullet.getDynamicsInfo(env.robot.body, -1, physicsClientId=env.physics_client)[0]
        for env in (first, other)
    ]
    assert masses[0] != masses[1]
    assert all(0.8 * nominal <= mass <= 1.2 * nominal for mass in masses)
    assert masses == [first_info["dynamics"]["base_mass"], other_info["dynamics"]["base_mass"]]
    foot_friction = pybullet.getDynamicsInfo(
        first.robot.body, FOOT_LINK_IDS[0], physicsClientId=first.physics_client
    )[1]
    assert foot_friction == first_info["dynamics"]["foot_friction"] != other_info["dynamics"]["foot_friction"]
    for env in (first, second, other):
        env.close()


def test_reset_with_seed_is_reproducible():
    env = MinitaurEnv()
    first_observation, first_info = env.reset(seed=3)
    env.step(np.ones(8, dtype=np.float32))
    env.reset(seed=4)
    observation, info = env.reset(seed=3)
    np.testing.assert_array_equal(observation, first_observation)
    assert info == first_info
    env.close()


def test_robot_on_rack_never_falls():
    env = MinitaurEnv(on_rack=True)
    _, rewards, terminations = rollout(env, uniform_actions(300, seed=3), seed=0)
    position, _ = env.robot.base_pose()
    env.close()
    assert len(terminations) == 300 and not terminations.any()
    assert position[2] == pytest.approx(1.0, abs=1e-3)  # held up by the rack
    assert np.abs(rewards).max() < 0.01  # energy spent, no progress


def test_robot_dropped_upside_down_terminates_and_needs_reset():
    env = MinitaurEnv(randomize_dynamics=False)
    env.reset(seed=0)
    pybullet.resetBasePositionAndOrientation(
        env.robot.body, (0.0, 0.0, 0.4), UPSIDE_DOWN, physicsClientId=env.physics_client
    )
    _, _, terminated, truncated, _ = env.step(np.zeros(8, dtype=np.float32))
    assert terminated and not truncated
    with pytest.raises(ResetNeededError, match=r"call reset\(\)"):
        env.step(np.zeros(8, dtype=np.float32))
    env.reset()
    assert not env.step(np.zeros(8, dtype=np.float32))[2]
    env.close()


def test_step_before_reset_raises():
    env = MinitaurEnv()
    with pytest.raises(ResetNeededError, match=r"call reset\(\)"):
        env.step(np.zeros(8, dtype=np.float32))
    env.close()


def test_reward_is_progress_minus_energy_for_a_teleported_robot():
    """Moved 0.5 m forward within one step, the robot earns the 0.5 m minus 0.005 x its energy."""
    env = MinitaurEnv(randomize_dynamics=False)
    env.reset(seed=0)
    action = np.full(8, 0.3, dtype=np.float32)
    env.step(action)
    client, body = env.physics_client, env.robot.body
    (x, y, z), orientation = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)
    pybullet.resetBasePositionAndOrientation(body, (x + 0.5, y, z), orientation, physicsClientId=client)
    observation, reward, _, _, info = env.step(action)
    x_after = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)[0][0]
    env.close()
    velocities, torques = observation[8:16].astype(np.float64), observation[16:24].astype(np.float64)
    energy = abs(np.dot(torques, velocities)) * 0.002  # J over one 2 ms physics step
    assert info["forward_reward"] == x_after - x
    assert x_after - x == pytest.approx(0.5, abs=0.01)
    assert energy > 1e-4
    assert info["energy_reward"] == pytest.approx(energy, rel=1e-5)
    assert reward == pytest.approx(x_after - x - 0.005 * energy, abs=1e-9)


@pytest.mark.parametrize(
    ("action", "problem"),
    [
        (np.zeros(7, dtype=np.float32), r"got shape \(7,\)"),
        (np.zeros((1, 8), dtype=np.float32), r"got shape \(1, 8\)"),
        (np.array([0, 0, 0, np.nan, 0, 0, 0, 0], dtype=np.float32), "non-finite"),
        (np.array([0, 0, 0, 0, 0, np.inf, 0, 0], dtype=np.float32), "non-finite"),
        (np.array([0, 0, 1.02, 0, 0, 0, 0, 0], dtype=np.float32), "out-of-bounds"),
        (np.array([-1.5, 0, 0, 0, 0, 0, 0, 0]), "out-of-bounds"),
        ("forward", "forward"),
    ],
)
def test_bad_actions_raise_value_error_naming_the_space(action, problem):
    env = MinitaurEnv(randomize_dynamics=False)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"Box\(-1\.0, 1\.0, \(8,\), float32\)") as error:
        env.step(action)
    assert error.match(problem)
    env.step(np.array([1.005, -1.005, 0, 0, 0, 0, 0, 0], dtype=np.float32))  # within the 0.01 tolerance
    env.close()


@pytest.mark.parametrize(
    "options",
    [{}, {"observation_noise_stdev": 0.5}, {"torque_control_enabled": True}],
    ids=["plain", "noisy", "pwm"],
)
def test_observations_are_float32_inside_the_space(options):
    env = MinitaurEnv(**options)
    observations, _, _ = rollout(env, -np.ones((100, 8), dtype=np.float32), seed=0)
    assert observations.dtype == np.float32
    assert all(env.observation_space.contains(observation) for observation in observations)
    env.close()


def test_rgb_frames_follow_the_base():
    env = MinitaurEnv(render_mode="rgb_array", randomize_dynamics=False)
    assert env.metadata["render_fps"] == 100.0  # one frame per 5 x 2 ms of simulated time
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 10
    client, body = env.physics_client, env.robot.body
    (x, y, z), orientation = pybullet.getBasePositionAndOrientation(body, physicsClientId=client)
    pybullet.resetBasePositionAndOrientation(body, (x + 2.0, y, z), orientation, physicsClientId=client)
    np.testing.assert_array_equal(env.render(), frame)  # the floor repeats every 2 m
    env.close()


def test_close_disconnects_and_can_repeat():
    env = MinitaurEnv()
    env.reset(seed=0)
    client = env.physics_client
    env.close()
    env.close()
    assert pybullet.getConnectionInfo(client)["isConnected"] == 0
    with pytest.raises(RuntimeError, match="closed; create a new one"):
        env.reset()

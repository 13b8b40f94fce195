"""Every constructor argument of every gymserve environment is checked when the env is made, and a
bad value is refused with a ValueError naming the argument and the value."""

from __future__ import annotations

import importlib
import inspect
import math
import re

import gymnasium as gym
import numpy as np
import pytest

import gymserve  # noqa: F401  (registers the environments)
from gymserve.envs.cartpole import CartPoleVectorEnv

MINITAUR = "gymserve/Minitaur-v0"
NAN = float("nan")

COUNT_PROBLEMS = [NAN, 2.5, 2.0, 0, -1, True, "3", None]
FINITE_PROBLEMS = [NAN, math.inf, -math.inf, "1.0", None, True]
LIMIT_PROBLEMS = [NAN, 0.0, -1.0, "inf", None]
FLAG_PROBLEMS = ["False", 0, 1, None, NAN]

MINITAUR_ARGUMENTS = {
    **dict.fromkeys(
        ["action_repeat", "render_width", "render_height"], ("a positive integer", COUNT_PROBLEMS)
    ),
    **dict.fromkeys(
        [
            "distance_weight",
            "energy_weight",
            "shake_weight",
            "drift_weight",
            "motor_kp",
            "motor_kd",
            "kd_for_pd_controllers",
            "observation_noise_stdev",
        ],
        ("a finite number", FINITE_PROBLEMS),
    ),
    **dict.fromkeys(
        ["distance_limit", "motor_velocity_limit"], ("a positive number or math.inf", LIMIT_PROBLEMS)
    ),
    **dict.fromkeys(
        [
            "self_collision_enabled",
            "pd_control_enabled",
            "leg_model_enabled",
            "accurate_motor_model_enabled",
            "torque_control_enabled",
            "motor_overheat_protection",
            "hard_reset",
            "on_rack",
            "randomize_dynamics",
        ],
        ("True or False", FLAG_PROBLEMS),
    ),
}
CARTPOLE_ARGUMENTS = {
    "gymserve/CartPole-v1": {"sutton_barto_reward": ("True or False", FLAG_PROBLEMS)},
    "gymserve/CartPoleNoVelocity-v1": {"sutton_barto_reward": ("True or False", FLAG_PROBLEMS)},
    "gymserve/CartPoleBullet-v1": dict.fromkeys(
        ["render_width", "render_height"], ("a positive integer", COUNT_PROBLEMS)
    ),
    "gymserve/CartPoleContinuousBullet-v0": dict.fromkeys(
        ["render_width", "render_height"], ("a positive integer", COUNT_PROBLEMS)
    ),
}
CASES = [
    (env_id, name, expected, value)
    for env_id, arguments in [(MINITAUR, MINITAUR_ARGUMENTS), *CARTPOLE_ARGUMENTS.items()]
    for name, (expected, problems) in arguments.items()
    for value in problems
]


@pytest.mark.parametrize(("env_id", "name", "expected", "value"), CASES)
def test_bad_constructor_arguments_are_refused_at_make_naming_the_argument_and_the_value(
    env_id, name, expected, value
):
    message = rf"{name} must be {re.escape(expected)}.*, got {re.escape(repr(value))}$"
    with pytest.raises(ValueError, match=message):
        gym.make(env_id, **{name: value})


def test_every_constructor_argument_of_every_env_is_checked():
    """A new argument must join the tables above, with the values it refuses."""
    for env_id, arguments in [(MINITAUR, MINITAUR_ARGUMENTS), *CARTPOLE_ARGUMENTS.items()]:
        module, _, name = gym.spec(env_id).entry_point.partition(":")
        env_class = getattr(importlib.import_module(module), name)
        declared = set(inspect.signature(env_class).parameters) - {"render_mode", "urdf_root"}
        assert declared == set(arguments), env_id


@pytest.mark.parametrize(
    ("arguments", "name", "value"),
    [
        ({"num_envs": 0}, "num_envs", 0),
        ({"num_envs": 2.5}, "num_envs", 2.5),
        ({"max_episode_steps": NAN}, "max_episode_steps", NAN),
        ({"sutton_barto_reward": "no"}, "sutton_barto_reward", "no"),
    ],
)
def test_bad_vector_env_arguments_are_refused(arguments, name, value):
    with pytest.raises(ValueError, match=rf"{name} must be .*, got {re.escape(repr(value))}$"):
        CartPoleVectorEnv(**arguments)


def test_valid_arguments_of_other_numeric_types_are_accepted():
    arguments = {"action_repeat": np.int64(2), "energy_weight": 0, "on_rack": np.bool_(True)}
    gym.make(MINITAUR, **arguments).close()

"""Minitaur: a quadruped robot learning to walk forward, simulated in pybullet.

## Description

The Minitaur from Ghost Robotics has four legs of two motors each. Each leg is a closed
five-bar linkage: its two motors turn the two upper legs, whose lower legs meet at the foot.
The goal is to walk as far as possible along +x while spending little motor energy. Motor
torques come from a model of the robot's DC motors, and the robot's masses, foot friction,
battery voltage and motor damping are redrawn at every reset. Behaviour matches pybullet_envs'
MinitaurBulletEnv-v0 step for step when dynamics randomization is off.

## Action Space

`Box(-1, 1, (8,), float32)`, through the leg model (`leg_model_enabled=True`):

| Num | Action                                                              |
|-----|---------------------------------------------------------------------|
| 0-3 | extension of the front left, back left, front right, back right leg |
| 4-7 | swing of the front left, back left, front right, back right leg     |

Actions up to 0.01 beyond the bounds are used unchanged; anything further raises ValueError.
Without the leg model the action is the eight motor commands directly: target motor angles in
`[-2*pi, 2*pi]` rad, or PWM duty cycles in `[-1, 1]` with `torque_control_enabled=True`.

## Observation Space

`Box(28,)` of float32. Motors are ordered front left (L, R), back left, front right, back right.

| Num   | Observation                              | Bound (+-)           | Unit  |
|-------|------------------------------------------|----------------------|-------|
| 0-7   | motor angles                             | 2 * pi + 0.01        | rad   |
| 8-15  | motor velocities                         | 16 V / 0.0954 + 0.01 | rad/s |
| 16-23 | motor torques, as the robot senses them  | 5.7 + 0.01           | N*m   |
| 24-27 | base orientation quaternion (x, y, z, w) | 1 + 0.01             |       |

The motor joints turn freely, so angles are not wrapped; MinitaurBulletEnv-v0 declared +-pi
although the leg model alone commands up to 9/8 pi. Observation noise (`observation_noise_stdev`)
is relative to the nominal ranges pi, 16 V / 0.0954, 5.7 and 1. Readings beyond the bounds
(a motor turned further than a full turn, or large noise) saturate at the bounds.

## Rewards

`distance_weight * forward progress along x (m) - energy_weight * |torques . velocities| * dt
- drift_weight * |sideways motion| - shake_weight * |vertical motion|` per step, with the
sensed torques and the velocities of the observation, dt the physics time step (2 ms, as in
MinitaurBulletEnv-v0), and the first step's motion counted from the origin. The defaults weigh
progress 1, energy 0.005, drift and shake 0. `info` holds the four terms before weighting.

## Starting State

The robot is placed at (0, 0, 0.2) m, upright, legs folded at the initial pose, then settles for
100 physics steps holding its initial motor angles (without settling under torque control).

## Episode End

Terminated when the robot has fallen (its up axis tilts more than ~32 degrees, i.e. cosine
below 0.85, or the base is lower than 0.13 m) or has gone further than `distance_limit` from
the origin. `gymserve/Minitaur-v0` truncates after 1000 steps (10 s of simulated time).

## Arguments

`gymnasium.make("gymserve/Minitaur-v0", render_mode="rgb_array", randomize_dynamics=False)`;
every keyword of `MinitaurEnv.__init__` below can be passed the same way.

## Version History

- v0: pybullet_envs' MinitaurBulletEnv-v0 on the Gymnasium API: float32 observations inside
  the observation space, dynamics randomization seeded by `reset(seed=...)`.
"""

from __future__ import annotations

import math
import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import pybullet
import pybullet_data
from gymnasium import spaces

from gymserve.envs.arguments import check_count, check_finite, check_flag, check_limit
from gymserve.envs.errors import ResetNeededError
from gymserve.envs.minitaur.motor import MOTOR_SPEED_LIMIT, OBSERVED_TORQUE_LIMIT, MotorModel
from gymserve.envs.minitaur.randomizer import randomize_robot_dynamics
from gymserve.envs.minitaur.robot import NUM_MOTORS, Minitaur, leg_model_to_motor_angles

CONTROL_TIME_STEP = 0.01  # s of simulated time per action repeat
PHYSICS_SUBSTEPS = 5  # torque-driven motors need 5 finer physics steps per control step
SOLVER_ITERATIONS = 300  # per control step, spread over the physics substeps
SETTLE_STEPS = 100  # physics steps the robot stands still after a reset
GRAVITY = -10.0  # m/s^2
ACTION_TOLERANCE = 0.01  # accepted excess of an action over its bounds
VELOCITIES = slice(NUM_MOTORS, 2 * NUM_MOTORS)  # of the observation
TORQUES = slice(2 * NUM_MOTORS, 3 * NUM_MOTORS)  # of the observation
# Nominal range of each reading; observation noise is relative to it.
OBSERVATION_RANGE = np.concatenate(
    (
        np.full(NUM_MOTORS, math.pi),  # motor angles, rad
        np.full(NUM_MOTORS, MOTOR_SPEED_LIMIT),  # motor velocities, rad/s
        np.full(NUM_MOTORS, OBSERVED_TORQUE_LIMIT),  # motor torques, N*m
        np.ones(4),  # base orientation quaternion
    )
)
# The motor joints turn freely and report unwrapped angles: up to 9/8 pi under the leg model, more
# in a fall. The angle bound therefore allows a full turn either way instead of the nominal pi.
OBSERVATION_BOUND = np.where(np.arange(OBSERVATION_RANGE.size) < NUM_MOTORS, 2 * math.pi, OBSERVATION_RANGE)
OBSERVATION_EPS = 0.01  # margin of the observation bounds
FALLEN_UP_COSINE = 0.85  # cosine between the base's and the world's up axes below which it fell
FALLEN_HEIGHT = 0.13  # m, base height below which the robot fell
CAMERA_DISTANCE = 1.0  # m
CAMERA_YAW = 0.0  # degrees
CAMERA_PITCH = -30.0  # degrees
CAMERA_FOV = 60.0  # degrees, vertical


class MinitaurEnv(gym.Env[np.ndarray, np.ndarray]):
    """The Minitaur walking environment; each instance owns one pybullet DIRECT simulation.

    Args:
        render_mode: None or "rgb_array" (a camera following the base).
        action_repeat: control steps per `step()`, each holding the same motor commands.
        distance_weight: weight of forward progress in the reward.
        energy_weight: weight of the motor energy in the reward.
        shake_weight: weight of the vertical motion penalty in the reward.
        drift_weight: weight of the sideways motion penalty in the reward.
        distance_limit: m from the origin beyond which the episode terminates.
        observation_noise_stdev: standard deviation of the Gaussian observation noise, relative
            to each reading's nominal range (OBSERVATION_RANGE).
        self_collision_enabled: let the robot's links collide with each other.
        motor_velocity_limit: rad/s; motor commands are clipped to what this speed reaches.
        pd_control_enabled: drive the motors with an ideal PD torque controller, when the
            accurate motor model is off.
        leg_model_enabled: actions are leg extensions and swings instead of motor commands.
        accurate_motor_model_enabled: drive the motors through the DC motor model.
        motor_kp: proportional gain of the motor model, PWM per rad.
        motor_kd: derivative gain of the motor model, PWM per rad/s.
        torque_control_enabled: motor commands are PWM duty cycles instead of target angles.
        motor_overheat_protection: shut down motors that exert too much torque for too long.
        hard_reset: rebuild the simulation at each reset instead of moving the robot back.
        on_rack: hold the base fixed in the air, for watching gaits without walking.
        kd_for_pd_controllers: derivative gain of the ideal PD controller, N*m per rad/s.
        randomize_dynamics: redraw masses, foot friction, battery voltage and motor damping
            at each reset, from the env's seeded generator.
        urdf_root: folder holding plane.urdf and quadruped/minitaur.urdf; pybullet_data's by default.
        render_width: pixels of a rendered frame.
        render_height: pixels of a rendered frame.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": 1.0 / CONTROL_TIME_STEP,
    }

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        action_repeat: int = 1,
        distance_weight: float = 1.0,
        energy_weight: float = 0.005,
        shake_weight: float = 0.0,
        drift_weight: float = 0.0,
        distance_limit: float = math.inf,
        observation_noise_stdev: float = 0.0,
        self_collision_enabled: bool = True,
        motor_velocity_limit: float = math.inf,
        pd_control_enabled: bool = False,
        leg_model_enabled: bool = True,
        accurate_motor_model_enabled: bool = True,
        motor_kp: float = 1.0,
        motor_kd: float = 0.02,
        torque_control_enabled: bool = False,
        motor_overheat_protection: bool = True,
        hard_reset: bool = True,
        on_rack: bool = False,
        kd_for_pd_controllers: float = 0.3,
        randomize_dynamics: bool = True,
        urdf_root: str | os.PathLike[str] | None = None,
        render_width: int = 320,
        render_height: int = 240,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        check_count("action_repeat", action_repeat)
        check_count("render_width", render_width)
        check_count("render_height", render_height)
        finite = {
            "distance_weight": distance_weight,
            "energy_weight": energy_weight,
            "shake_weight": shake_weight,
            "drift_weight": drift_weight,
            "motor_kp": motor_kp,
            "motor_kd": motor_kd,
            "kd_for_pd_controllers": kd_for_pd_controllers,
        }
        for name, value in finite.items():
            check_finite(name, value)
        check_finite("observation_noise_stdev", observation_noise_stdev, minimum=0.0)
        check_limit("distance_limit", distance_limit)
        check_limit("motor_velocity_limit", motor_velocity_limit)
        flags = {
            "self_collision_enabled": self_collision_enabled,
            "pd_control_enabled": pd_control_enabled,
            "leg_model_enabled": leg_model_enabled,
            "accurate_motor_model_enabled": accurate_motor_model_enabled,
            "torque_control_enabled": torque_control_enabled,
            "motor_overheat_protection": motor_overheat_protection,
            "hard_reset": hard_reset,
            "on_rack": on_rack,
            "randomize_dynamics": randomize_dynamics,
        }
        for name, value in flags.items():
            check_flag(name, value)
        self.render_mode = render_mode
        self._distance_weight = distance_weight
        self._energy_weight = energy_weight
        self._shake_weight = shake_weight
        self._drift_weight = drift_weight
        self._distance_limit = distance_limit
        self._observation_noise_stdev = observation_noise_stdev
        self._self_collision_enabled = self_collision_enabled
        self._motor_velocity_limit = motor_velocity_limit
        self._pd_control_enabled = pd_control_enabled
        self._leg_model_enabled = leg_model_enabled
        self._accurate_motor_model_enabled = accurate_motor_model_enabled
        self._motor_kp = motor_kp
        self._motor_kd = motor_kd
        self._torque_control_enabled = torque_control_enabled
        self._motor_overheat_protection = motor_overheat_protection
        self._hard_reset = hard_reset
        self._on_rack = on_rack
        self._kd_for_pd_controllers = kd_for_pd_controllers
        self._randomize_dynamics = randomize_dynamics
        urdf_root = pybullet_data.getDataPath() if urdf_root is None else os.fspath(urdf_root)
        self._plane_urdf = os.path.join(urdf_root, "plane.urdf")
        self._minitaur_urdf = os.path.join(urdf_root, "quadruped", "minitaur.urdf")
        self._render_size = (render_width, render_height)

        self._time_step = CONTROL_TIME_STEP
        self._physics_steps_per_action = action_repeat
        self._solver_iterations = SOLVER_ITERATIONS
        if pd_control_enabled or accurate_motor_model_enabled:
            self._time_step /= PHYSICS_SUBSTEPS
            self._physics_steps_per_action *= PHYSICS_SUBSTEPS
            self._solver_iterations //= PHYSICS_SUBSTEPS
        self.metadata = {
            **self.metadata,
            "render_fps": round(1.0 / (self._time_step * self._physics_steps_per_action), 6),
        }

        action_bound = 1.0 if leg_model_enabled or torque_control_enabled else 2 * math.pi
        self.action_space = spaces.Box(-action_bound, action_bound, (NUM_MOTORS,), np.float32)
        self._action_limit = action_bound + ACTION_TOLERANCE
        self._observation_high = (OBSERVATION_BOUND + OBSERVATION_EPS).astype(np.float32)
        self._observation_low = -self._observation_high
        self.observation_space = spaces.Box(self._observation_low, self._observation_high, dtype=np.float32)

        self.physics_client = pybullet.connect(pybullet.DIRECT)
        if self.physics_client < 0:
            raise RuntimeError("pybullet could not start a DIRECT physics simulation")
        self.robot: Minitaur | None = None
        self._episode_over = True
        self._last_base_position = (0.0, 0.0, 0.0)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if self.physics_client < 0:
            raise RuntimeError("This MinitaurEnv is closed; create a new one to simulate again.")
        super().reset(seed=seed)
        if self._hard_reset:
            self._build_world()
        else:
            if self.robot is None:
                # A soft reset keeps pybullet's contact caches; every soft-reset episode, the first
                # included, starts from a robot that has already stood once.
                self._build_world()
                self._settle()
            self.robot.reset()
        info: dict[str, Any] = {}
        if self._randomize_dynamics:
            info["dynamics"] = randomize_robot_dynamics(self.robot, self.np_random)
        self._settle()
        self._last_base_position = (0.0, 0.0, 0.0)
        self._episode_over = False
        _, _, readings = self.robot.sense()
        return self._observation(readings), info

    def _settle(self) -> None:
        if not self._torque_control_enabled:  # PWM commands have no pose to hold
            self.robot.settle(SETTLE_STEPS)

    def _build_world(self) -> None:
        client = self.physics_client
        pybullet.resetSimulation(physicsClientId=client)
        pybullet.setPhysicsEngineParameter(
            numSolverIterations=self._solver_iterations, physicsClientId=client
        )
        pybullet.setTimeStep(self._time_step, physicsClientId=client)
        plane = pybullet.loadURDF(self._plane_urdf, physicsClientId=client)
        pybullet.changeVisualShape(plane, -1, rgbaColor=(1.0, 1.0, 1.0, 0.9), physicsClientId=client)
        pybullet.setGravity(0.0, 0.0, GRAVITY, physicsClientId=client)
        motor_model = None
        if self._accurate_motor_model_enabled:
            motor_model = MotorModel(
                kp=self._motor_kp,
                kd=self._motor_kd,
                torque_control=self._torque_control_enabled,
                overheat_protection=self._motor_overheat_protection,
                time_step=self._time_step,
            )
        self.robot = Minitaur(
            client,
            self._minitaur_urdf,
            time_step=self._time_step,
            self_collision=self._self_collision_enabled,
            on_rack=self._on_rack,
            motor_velocity_limit=self._motor_velocity_limit,
            motor_model=motor_model,
            pd_kd=self._kd_for_pd_controllers if self._pd_control_enabled else None,
        )

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._episode_over:
            raise ResetNeededError(
                "The Minitaur episode is over (the robot fell, left the distance limit, or the env was "
                "never reset); call reset() before step()."
            )
        robot = self.robot
        robot.step(self._motor_commands(action), self._physics_steps_per_action)
        position, orientation, readings = robot.sense()

        last_position = self._last_base_position
        self._last_base_position = position
        forward_reward = position[0] - last_position[0]
        drift_reward = -abs(position[1] - last_position[1])
        shake_reward = -abs(position[2] - last_position[2])
        energy_reward = float(np.abs(np.dot(readings[TORQUES], readings[VELOCITIES])) * self._time_step)
        reward = (
            self._distance_weight * forward_reward
            - self._energy_weight * energy_reward
            + self._drift_weight * drift_reward
            + self._shake_weight * shake_reward
        )

        terminated = (
            self._fallen(position, orientation)
            or math.sqrt(position[0] ** 2 + position[1] ** 2) > self._distance_limit
        )
        self._episode_over = terminated
        info = {
            "forward_reward": forward_reward,
            "energy_reward": energy_reward,
            "drift_reward": drift_reward,
            "shake_reward": shake_reward,
        }
        return self._observation(readings), reward, terminated, False, info

    def _motor_commands(self, action: np.ndarray) -> list[float]:
        """Validated motor commands for an action, through the leg model when it is enabled."""
        try:
            action = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{self._action_requirement()}; got {action!r}") from error
        values, limit = action.tolist(), self._action_limit
        if action.shape != (NUM_MOTORS,) or not all(-limit <= value <= limit for value in values):
            raise ValueError(f"{self._action_requirement()}; {self._action_problem(action)}")
        return leg_model_to_motor_angles(values) if self._leg_model_enabled else values

    def _action_requirement(self) -> str:
        return (
            f"Minitaur actions must be finite arrays in the action space {self.action_space} "
            f"(up to {ACTION_TOLERANCE} beyond its bounds)"
        )

    def _action_problem(self, action: np.ndarray) -> str:
        if action.shape != (NUM_MOTORS,):
            return f"got shape {action.shape}"
        if not np.isfinite(action).all():
            return f"got non-finite values {action.tolist()}"
        return f"got out-of-bounds values {action.tolist()}"

    def _fallen(self, position: tuple[float, ...], orientation: tuple[float, ...]) -> bool:
        up_cosine = pybullet.getMatrixFromQuaternion(orientation)[8]  # z component of the base's up axis
        return up_cosine < FALLEN_UP_COSINE or position[2] < FALLEN_HEIGHT

    def _observation(self, readings: np.ndarray) -> np.ndarray:
        """The float32 observation of the robot's sensor readings: with noise, saturated at the bounds."""
        if self._observation_noise_stdev > 0:
            noise = self.np_random.normal(scale=self._observation_noise_stdev, size=readings.shape)
            readings = readings + noise * OBSERVATION_RANGE
        observation = readings.astype(np.float32)
        np.maximum(observation, self._observation_low, out=observation)
        return np.minimum(observation, self._observation_high, out=observation)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        if self.robot is None:
            raise ResetNeededError(
                "The Minitaur env has nothing to render yet; call reset() before render()."
            )
        width, height = self._render_size
        position, _ = self.robot.base_pose()
        view_matrix = pybullet.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=position,
            distance=CAMERA_DISTANCE,
            yaw=CAMERA_YAW,
            pitch=CAMERA_PITCH,
            roll=0.0,
            upAxisIndex=2,
        )
        projection_matrix = pybullet.computeProjectionMatrixFOV(
            fov=CAMERA_FOV, aspect=width / height, nearVal=0.1, farVal=100.0
        )
        _, _, pixels, _, _ = pybullet.getCameraImage(
            width,
            height,
            viewMatrix=view_matrix,
            projectionMatrix=projection_matrix,
            renderer=pybullet.ER_TINY_RENDERER,
            physicsClientId=self.physics_client,
        )
        return np.asarray(pixels, dtype=np.uint8).reshape(height, width, 4)[:, :, :3].copy()

    def close(self) -> None:
        if self.physics_client >= 0:
            pybullet.disconnect(physicsClientId=self.physics_client)
            self.physics_client = -1
            self.robot = None

"""The Minitaur quadruped in one pybullet simulation: loading, pose, leg model, motor control.

Every pybullet call names the simulation's `physicsClientId`, so independent robots can run
side by side in one process. The eight motor joints are read with one `getJointStates` call
after each physics step; that reading serves both the next motor command and the observation,
so no state is fetched twice.

Motor angles, velocities, torques and commands are in the motor frame: the left motors are
mounted mirrored, so their joint values are multiplied by MOTOR_DIRECTION.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import pybullet

from gymserve.envs.minitaur.motor import MotorModel

NUM_MOTORS = 8
LEG_NAMES = ("front_left", "back_left", "front_right", "back_right")
MOTOR_NAMES = tuple(f"motor_{leg}{side}_joint" for leg in LEG_NAMES for side in "LR")
MOTOR_DIRECTION = np.array([-1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0])
BASE_LINK_ID = -1
LEG_LINK_IDS = (2, 3, 5, 6, 8, 9, 11, 12, 15, 16, 18, 19, 21, 22, 24, 25)
MOTOR_LINK_IDS = (1, 4, 7, 10, 14, 17, 20, 23)
FOOT_LINK_IDS = (3, 6, 9, 12, 16, 19, 22, 25)

INIT_POSITION = (0.0, 0.0, 0.2)  # m, base position when the robot is placed
INIT_ORIENTATION = (0.0, 0.0, 0.0, 1.0)  # quaternion (x, y, z, w), upright
INIT_MOTOR_ANGLE = math.pi / 2  # rad, motor-frame angle of every motor in the initial pose
INIT_KNEE_ANGLE = -2.1834  # rad, motor-frame angle of every knee in the initial pose
# The two lower legs of a leg meet at the foot; pybullet closes that loop with a constraint.
KNEE_CONSTRAINT_POINT_RIGHT = (0.0, 0.005, 0.2)  # m, in the right lower-leg frame
KNEE_CONSTRAINT_POINT_LEFT = (0.0, 0.01, 0.2)  # m, in the left lower-leg frame
POSITION_CONTROL_GAINS = (1.0, 1.0)  # (kp, kd) of pybullet's own position motors
POSITION_CONTROL_MAX_FORCE = 3.5  # N*m, torque cap of pybullet's own position motors
PD_CONTROL_KP = 8.0  # N*m/rad, gain of the ideal PD torque controller

# Joint frame to motor frame for the angles, velocities and torques of `sense()`; the quaternion stays.
_READINGS_DIRECTION = np.concatenate((np.tile(MOTOR_DIRECTION, 3), np.ones(4)))

# Leg model: a leg's two motors turning together swing the leg, turning apart extend it.
_LEG_OF_MOTOR = (0, 0, 1, 1, 2, 2, 3, 3)
_SWING_SCALE = -math.pi / 4  # rad per unit of swing
_SWING_OFFSET = 1.5  # keeps the swing away from the singular, fully stretched leg
_EXTENSION_SCALES = tuple(sign * (math.pi / 4) for sign in (1, -1, 1, -1, -1, 1, -1, 1))  # rad per unit


def leg_model_to_motor_angles(action: Sequence[float]) -> list[float]:
    """Motor angles (rad) for an action of 4 leg extensions followed by 4 leg swings, each in [-1, 1].

    Motors 2k and 2k+1 drive leg k; a swing of -1..1 points the leg over a quarter turn
    and an extension of -1..1 opens or closes it by +-45 degrees around that direction.
    """
    return [
        (math.pi + _SWING_SCALE * (action[leg + 4] + _SWING_OFFSET)) + extension_scale * action[leg]
        for leg, extension_scale in zip(_LEG_OF_MOTOR, _EXTENSION_SCALES, strict=True)
    ]


class Minitaur:
    """One Minitaur robot, loaded at its initial pose into a simulation that holds no robot yet.

    Exactly one of three motor controls drives the robot:
    - `motor_model` given: torques from the DC motor model (the realistic default),
    - else `pd_kd` given: torques from an ideal PD controller with gains (PD_CONTROL_KP, pd_kd),
    - else pybullet's own position motors.

    Args:
        client: pybullet physics client id of the simulation.
        urdf_path: the minitaur.urdf to load.
        time_step: seconds per physics step.
        self_collision: let the robot's links collide with each other.
        on_rack: hold the base fixed in the air, for watching gaits without walking.
        motor_velocity_limit: rad/s; commands further than this from the current angle in one
            physics step are clipped.
        motor_model: the DC motor model, or None.
        pd_kd: derivative gain of the ideal PD controller, used when motor_model is None.
    """

    def __init__(
        self,
        client: int,
        urdf_path: str | os.PathLike[str],
        time_step: float,
        self_collision: bool,
        on_rack: bool,
        motor_velocity_limit: float,
        motor_model: MotorModel | None,
        pd_kd: float | None,
    ) -> None:
        self._client = client
        self._urdf_path = os.fspath(urdf_path)
        self._self_collision = self_collision
        self._on_rack = on_rack
        self._max_command_change = time_step * motor_velocity_limit
        self.motor_model = motor_model
        self._pd_kd = pd_kd
        self.torque_driven = motor_model is not None or pd_kd is not None
        if motor_model is not None:
            self._apply_commands = self._apply_motor_model
        elif pd_kd is not None:
            self._apply_commands = self._apply_pd_control
        else:
            self._apply_commands = self._apply_position_control
        self._joint_torques = [0.0] * NUM_MOTORS
        self._load()

    def _load(self) -> None:
        client = self._client
        flags = pybullet.URDF_USE_SELF_COLLISION if self._self_collision else 0
        self.body = pybullet.loadURDF(self._urdf_path, INIT_POSITION, flags=flags, physicsClientId=client)
        joint_ids = {
            pybullet.getJointInfo(self.body, joint, physicsClientId=client)[1].decode(): joint
            for joint in range(pybullet.getNumJoints(self.body, physicsClientId=client))
        }
        self._motor_ids = [joint_ids[name] for name in MOTOR_NAMES]
        self._knee_ids = [
            joint_ids[name.replace("motor_", "knee_").replace("_joint", "_link")] for name in MOTOR_NAMES
        ]
        self.nominal_base_mass = self._mass(BASE_LINK_ID)
        self.nominal_leg_masses = (self._mass(LEG_LINK_IDS[0]), self._mass(MOTOR_LINK_IDS[0]))
        self._reset_joints()
        for leg in range(len(LEG_NAMES)):
            left_knee, right_knee = self._knee_ids[2 * leg], self._knee_ids[2 * leg + 1]
            pybullet.createConstraint(
                self.body,
                right_knee,
                self.body,
                left_knee,
                pybullet.JOINT_POINT2POINT,
                (0.0, 0.0, 0.0),
                KNEE_CONSTRAINT_POINT_RIGHT,
                KNEE_CONSTRAINT_POINT_LEFT,
                physicsClientId=client,
            )
        self._release_joints()
        if self._on_rack:
            pybullet.createConstraint(
                self.body,
                BASE_LINK_ID,
                -1,
                -1,
                pybullet.JOINT_FIXED,
                (0.0, 0.0, 0.0),
                (0.0, 0.0, 0.0),
                (0.0, 0.0, 1.0),
                physicsClientId=client,
            )
        self._restart_motors()

    def reset(self) -> None:
        """Put the loaded robot back at its initial position and pose, at rest."""
        client = self._client
        pybullet.resetBasePositionAndOrientation(
            self.body, INIT_POSITION, INIT_ORIENTATION, physicsClientId=client
        )
        pybullet.resetBaseVelocity(self.body, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), physicsClientId=client)
        self._reset_joints()
        self._release_joints()
        self._restart_motors()

    def _reset_joints(self) -> None:
        for motor in range(NUM_MOTORS):
            direction = MOTOR_DIRECTION[motor]
            for joint, angle in (
                (self._motor_ids[motor], INIT_MOTOR_ANGLE),
                (self._knee_ids[motor], INIT_KNEE_ANGLE),
            ):
                pybullet.resetJointState(
                    self.body, joint, direction * angle, targetVelocity=0.0, physicsClientId=self._client
                )

    def _release_joints(self) -> None:
        """Switch off pybullet's default joint motors, except the motors it drives itself."""
        free_joints = self._knee_ids + (self._motor_ids if self.torque_driven else [])
        pybullet.setJointMotorControlArray(
            self.body,
            free_joints,
            pybullet.VELOCITY_CONTROL,
            targetVelocities=[0.0] * len(free_joints),
            forces=[0.0] * len(free_joints),
            physicsClientId=self._client,
        )
        if not self.torque_driven:
            self._set_position_targets((INIT_MOTOR_ANGLE * MOTOR_DIRECTION).tolist())

    def _restart_motors(self) -> None:
        if self.motor_model is not None:
            self.motor_model.reset()
        self._read_joints()

    def _mass(self, link: int) -> float:
        return pybullet.getDynamicsInfo(self.body, link, physicsClientId=self._client)[0]

    def set_base_mass(self, mass: float) -> None:
        """Mass of the base in kg."""
        pybullet.changeDynamics(self.body, BASE_LINK_ID, mass=mass, physicsClientId=self._client)

    def set_leg_masses(self, leg_link_mass: float, motor_mass: float) -> None:
        """Mass in kg of each of the 16 leg links and of each of the 8 motors."""
        for link in LEG_LINK_IDS:
            pybullet.changeDynamics(self.body, link, mass=leg_link_mass, physicsClientId=self._client)
        for link in MOTOR_LINK_IDS:
            pybullet.changeDynamics(self.body, link, mass=motor_mass, physicsClientId=self._client)

    def set_foot_friction(self, friction: float) -> None:
        """Lateral friction coefficient of the eight lower-leg links that touch the ground."""
        for link in FOOT_LINK_IDS:
            pybullet.changeDynamics(self.body, link, lateralFriction=friction, physicsClientId=self._client)

    def base_pose(self) -> tuple[tuple[float, float, float], tuple[float, float, float, float]]:
        """(position in m, orientation quaternion (x, y, z, w)) of the base."""
        return pybullet.getBasePositionAndOrientation(self.body, physicsClientId=self._client)

    def step(self, motor_commands: Sequence[float], physics_steps: int) -> None:
        """Hold the motor commands for `physics_steps` steps, updating the motor torques each step."""
        joint_commands = np.multiply(motor_commands, MOTOR_DIRECTION).tolist()
        client = self._client
        apply_commands, step_simulation, read_joints = (
            self._apply_commands,
            pybullet.stepSimulation,
            self._read_joints,
        )
        for _ in range(physics_steps):
            apply_commands(joint_commands)
            step_simulation(physicsClientId=client)
            read_joints()

    def settle(self, physics_steps: int) -> None:
        """Let the robot settle for `physics_steps` steps holding its initial motor angles."""
        if self.torque_driven:
            self.step([INIT_MOTOR_ANGLE] * NUM_MOTORS, physics_steps)
            return
        for _ in range(physics_steps):
            pybullet.stepSimulation(physicsClientId=self._client)
        self._read_joints()

    def sense(self) -> tuple[tuple[float, ...], tuple[float, ...], np.ndarray]:
        """(base position in m, base orientation quaternion, the 28 sensor readings).

        The readings are the motor angles (rad), velocities (rad/s) and sensed torques (N*m) at the
        last physics step, then the base orientation quaternion (x, y, z, w).
        """
        position, orientation = pybullet.getBasePositionAndOrientation(
            self.body, physicsClientId=self._client
        )
        torques = self._joint_torques if self.motor_model is None else self.motor_model.observed_torques()
        readings = (*self._joint_angles, *self._joint_velocities, *torques, *orientation)
        return position, orientation, np.multiply(readings, _READINGS_DIRECTION)

    def _read_joints(self) -> None:
        states = pybullet.getJointStates(self.body, self._motor_ids, physicsClientId=self._client)
        self._joint_angles, self._joint_velocities, _, torques = zip(*states, strict=True)
        if not self.torque_driven:
            self._joint_torques = torques

    # Motor control runs at every physics step on the joint-frame values as pybullet reports them,
    # in Python floats (cheaper than numpy calls for eight values). Every control law here is odd:
    # negating all its inputs negates its output, exactly so in IEEE arithmetic. So this equals
    # computing in the motor frame and converting the torques.

    def _limit_command_change(self, commands: list[float]) -> list[float]:
        change = self._max_command_change
        return [
            min(max(command, angle - change), angle + change)
            for command, angle in zip(commands, self._joint_angles, strict=True)
        ]

    def _apply_motor_model(self, commands: list[float]) -> None:
        if self._max_command_change != math.inf:
            commands = self._limit_command_change(commands)
        self._set_joint_torques(
            self.motor_model.torques(commands, self._joint_angles, self._joint_velocities)
        )

    def _apply_pd_control(self, commands: list[float]) -> None:
        if self._max_command_change != math.inf:
            commands = self._limit_command_change(commands)
        kd = self._pd_kd
        self._joint_torques = [
            -PD_CONTROL_KP * (angle - command) - kd * velocity
            for command, angle, velocity in zip(
                commands, self._joint_angles, self._joint_velocities, strict=True
            )
        ]
        self._set_joint_torques(self._joint_torques)

    def _set_joint_torques(self, torques: list[float]) -> None:
        pybullet.setJointMotorControlArray(
            self.body, self._motor_ids, pybullet.TORQUE_CONTROL, forces=torques, physicsClientId=self._client
        )

    def _apply_position_control(self, commands: list[float]) -> None:
        if self._max_command_change != math.inf:
            commands = self._limit_command_change(commands)
        self._set_position_targets(commands)

    def _set_position_targets(self, joint_angles: list[float]) -> None:
        kp, kd = POSITION_CONTROL_GAINS
        pybullet.setJointMotorControlArray(
            self.body,
            self._motor_ids,
            pybullet.POSITION_CONTROL,
            targetPositions=joint_angles,
            positionGains=[kp] * NUM_MOTORS,
            velocityGains=[kd] * NUM_MOTORS,
            forces=[POSITION_CONTROL_MAX_FORCE] * NUM_MOTORS,
            physicsClientId=self._client,
        )

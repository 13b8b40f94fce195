"""Dynamics randomization of the Minitaur, redrawn at every reset.

A policy trained on one exact robot overfits its masses, friction and battery; drawing them
anew each episode makes it robust to the spread between simulated and real robots.
"""

from __future__ import annotations

import numpy as np

from gymserve.envs.minitaur.robot import Minitaur

BASE_MASS_ERROR_RANGE = (-0.2, 0.2)  # relative to the URDF mass
LEG_MASS_ERROR_RANGE = (-0.2, 0.2)  # relative to the URDF masses
BATTERY_VOLTAGE_RANGE = (14.8, 16.8)  # V
MOTOR_VISCOUS_DAMPING_RANGE = (0.0, 0.01)  # N*m*s/rad
FOOT_FRICTION_RANGE = (0.8, 1.5)  # lateral friction coefficient


def randomize_robot_dynamics(robot: Minitaur, rng: np.random.Generator) -> dict[str, float]:
    """Draw and apply new dynamics to `robot`; returns the values drawn, by name."""
    low, high = BASE_MASS_ERROR_RANGE
    base_mass = rng.uniform(robot.nominal_base_mass * (1.0 + low), robot.nominal_base_mass * (1.0 + high))
    low, high = LEG_MASS_ERROR_RANGE
    leg_link_mass, motor_mass = (
        rng.uniform(mass * (1.0 + low), mass * (1.0 + high)) for mass in robot.nominal_leg_masses
    )
    battery_voltage = rng.uniform(*BATTERY_VOLTAGE_RANGE)
    motor_viscous_damping = rng.uniform(*MOTOR_VISCOUS_DAMPING_RANGE)
    foot_friction = rng.uniform(*FOOT_FRICTION_RANGE)

    robot.set_base_mass(base_mass)
    robot.set_leg_masses(leg_link_mass, motor_mass)
    if robot.motor_model is not None:
        robot.motor_model.set_battery_voltage(battery_voltage)
        robot.motor_model.set_viscous_damping(motor_viscous_damping)
    robot.set_foot_friction(foot_friction)
    return {
        "base_mass": float(base_mass),
        "leg_link_mass": float(leg_link_mass),
        "motor_mass": float(motor_mass),
        "battery_voltage": float(battery_voltage),
        "motor_viscous_damping": float(motor_viscous_damping),
        "foot_friction": float(foot_friction),
    }

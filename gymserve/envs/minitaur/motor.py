"""DC motor model of the Minitaur's eight actuators.

Pybullet's built-in joint motors are ideal: they deliver any torque at any speed. The real
robot's drives are not, and a gait learned against ideal motors does not transfer. This model
turns a PD position command (or a raw PWM duty cycle) into the torque a real Minitaur motor
delivers: the duty cycle saturates at +-1, back-EMF and viscous damping eat voltage as the motor
spins, the controller's diodes clip the net voltage, and the torque-current curve flattens at high
currents. A motor pushed past its continuous torque for too long shuts down, like the robot's
overheat protection.

The model runs at every physics step, so it works on Python floats: for eight motors a plain
loop costs less than the numpy calls would. The torque-current curve is `np.interp`'s, so the
result matches numpy-based implementations bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

VOLTAGE_CLIPPING = 50.0  # V, net motor voltage clipped by diodes on the motor controller
OBSERVED_TORQUE_LIMIT = 5.7  # N*m, range of the torque the robot's sensing reports
MOTOR_VOLTAGE = 16.0  # V, nominal battery voltage
MOTOR_RESISTANCE = 0.186  # ohm, winding resistance
MOTOR_TORQUE_CONSTANT = 0.0954  # N*m/A, also the back-EMF constant in V*s/rad
MOTOR_VISCOUS_DAMPING = 0.0  # N*m*s/rad
MOTOR_SPEED_LIMIT = MOTOR_VOLTAGE / (MOTOR_VISCOUS_DAMPING + MOTOR_TORQUE_CONSTANT)  # rad/s, no-load
CURRENT_TABLE = np.array([0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0])  # A
TORQUE_TABLE = np.array([0.0, 1.0, 1.9, 2.45, 3.0, 3.25, 3.5])  # N*m delivered at each current
OVERHEAT_SHUTDOWN_TORQUE = 2.45  # N*m, a motor above this torque heats up
OVERHEAT_SHUTDOWN_TIME = 1.0  # s above OVERHEAT_SHUTDOWN_TORQUE before the motor shuts down


class MotorModel:
    """Torques of the eight Minitaur motors for one physics step.

    Args:
        kp: proportional gain from angle error (rad) to PWM duty cycle.
        kd: derivative gain from motor velocity (rad/s) to PWM duty cycle.
        torque_control: commands are PWM duty cycles in [-1, 1] instead of target angles.
        overheat_protection: shut a motor down after OVERHEAT_SHUTDOWN_TIME above
            OVERHEAT_SHUTDOWN_TORQUE; it stays off until `reset()`.
        time_step: seconds per physics step, the period of `torques()` calls.
    """

    def __init__(
        self,
        kp: float,
        kd: float,
        torque_control: bool,
        overheat_protection: bool,
        time_step: float,
    ) -> None:
        self._kp = kp
        self._kd = kd
        self._torque_control = torque_control
        self._overheat_protection = overheat_protection
        self._overheat_steps = OVERHEAT_SHUTDOWN_TIME / time_step
        self.set_battery_voltage(MOTOR_VOLTAGE)
        self.set_viscous_damping(MOTOR_VISCOUS_DAMPING)
        self._supplied_voltages = [0.0] * 8
        self.reset()

    def set_battery_voltage(self, voltage: float) -> None:
        """Battery voltage in V."""
        self._voltage = voltage

    def set_viscous_damping(self, damping: float) -> None:
        """Viscous damping of the motors in N*m*s/rad."""
        self._back_emf_constant = MOTOR_TORQUE_CONSTANT + damping

    def reset(self) -> None:
        """Cool all motors down and switch them back on."""
        self._overheat_counters = [0] * 8
        self.enabled = [True] * 8

    def torques(
        self, commands: Sequence[float], angles: Sequence[float], velocities: Sequence[float]
    ) -> list[float]:
        """Torques (N*m) the motors exert for the commands at the given angles and velocities (one frame)."""
        kp, kd, voltage, back_emf_constant = self._kp, self._kd, self._voltage, self._back_emf_constant
        clipping = VOLTAGE_CLIPPING
        supplied_voltages, currents = [], []
        # Clipping is spelled out as conditional expressions: they cost a fraction of min()/max() calls.
        for command, angle, velocity in zip(commands, angles, velocities, strict=True):
            pwm = command if self._torque_control else -kp * (angle - command) - kd * velocity
            pwm = -1.0 if pwm < -1.0 else 1.0 if pwm > 1.0 else pwm
            supplied_voltage = pwm * voltage
            net_voltage = supplied_voltage - back_emf_constant * velocity
            net_voltage = (
                -clipping if net_voltage < -clipping else clipping if net_voltage > clipping else net_voltage
            )
            supplied_voltages.append(supplied_voltage)
            currents.append(net_voltage / MOTOR_RESISTANCE)
        self._supplied_voltages = supplied_voltages
        magnitudes = np.interp(np.abs(currents), CURRENT_TABLE, TORQUE_TABLE).tolist()
        if not self._overheat_protection:
            return [
                math.copysign(magnitude, current)
                for magnitude, current in zip(magnitudes, currents, strict=True)
            ]
        return self._overheat_protected(magnitudes, currents)

    def observed_torques(self) -> list[float]:
        """Torques (N*m) the robot senses for the last `torques()`: current from the duty cycle alone."""
        limit = OBSERVED_TORQUE_LIMIT
        torques = [
            MOTOR_TORQUE_CONSTANT * (voltage / MOTOR_RESISTANCE) for voltage in self._supplied_voltages
        ]
        return [-limit if torque < -limit else limit if torque > limit else torque for torque in torques]

    def _overheat_protected(self, magnitudes: list[float], currents: list[float]) -> list[float]:
        """Signed torques of the motors still on, after shutting down those hot for too long."""
        counters, enabled, copysign = self._overheat_counters, self.enabled, math.copysign
        torques = []
        for motor, (magnitude, current) in enumerate(zip(magnitudes, currents, strict=True)):
            counters[motor] = counters[motor] + 1 if magnitude > OVERHEAT_SHUTDOWN_TORQUE else 0
            if counters[motor] > self._overheat_steps:
                enabled[motor] = False
            torques.append(copysign(magnitude, current) if enabled[motor] else 0.0)
        return torques

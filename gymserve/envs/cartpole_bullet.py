"""Cart-pole simulated by Bullet, with discrete pushes or a continuous force.

Gymnasium-native ports of pybullet_envs' `CartPoleBulletEnv-v1` and
`CartPoleContinuousBulletEnv-v0`: the same `cartpole.urdf` from pybullet_data, the same
simulation settings, reward and termination. Each environment owns its own Bullet physics server
(`pybullet.DIRECT`, addressed by `physicsClientId` in every call), so any number of them can live
in one process; `close()` shuts it down.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gymserve.common.extras import extra_imports
from gymserve.envs.arguments import check_count
from gymserve.envs.cartpole import THETA_THRESHOLD, reset_bounds, validated_action
from gymserve.envs.errors import ResetNeededError

with extra_imports("a Bullet cart-pole (gymserve/CartPoleBullet-v1, gymserve/CartPoleContinuousBullet-v0)"):
    import pybullet
    import pybullet_data

X_THRESHOLD = 0.4  # m: beyond it the cart has left the track
FORCE_MAGNITUDE = 10.0  # N, the largest force on the cart
TIME_STEP = 0.02  # s simulated per step
GRAVITY = 9.8  # m/s², pointing down the z axis
CART_JOINT = 0  # prismatic joint sliding the cart along x
POLE_JOINT = 1  # hinge of the pole on the cart

CAMERA_TARGET = (0.0, 0.0, 0.4)  # m: the middle of the rail and of the upright pole
CAMERA_DISTANCE = 2.0  # m from the target
CAMERA_PITCH = 0.3  # degrees
CAMERA_FIELD_OF_VIEW = 60.0  # degrees


class CartPoleBulletEnv(gym.Env[np.ndarray, Any]):
    """Balance a pole on a cart simulated by Bullet, pushing the cart left or right.

    ## Description

    A cart slides along a rail (`cartpole.urdf`: a 1 kg cart, a 1 m pole of 0.1 kg on a
    frictionless hinge) and must keep its pole upright. Bullet integrates the multibody every
    `0.02` s with gravity 9.8 m/s² and no damping; no motor acts on the joints except the force
    the agent puts on the cart.

    ## Action Space

    `Discrete(2)`: 0 pushes the cart left with 10 N, 1 pushes it right with 10 N. Anything else
    raises `ValueError`.

    ## Observation Space

    A float32 array of shape `(4,)`, pole first as in the reference:

    | Num | Observation           | Min                 | Max               |
    |-----|-----------------------|---------------------|-------------------|
    | 0   | Pole Angle            | ~ -0.419 rad (-24°) | ~ 0.419 rad (24°) |
    | 1   | Pole Angular Velocity | -3.4e38 (float32)   | 3.4e38 (float32)  |
    | 2   | Cart Position         | -0.8 m              | 0.8 m             |
    | 3   | Cart Velocity         | -3.4e38 (float32)   | 3.4e38 (float32)  |

    ## Rewards

    +1 for every step, the terminating step included.

    ## Starting State

    Pole angle, pole angular velocity, cart position and cart velocity are drawn uniformly from
    `[-0.05, 0.05]` with the environment's seeded `np_random`;
    `reset(options={"low": ..., "high": ...})` changes the range.

    ## Episode End

    1. Termination: the pole angle leaves ±12° (±0.2095 rad).
    2. Termination: the cart position leaves ±0.4 m.
    3. Truncation: 200 steps, applied by the registry's `TimeLimit`.

    Calling `step()` after termination without `reset()` raises `ResetNeededError`.

    ## Arguments

    ```python
    env = gym.make("gymserve/CartPoleBullet-v1", render_mode="rgb_array", render_width=320, render_height=200)
    ```

    | Parameter       | Type          | Default | Description                                      |
    |-----------------|---------------|---------|--------------------------------------------------|
    | `render_mode`   | `str \\| None` | `None`  | `"rgb_array"`: frames from Bullet's CPU renderer |
    | `render_width`  | `int`         | `320`   | frame width in pixels                            |
    | `render_height` | `int`         | `200`   | frame height in pixels                           |

    ## Version History

    * v1: port of pybullet_envs' CartPoleBulletEnv-v1 with the same physics. Fixed: observations
      are float32 inside the observation space (the reference returned float64 and bounded the
      angle by the position limits and the position by the angle limits, so a cart ending its
      episode beyond 0.419 m fell outside the space); the initial state comes from the
      environment's own seeded generator; invalid actions raise `ValueError`; each environment
      has its own physics server; no `human` mode and no prints.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": round(1 / TIME_STEP)}

    def __init__(self, render_mode: str | None = None, render_width: int = 320, render_height: int = 200):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not supported: expected None or 'rgb_array'")
        check_count("render_width", render_width)
        check_count("render_height", render_height)
        self.render_mode = render_mode
        self.render_width = render_width
        self.render_height = render_height
        self.action_space: spaces.Space = spaces.Discrete(2)
        float32_max = np.finfo(np.float32).max
        high = np.array([THETA_THRESHOLD * 2, float32_max, X_THRESHOLD * 2, float32_max], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self._client: int | None = pybullet.connect(pybullet.DIRECT)
        self._cartpole = self._load_cartpole()
        self._was_reset = False
        self._terminated = False

    def _load_cartpole(self) -> int:
        """Load the cart-pole and set the simulation up as pybullet_envs does."""
        client = self._client
        cartpole = pybullet.loadURDF(
            os.path.join(pybullet_data.getDataPath(), "cartpole.urdf"), [0, 0, 0], physicsClientId=client
        )
        for link in (-1, CART_JOINT, POLE_JOINT):
            pybullet.changeDynamics(cartpole, link, linearDamping=0, angularDamping=0, physicsClientId=client)
        for joint in (POLE_JOINT, CART_JOINT):  # the default velocity motors would brake the joints
            pybullet.setJointMotorControl2(
                cartpole, joint, pybullet.VELOCITY_CONTROL, force=0, physicsClientId=client
            )
        pybullet.setGravity(0, 0, -GRAVITY, physicsClientId=client)
        pybullet.setTimeStep(TIME_STEP, physicsClientId=client)
        return cartpole

    def _force(self, action: Any) -> float:
        """The force in newtons on the cart for a validated action."""
        return FORCE_MAGNITUDE if action == 1 else -FORCE_MAGNITUDE

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        force = self._force(validated_action(self.action_space, action))
        if not self._was_reset:
            raise ResetNeededError("step() called before reset(): call reset() to start an episode")
        if self._terminated:
            raise ResetNeededError(
                "step() called after the episode terminated: call reset() to start a new one"
            )
        client = self._physics_client()
        pybullet.setJointMotorControl2(
            self._cartpole, CART_JOINT, pybullet.TORQUE_CONTROL, force=force, physicsClientId=client
        )
        pybullet.stepSimulation(physicsClientId=client)
        state = self._joint_state()
        theta, _, x, _ = state
        self._terminated = abs(x) > X_THRESHOLD or abs(theta) > THETA_THRESHOLD
        return np.array(state, dtype=np.float32), 1.0, self._terminated, False, {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        low, high = reset_bounds(options)
        theta, theta_dot, x, x_dot = self.np_random.uniform(low=low, high=high, size=(4,)).tolist()
        client = self._physics_client()
        pybullet.resetJointState(self._cartpole, POLE_JOINT, theta, theta_dot, physicsClientId=client)
        pybullet.resetJointState(self._cartpole, CART_JOINT, x, x_dot, physicsClientId=client)
        self._was_reset = True
        self._terminated = False
        return np.array(self._joint_state(), dtype=np.float32), {}

    def _joint_state(self) -> tuple[float, float, float, float]:
        """(theta, theta_dot, x, x_dot) as Bullet's doubles."""
        (theta, theta_dot, *_), (x, x_dot, *_) = pybullet.getJointStates(
            self._cartpole, [POLE_JOINT, CART_JOINT], physicsClientId=self._client
        )
        return theta, theta_dot, x, x_dot

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn('render() needs render_mode="rgb_array" at construction; nothing was drawn')
            return None
        client = self._physics_client()
        view = pybullet.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=CAMERA_TARGET,
            distance=CAMERA_DISTANCE,
            yaw=0,
            pitch=CAMERA_PITCH,
            roll=0,
            upAxisIndex=2,
            physicsClientId=client,
        )
        projection = pybullet.computeProjectionMatrixFOV(
            fov=CAMERA_FIELD_OF_VIEW,
            aspect=self.render_width / self.render_height,
            nearVal=0.1,
            farVal=100.0,
            physicsClientId=client,
        )
        _, _, rgba, _, _ = pybullet.getCameraImage(
            self.render_width,
            self.render_height,
            view,
            projection,
            renderer=pybullet.ER_TINY_RENDERER,
            physicsClientId=client,
        )
        rgba = np.asarray(rgba, dtype=np.uint8).reshape(self.render_height, self.render_width, 4)
        return np.ascontiguousarray(rgba[:, :, :3])

    def _physics_client(self) -> int:
        if self._client is None:
            raise RuntimeError("the environment is closed: make a new one")
        return self._client

    def close(self) -> None:
        if self._client is not None:
            pybullet.disconnect(physicsClientId=self._client)
            self._client = None


class CartPoleContinuousBulletEnv(CartPoleBulletEnv):
    """The Bullet cart-pole driven by a continuous force.

    ## Action Space

    `Box(-1, 1, (1,), float32)`: the force on the cart as a fraction of 10 N, positive to the
    right. Anything outside (wrong shape or type, out of range, NaN) raises `ValueError`.

    Everything else (observations, rewards, starting state, episode end, arguments) is that of
    `CartPoleBulletEnv`.

    ## Version History

    * v0: port of pybullet_envs' CartPoleContinuousBulletEnv-v0 with the same physics and force
      range. Changed: the action is normalised to [-1, 1] and scaled by 10 N (the reference took
      newtons in [-10, 10] as a float64 Box), plus the fixes listed for `CartPoleBulletEnv` v1.
    """

    def __init__(self, render_mode: str | None = None, render_width: int = 320, render_height: int = 200):
        super().__init__(render_mode, render_width, render_height)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def _force(self, action: Any) -> float:
        return FORCE_MAGNITUDE * float(action[0])

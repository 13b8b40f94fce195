"""The classic cart-pole balancing task, step for step identical to Gymnasium's `CartPole-v1`.

One copy of the physics, `euler_step`, advances a single state held in Python floats (the
single environment, fast) or a batch held in numpy arrays (the vector environment). Both perform
the same IEEE-754 double operations in the same order as Gymnasium, so observations, rewards and
episode ends are bit-identical to `gym.make("CartPole-v1")` and to its vector entry point for the
same seed and actions.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gymserve.envs.arguments import check_count, check_flag
from gymserve.envs.errors import ResetNeededError
from gymserve.envs.rendering import blank_frame, fill_convex_polygon, fill_disc

GRAVITY = 9.8  # m/s²
CART_MASS = 1.0  # kg
POLE_MASS = 0.1  # kg
TOTAL_MASS = POLE_MASS + CART_MASS  # kg
POLE_HALF_LENGTH = 0.5  # m, from the hinge to the pole's centre of mass
POLE_MASS_LENGTH = POLE_MASS * POLE_HALF_LENGTH  # kg·m
FORCE_MAGNITUDE = 10.0  # N, applied to the cart every step, to the left or to the right
TAU = 0.02  # s between state updates
THETA_THRESHOLD = 12 * 2 * math.pi / 360  # rad (12°): beyond it the pole has fallen
X_THRESHOLD = 2.4  # m: beyond it the cart has left the track
RESET_BOUND = 0.05  # every state variable starts uniform in [-RESET_BOUND, RESET_BOUND]

FRAME_WIDTH = 600  # px
FRAME_HEIGHT = 400  # px


def validated_action(space: spaces.Space, action: Any) -> Any:
    """`action` as a member of `space`: an int for Discrete, an array for MultiDiscrete and Box.

    Raises ValueError naming the expected space for anything else (wrong type or shape, out of
    range, NaN): a wrong action is a bug in the caller, never something to clip or round.
    """
    if isinstance(space, spaces.Discrete):
        if space.contains(action):
            return int(action)
        expected = f"one integer from {int(space.start)} to {int(space.start + space.n - 1)}"
    else:
        if isinstance(space, spaces.MultiDiscrete):
            kinds, description = "iu", "an integer array"
            low, high = space.start, space.start + space.nvec - 1
        elif isinstance(space, spaces.Box):
            kinds, description = "iuf", "a number array"
            low, high = space.low, space.high
        else:
            raise TypeError(f"cannot validate actions of {space}")
        values = np.asarray(action)
        if (
            values.dtype.kind in kinds
            and values.shape == space.shape
            and np.all((values >= low) & (values <= high))
        ):
            return values.astype(space.dtype)
        expected = f"{description} of shape {space.shape} within [{_compact(low)}, {_compact(high)}]"
    raise ValueError(f"action {action!r} is not in the action space {space}: expected {expected}")


def _compact(bound: np.ndarray) -> Any:
    """A per-entry bound as one number when all entries agree, for short error messages."""
    return bound.flat[0].item() if np.all(bound == bound.flat[0]) else bound


def reset_bounds(options: dict[str, Any] | None) -> tuple[float, float]:
    """The `(low, high)` range of the initial state; `options` may override it with "low"/"high"."""
    options = options or {}
    unknown = set(options) - {"low", "high"}
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)}: expected only 'low' and 'high'")
    low = float(options.get("low", -RESET_BOUND))
    high = float(options.get("high", RESET_BOUND))
    if not low <= high:
        raise ValueError(f"reset options need low <= high, got low={low} and high={high}")
    return low, high


def euler_step(state: Any, force: Any, numerics: ModuleType = np) -> tuple[Any, Any, Any, Any]:
    """Advance `(x, x_dot, theta, theta_dot)` by `TAU` seconds under a horizontal `force` on the cart.

    Works elementwise on Python floats with `numerics=math` and on numpy arrays (one entry per
    environment) with `numerics=np`; both give the same doubles as Gymnasium's CartPole. The
    equations are Florian's corrected cart-pole dynamics (https://coneural.org/florian/papers/05_cart_pole.pdf).
    """
    x, x_dot, theta, theta_dot = state
    cos_theta = numerics.cos(theta)
    sin_theta = numerics.sin(theta)
    temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin_theta) / TOTAL_MASS
    theta_acc = (GRAVITY * sin_theta - cos_theta * temp) / (
        POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * (cos_theta * cos_theta) / TOTAL_MASS)
    )
    x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_theta / TOTAL_MASS
    return (x + TAU * x_dot, x_dot + TAU * x_acc, theta + TAU * theta_dot, theta_dot + TAU * theta_acc)


def has_fallen(x: Any, theta: Any) -> Any:
    """Whether the cart left the track or the pole fell past 12°, for floats or arrays."""
    return (abs(x) > X_THRESHOLD) | (abs(theta) > THETA_THRESHOLD)


def observation_space() -> spaces.Box:
    """Observation bounds: twice the termination limits, so a failing state is still inside.

    Velocities are bounded by the largest float32 rather than infinity, as Gymnasium's checker
    asks of Box spaces.
    """
    float32_max = np.finfo(np.float32).max
    high = np.array([X_THRESHOLD * 2, float32_max, THETA_THRESHOLD * 2, float32_max], dtype=np.float32)
    return spaces.Box(-high, high, dtype=np.float32)


def draw_cartpole(x: float, theta: float) -> np.ndarray:
    """A `(FRAME_HEIGHT, FRAME_WIDTH, 3)` uint8 picture of the cart at `x` m with the pole at `theta` rad."""
    frame = blank_frame(FRAME_HEIGHT, FRAME_WIDTH)
    pixels_per_meter = FRAME_WIDTH / (X_THRESHOLD * 2)
    track_row = FRAME_HEIGHT - 100
    cart_column = FRAME_WIDTH / 2 + x * pixels_per_meter
    cart_half_width, cart_half_height = 25.0, 15.0  # px
    pole_half_width, pole_length = 5.0, 2 * POLE_HALF_LENGTH * pixels_per_meter  # px
    hinge = np.array([cart_column, track_row - cart_half_height / 2])

    frame[track_row] = (0, 0, 0)
    fill_convex_polygon(
        frame,
        [
            (cart_column - cart_half_width, track_row - cart_half_height),
            (cart_column + cart_half_width, track_row - cart_half_height),
            (cart_column + cart_half_width, track_row + cart_half_height),
            (cart_column - cart_half_width, track_row + cart_half_height),
        ],
        (0, 0, 0),
    )
    along = np.array([math.sin(theta), -math.cos(theta)])  # up the pole, rows grow downwards
    across = np.array([-along[1], along[0]]) * pole_half_width
    bottom = hinge - along * pole_half_width
    top = hinge + along * (pole_length - pole_half_width)
    fill_convex_polygon(
        frame, [bottom - across, bottom + across, top + across, top - across], (202, 152, 101)
    )
    fill_disc(frame, hinge, pole_half_width, (129, 132, 203))
    return frame


class CartPoleEnv(gym.Env[np.ndarray, int]):
    """Balance a pole hinged on a cart by pushing the cart left or right.

    ## Description

    The cart-pole problem of Barto, Sutton and Anderson, "Neuronlike Adaptive Elements That Can
    Solve Difficult Learning Control Problems" (1983): a pole stands on an un-actuated hinge on
    a cart that runs along a frictionless track. Every step the cart is pushed with a fixed force
    to the left or to the right; the pole must stay upright and the cart on the track.

    ## Action Space

    `Discrete(2)`: an integer (Python or numpy, or a 0-d integer array).

    - 0: push the cart to the left
    - 1: push the cart to the right

    The change in velocity a push causes depends on the pole's angle. Anything else raises
    `ValueError`.

    ## Observation Space

    A float32 array of shape `(4,)`:

    | Num | Observation           | Min                  | Max                 |
    |-----|-----------------------|----------------------|---------------------|
    | 0   | Cart Position         | -4.8                 | 4.8                 |
    | 1   | Cart Velocity         | -3.4e38 (float32)    | 3.4e38 (float32)    |
    | 2   | Pole Angle            | ~ -0.418 rad (-24°)  | ~ 0.418 rad (24°)   |
    | 3   | Pole Angular Velocity | -3.4e38 (float32)    | 3.4e38 (float32)    |

    The bounds are twice the termination limits below, so the observation that ends an episode
    still lies in the space.

    ## Rewards

    +1 for every step, the terminating step included, so the return is the episode length (the
    reward threshold is 475 of at most 500). With `sutton_barto_reward=True` every step gives 0
    and the terminating step -1, as in the original paper.

    ## Starting State

    All four state variables are drawn uniformly from `[-0.05, 0.05]` with the environment's
    seeded `np_random`; `reset(options={"low": ..., "high": ...})` changes the range.

    ## Episode End

    1. Termination: the pole angle leaves ±12° (±0.2095 rad).
    2. Termination: the cart position leaves ±2.4 m (the cart's centre reaches the frame edge).
    3. Truncation: 500 steps, applied by the registry's `TimeLimit` for `gymserve/CartPole-v1`.

    Calling `step()` after termination without `reset()` raises `ResetNeededError`.

    ## Arguments

    ```python
    env = gym.make("gymserve/CartPole-v1", render_mode="rgb_array", sutton_barto_reward=False)
    vector_env = gym.make_vec("gymserve/CartPole-v1", num_envs=16, vectorization_mode="vector_entry_point")
    ```

    | Parameter             | Type          | Default | Description                                        |
    |-----------------------|---------------|---------|----------------------------------------------------|
    | `sutton_barto_reward` | `bool`        | `False` | 0 per step and -1 on termination                   |
    | `render_mode`         | `str \\| None` | `None`  | `"rgb_array"`: 400x600 frames drawn without pygame |

    ## Version History

    * v1: Gymnasium's CartPole-v1 dynamics, rewards and seeding, bit for bit. Differences:
      stepping a terminated episode raises instead of warning, invalid actions raise
      `ValueError` instead of failing an assert, velocity bounds are the largest float32
      instead of infinity, and `rgb_array` frames are drawn with numpy (no `human` mode).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(self, sutton_barto_reward: bool = False, render_mode: str | None = None):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not supported: expected None or 'rgb_array'")
        check_flag("sutton_barto_reward", sutton_barto_reward)
        self.sutton_barto_reward = sutton_barto_reward
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(2)
        self.observation_space = observation_space()
        self._state: tuple[float, float, float, float] | None = None
        self._terminated = False

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        push = validated_action(self.action_space, action)
        if self._state is None:
            raise ResetNeededError("step() called before reset(): call reset() to start an episode")
        if self._terminated:
            raise ResetNeededError(
                "step() called after the episode terminated: call reset() to start a new one"
            )
        force = FORCE_MAGNITUDE if push == 1 else -FORCE_MAGNITUDE
        self._state = euler_step(self._state, force, math)
        self._terminated = has_fallen(self._state[0], self._state[2])
        reward = (-1.0 if self._terminated else 0.0) if self.sutton_barto_reward else 1.0
        return np.array(self._state, dtype=np.float32), reward, self._terminated, False, {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        low, high = reset_bounds(options)
        self._state = tuple(self.np_random.uniform(low=low, high=high, size=(4,)).tolist())
        self._terminated = False
        return np.array(self._state, dtype=np.float32), {}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn('render() needs render_mode="rgb_array" at construction; nothing was drawn')
            return None
        if self._state is None:
            raise ResetNeededError("render() called before reset(): call reset() first")
        return draw_cartpole(self._state[0], self._state[2])


class CartPoleVectorEnv(VectorEnv):
    """`num_envs` cart-poles stepped together as numpy arrays, identical to Gymnasium's CartPoleVectorEnv.

    Episodes restart with next-step autoreset: the step after an episode terminates or
    truncates returns that environment's new initial observation with reward 0 and both flags
    false, ignoring its action. Truncation after `max_episode_steps` is built in (the registry's
    500 for `gymserve/CartPole-v1`). Actions are an integer array of shape `(num_envs,)` of 0/1;
    anything else raises `ValueError`. Physics, rewards and starting states are those of
    `CartPoleEnv`.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array"],
        "render_fps": 50,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int = 500,
        render_mode: str | None = None,
        sutton_barto_reward: bool = False,
    ):
        check_count("num_envs", num_envs)
        check_count("max_episode_steps", max_episode_steps)
        check_flag("sutton_barto_reward", sutton_barto_reward)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not supported: expected None or 'rgb_array'")
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.sutton_barto_reward = sutton_barto_reward
        self.single_action_space = spaces.Discrete(2)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = observation_space()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self._low, self._high = -RESET_BOUND, RESET_BOUND
        self._state: np.ndarray | None = None  # (4, num_envs): one row per state variable
        self._steps = np.zeros(num_envs, dtype=np.int32)
        self._needs_autoreset = np.zeros(num_envs, dtype=bool)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        push = validated_action(self.action_space, actions)
        if self._state is None:
            raise ResetNeededError("step() called before reset(): call reset() to start the episodes")
        force = np.where(push == 1, FORCE_MAGNITUDE, -FORCE_MAGNITUDE)
        self._state = np.array(euler_step(self._state, force, np))
        terminated = has_fallen(self._state[0], self._state[2])
        self._steps += 1
        truncated = self._steps >= self.max_episode_steps
        if self.sutton_barto_reward:
            reward = -terminated.astype(np.float32)
        else:
            reward = np.ones(self.num_envs, dtype=np.float32)

        restarting = self._needs_autoreset
        if restarting.any():
            self._state[:, restarting] = self.np_random.uniform(
                low=self._low, high=self._high, size=(4, np.count_nonzero(restarting))
            )
            self._steps[restarting] = 0
            reward[restarting] = 0.0
            terminated[restarting] = False
            truncated[restarting] = False
        self._needs_autoreset = terminated | truncated
        return self._state.T.astype(np.float32), reward, terminated, truncated, {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._low, self._high = reset_bounds(options)
        self._state = self.np_random.uniform(low=self._low, high=self._high, size=(4, self.num_envs))
        self._steps = np.zeros(self.num_envs, dtype=np.int32)
        self._needs_autoreset = np.zeros(self.num_envs, dtype=bool)
        return self._state.T.astype(np.float32), {}

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            gym.logger.warn('render() needs render_mode="rgb_array" at construction; nothing was drawn')
            return None
        if self._state is None:
            raise ResetNeededError("render() called before reset(): call reset() first")
        return tuple(draw_cartpole(x, theta) for x, theta in zip(self._state[0], self._state[2], strict=True))

"""BrightSide: the smallest image task, where the right action is visible in the frame.

Description:
    Each frame is dim noise with one bright square, in the left or the right half. The agent
    says which half. Seconds of training with a convolutional network solve it; a policy that
    ignores the image is right half of the time. It checks that pixels reach the network the
    right way round (dtype, layout, scaling) on every path: training, export and serving.

Action Space:
    Discrete(2): 0 the square is in the left half, 1 in the right half.

Observation Space:
    Box(0, 255, (1, size, size), uint8): one grayscale frame, channels first like the Atari
    envs' stacks.

    | pixels           | value       |
    |------------------|-------------|
    | background       | 0 .. 63     |
    | the square       | 255         |

Rewards:
    1 for the right half, 0 otherwise.

Starting State:
    A square of `square` pixels at a uniformly random position within a uniformly random half.

Episode End:
    After `length` frames (a new square each step); never truncated.

Arguments:
    size: pixels per side (at least 36, the smallest input of the Nature DQN convolutions).
    square: pixels per side of the bright square.
    length: frames per episode.
    render_mode: None or "rgb_array" (the frame in gray).

Version History:
    v0: initial version.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from gymserve.envs.arguments import check_count

BACKGROUND_MAX = 63  # brightest background pixel
SQUARE_VALUE = 255
MIN_SIZE = 36  # 36 -> 8 -> 3 -> 1 through the Nature DQN convolutions


class BrightSideEnv(gym.Env[np.ndarray, np.int64]):
    """One frame per step; reward 1 when the action names the half holding the bright square."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}  # noqa: RUF012

    def __init__(
        self, size: int = MIN_SIZE, square: int = 6, length: int = 8, render_mode: str | None = None
    ):
        for name, value in (("size", size), ("square", square), ("length", length)):
            check_count(name, value)
        if size < MIN_SIZE or 2 * square > size:
            raise ValueError(
                f"size must be at least {MIN_SIZE} and at least 2 * square, got {size}, {square}"
            )
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size, self.square, self.length = size, square, length
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Box(0, 255, (1, size, size), np.uint8)
        self.action_space = gym.spaces.Discrete(2)
        self._side = 0
        self._steps = 0
        self._last_frame = np.zeros(self.observation_space.shape, np.uint8)

    def _frame(self) -> np.ndarray:
        frame = self.np_random.integers(0, BACKGROUND_MAX + 1, (1, self.size, self.size), dtype=np.uint8)
        self._side = int(self.np_random.integers(2))
        half = self.size // 2
        left = self.np_random.integers(0, half - self.square + 1) + self._side * half
        top = self.np_random.integers(0, self.size - self.square + 1)
        frame[0, top : top + self.square, left : left + self.square] = SQUARE_VALUE
        self._last_frame = frame
        return frame.copy()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (left) or 1 (right), got {action!r}")
        reward = float(int(action) == self._side)
        self._steps += 1
        return self._frame(), reward, self._steps >= self.length, False, {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._steps = 0
        return self._frame(), {}

    def render(self) -> np.ndarray | None:
        """The last frame as an RGB image (height, width, 3)."""
        if self.render_mode != "rgb_array":
            return None
        return np.repeat(self._last_frame[0][..., None], 3, axis=2)

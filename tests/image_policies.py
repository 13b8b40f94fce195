"""A small CNN policy over uint8 frames (gymserve/BrightSide-v0's by default), for the export, serving
and play tests."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np

from gymserve.agents.networks import q_network
from gymserve.envs.bright_side import BrightSideEnv
from gymserve.policies import ActorPolicy

FRAMES = gym.spaces.Box(0, 255, (1, 36, 36), np.uint8)  # gymserve/BrightSide-v0's frames
ACTIONS = gym.spaces.Discrete(4)


def image_policy(
    observation_space: gym.spaces.Box = FRAMES, action_space: gym.spaces.Discrete = ACTIONS
) -> ActorPolicy:
    """Nature DQN convolutions and 32 hidden units, seeded weights."""
    keras.utils.set_random_seed(5)
    network = q_network(observation_space, action_space, hidden_sizes=(32,), image_encoder="nature_cnn")
    return ActorPolicy(network, observation_space, action_space, seed=0)


def frames(count: int, seed: int) -> np.ndarray:
    """`count` BrightSide frames: dim noise and one bright square."""
    env = BrightSideEnv()
    env.reset(seed=seed)
    return np.stack([env.step(0)[0] for _ in range(count)])

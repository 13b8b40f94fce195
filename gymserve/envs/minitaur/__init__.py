"""The Minitaur quadruped walking environment (`gymserve/Minitaur-v0`); importing it imports pybullet."""

from gymserve.envs.minitaur.env import MinitaurEnv

__all__ = ["MinitaurEnv"]

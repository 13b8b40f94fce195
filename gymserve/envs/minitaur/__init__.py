"""The Minitaur quadruped walking environment (`gymserve/Minitaur-v0`); importing it imports pybullet."""

from gymserve.common.extras import extra_imports

# Every module of this package is imported here first, so a missing pybullet is one clear line.
with extra_imports("gymserve/Minitaur-v0"):
    from gymserve.envs.minitaur.env import MinitaurEnv

__all__ = ["MinitaurEnv"]

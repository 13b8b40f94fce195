"""The original pybullet_envs environments, loaded as references for parity tests and benchmarks.

pybullet_envs ships inside the pybullet wheel but no longer imports: it needs the retired `gym`
package, registers its environments with it on import and reads `pkg_resources` (setuptools).
This module loads the few reference files straight from the wheel with Gymnasium standing in for
`gym` and empty packages standing in for `pybullet_envs` and `pybullet_envs.bullet`, so that no
registration runs. The stand-ins are in `sys.modules` only while the files load; the loaded
modules keep their own references, so nothing outside them sees a `gym` module.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import random
import sys
import types
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import gymnasium
import numpy as np

GYM_ALIASES = {
    "gym": gymnasium,
    "gym.spaces": gymnasium.spaces,
    "gym.utils": gymnasium.utils,
    "gym.utils.seeding": gymnasium.utils.seeding,
}


def pybullet_envs_folder() -> Path:
    """Where the pybullet wheel put pybullet_envs (beside pybullet_data)."""
    return Path(importlib.util.find_spec("pybullet_data").origin).parent.parent / "pybullet_envs"


@contextlib.contextmanager
def _gymnasium_as_gym() -> Iterator[None]:
    folder = pybullet_envs_folder()
    packages = {}
    for name, path in (("pybullet_envs", folder), ("pybullet_envs.bullet", folder / "bullet")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        packages[name] = package
    stand_ins = {**GYM_ALIASES, **packages}
    saved = {name: sys.modules[name] for name in stand_ins if name in sys.modules}
    saved_path = list(sys.path)  # minitaur_gym_env puts site-packages first on sys.path
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        sys.path[:] = saved_path
        for name in list(sys.modules):
            if name in stand_ins or name.startswith("pybullet_envs."):
                del sys.modules[name]
        sys.modules.update(saved)


@cache
def load_bullet_module(name: str) -> types.ModuleType:
    """`pybullet_envs.bullet.<name>` (e.g. "minitaur_gym_env", "cartpole_bullet"), imported once."""
    with _gymnasium_as_gym():
        return importlib.import_module(f"pybullet_envs.bullet.{name}")


def make_minitaur(randomize: bool = False, **options: object):
    """A `MinitaurBulletEnv`, with its dynamics randomizer only when `randomize` is true.

    It prints its URDF folder when built; that line is swallowed.
    """
    module = load_bullet_module("minitaur_gym_env")
    if not randomize:
        options["env_randomizer"] = None
    with contextlib.redirect_stdout(io.StringIO()):
        return module.MinitaurBulletEnv(render=False, **options)


def minitaur_rollouts(
    actions: np.ndarray,
    episodes: int = 1,
    randomize: bool = False,
    seed: int | None = None,
    **options: object,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(observations starting with the reset one, rewards, dones) per episode, each until its first done.

    Actions are stepped as float64, as the reference's callers did. `seed` seeds the global
    `random` and `np.random` generators that the reference's randomizer draws from.
    """
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)
    env = make_minitaur(randomize, **options)
    results = []
    try:
        for _ in range(episodes):
            observations, rewards, dones = [env.reset()], [], []
            for action in actions:
                observation, reward, done, _ = env.step(np.asarray(action, dtype=np.float64))
                observations.append(observation)
                rewards.append(reward)
                dones.append(done)
                if done:
                    break
            results.append((np.array(observations), np.array(rewards), np.array(dones)))
    finally:
        env.close()
    return results

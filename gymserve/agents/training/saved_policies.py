"""A policy saved on disk, from either kind of directory: a training run or a policy export.

    saved = load_saved_policy("runs/cartpole-ppo")        # a run's 'best' checkpoint
    saved = load_saved_policy("exports/cartpole")         # an export, on onnxruntime
    evaluation = gymserve.policies.episodes.evaluate(saved.policy, saved.env_id, 20)

Both record the environment the policy was trained on, and that is where it runs unless another
`env_id` is given. Another environment with matching spaces may still order or scale its
observations differently (CartPole and CartPoleBullet do), so it is refused unless
`allow_env_mismatch` says the caller means it; mismatching spaces are always refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gymserve.agents.training.runs import RUN_FILE, environment_spaces, load_trained_policy
from gymserve.policies import Policy, PolicyLoadError, load
from gymserve.policies.space_match import check_space_match


class SavedPolicyError(ValueError):
    """A directory that holds no loadable policy, or a policy that cannot run in the requested env."""


class EnvMismatchError(SavedPolicyError):
    """A policy asked to run in another environment than the one it was trained on."""


@dataclass(frozen=True)
class SavedPolicy:
    """A loaded policy, the environment to run it in, and where it came from in a few words."""

    policy: Policy
    env_id: str
    description: str  # e.g. "ppo, best checkpoint at step 20480" or "ppo export, onnx"


def is_run_dir(path: str | Path) -> bool:
    """Whether `path` is a training run directory (rather than, say, an export)."""
    return (Path(path) / RUN_FILE).exists()


def load_saved_policy(
    path: str | Path,
    checkpoint: str = "best",
    env_id: str | None = None,
    allow_env_mismatch: bool = False,
    seed: int | None = None,
) -> SavedPolicy:
    """The policy of the run directory (its `checkpoint`) or export at `path`, checked against `env_id`.

    `env_id` defaults to the environment the policy was trained on.
    """
    try:
        if is_run_dir(path):
            trained = load_trained_policy(path, checkpoint)
            policy, trained_env = trained.policy, trained.env_id
            description = f"{trained.algorithm}, {checkpoint} checkpoint at step {trained.train_step}"
        else:
            policy = load(path, seed=seed)
            trained_env = policy.metadata.env_id
            description = f"{policy.metadata.algorithm or 'policy'} export, {policy.backend}"
    except (FileNotFoundError, ValueError, PolicyLoadError) as error:
        raise SavedPolicyError(f"cannot load a policy from {path}: {error}") from None
    env_id = env_id or trained_env
    if env_id is None:
        raise SavedPolicyError(f"{path} does not say which environment it was trained on; give an env id")
    if trained_env is not None and env_id != trained_env and not allow_env_mismatch:
        raise EnvMismatchError(
            f"{path} was trained on {trained_env}, not {env_id}; an environment with the same spaces may "
            f"still mean other things by them. Run it there anyway with allow_env_mismatch=True "
            f"(--allow-env-mismatch)"
        )
    observation_space, action_space = environment_spaces(env_id)
    check_space_match(policy, observation_space, action_space, f"the policy in {path}", env_id)
    return SavedPolicy(policy, env_id, description)

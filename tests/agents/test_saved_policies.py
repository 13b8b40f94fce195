"""Loading a saved policy from a run directory or an export, checked against the env it runs in."""

import pytest

from gymserve.agents.training.saved_policies import EnvMismatchError, SavedPolicyError, load_saved_policy
from gymserve.policies import LoadedPolicy
from gymserve.policies.space_match import SpaceMismatchError
from gymserve.pretrained import pretrained_policy_for_env

CARTPOLE = "gymserve/CartPole-v1"
CARTPOLE_BULLET = "gymserve/CartPoleBullet-v1"


def test_an_export_runs_in_the_env_it_was_trained_on():
    path = pretrained_policy_for_env(CARTPOLE).path
    saved = load_saved_policy(path)
    assert isinstance(saved.policy, LoadedPolicy)
    assert (saved.env_id, saved.description) == (CARTPOLE, "ppo export, onnx")


def test_another_env_with_the_same_spaces_is_refused_unless_allowed():
    path = pretrained_policy_for_env(CARTPOLE).path
    with pytest.raises(EnvMismatchError) as raised:
        load_saved_policy(path, env_id=CARTPOLE_BULLET)
    assert str(raised.value).startswith(f"{path} was trained on {CARTPOLE}, not {CARTPOLE_BULLET}; ")
    assert load_saved_policy(path, env_id=CARTPOLE_BULLET, allow_env_mismatch=True).env_id == CARTPOLE_BULLET


def test_an_env_with_other_spaces_is_always_refused():
    path = pretrained_policy_for_env(CARTPOLE).path
    with pytest.raises(SpaceMismatchError) as raised:
        load_saved_policy(path, env_id="gymserve/CartPoleContinuousBullet-v0", allow_env_mismatch=True)
    assert str(raised.value) == (
        f"the policy in {path} takes actions Discrete(2, start=0); "
        "gymserve/CartPoleContinuousBullet-v0's are Box of shape (1,)"
    )


def test_a_directory_without_a_policy_is_named(tmp_path):
    with pytest.raises(
        SavedPolicyError, match=f"cannot load a policy from {tmp_path}: .*not a policy export"
    ):
        load_saved_policy(tmp_path)

"""What an export writes to disk, how it replaces an old one, and how loading rejects bad files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, MINITAUR_ACTIONS

import gymserve
from gymserve.policies import PolicyLoadError, PolicyMetadata, export_policy, load
from gymserve.policies import export as export_module


def copy_export(export: Path, tmp_path: Path) -> Path:
    copy = tmp_path / export.name
    shutil.copytree(export, copy)
    return copy


def edit_metadata(export: Path, **changes: object) -> None:
    path = export / "policy.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_policy_json_records_the_sha256_of_every_file(discrete_export):
    recorded = json.loads((discrete_export / "policy.json").read_text())["files"]
    on_disk = sorted(
        path.relative_to(discrete_export).as_posix() for path in discrete_export.rglob("*") if path.is_file()
    )
    assert sorted(recorded) == [name for name in on_disk if name != "policy.json"]
    assert "policy.onnx" in recorded and "saved_model/saved_model.pb" in recorded
    for name, digest in recorded.items():
        assert hashlib.sha256((discrete_export / name).read_bytes()).hexdigest() == digest


def test_policy_json_describes_the_policy(discrete_export, continuous_export):
    metadata = PolicyMetadata.model_validate_json((discrete_export / "policy.json").read_text())
    assert (metadata.env_id, metadata.algorithm, metadata.train_step) == ("gymserve/CartPole-v1", "dqn", 1200)
    assert metadata.evaluation_return == 500.0
    assert metadata.formats == ("savedmodel", "onnx")
    assert metadata.gymserve_version == gymserve.__version__
    assert metadata.observation_gym_space() == CARTPOLE_OBSERVATIONS
    assert metadata.action_gym_space() == gym.spaces.Discrete(2)
    raw = json.loads((discrete_export / "policy.json").read_text())
    assert raw["observation_space"]["high"][1] == "Infinity"  # plain JSON, no bare Infinity token
    assert raw["action_space"] == {"kind": "discrete", "n": 2, "start": 0}
    continuous = load(continuous_export).metadata
    assert continuous.action_gym_space() == MINITAUR_ACTIONS
    assert continuous.train_step is None


def test_export_refuses_an_existing_directory_unless_asked(discrete_policy, tmp_path):
    out_dir = tmp_path / "policy"
    first = export_policy(discrete_policy, out_dir, formats=("onnx",))
    with pytest.raises(
        FileExistsError, match=r"already exists; replace a previous export with overwrite=True"
    ):
        export_policy(discrete_policy, out_dir, formats=("onnx",))
    second = export_policy(
        discrete_policy, out_dir, formats=("onnx",), metadata={"train_step": 5}, overwrite=True
    )
    assert load(out_dir).metadata.train_step == 5 and second.created > first.created
    assert sorted(path.name for path in tmp_path.iterdir()) == ["policy"]  # no staging or old copies left


def test_overwrite_never_replaces_a_directory_that_is_not_an_export(discrete_policy, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a policy export"):
        export_policy(discrete_policy, tmp_path, overwrite=True)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_a_failed_export_leaves_nothing_behind(discrete_policy, tmp_path, monkeypatch):
    def fail(*args: object) -> None:
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(export_module, "_write_models", fail)
    with pytest.raises(RuntimeError, match="conversion failed"):
        export_policy(discrete_policy, tmp_path / "policy")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"formats": ("tflite",)}, ValueError, "expected one or more distinct of savedmodel, onnx"),
        ({"formats": ()}, ValueError, "expected one or more distinct"),
        ({"metadata": {"train_steps": 3}}, ValueError, "train_steps"),
    ],
)
def test_bad_export_arguments_are_refused(discrete_policy, tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        export_policy(discrete_policy, tmp_path / "policy", **arguments)
    assert not (tmp_path / "policy").exists()


def test_only_actor_policies_export(tmp_path):
    random_policy = gymserve.policies.RandomPolicy(CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(2))
    with pytest.raises(TypeError, match="only an ActorPolicy"):
        export_policy(random_policy, tmp_path / "p")


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_bare_model_paths_load_with_the_metadata_beside_them(discrete_export, backend):
    model = discrete_export / ("policy.onnx" if backend == "onnx" else "saved_model")
    policy = load(model)
    assert policy.backend == backend and policy.metadata.env_id == "gymserve/CartPole-v1"
    other = "tensorflow" if backend == "onnx" else "onnx"
    with pytest.raises(ValueError, match=f"model for the '{backend}' backend, but backend='{other}'"):
        load(model, other)


def test_missing_model_file_is_named(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    (export / "policy.onnx").unlink()
    with pytest.raises(PolicyLoadError, match=r"policy\.onnx: file is missing from the export"):
        load(export, "onnx")


def test_corrupted_model_fails_its_hash(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    data = bytearray((export / "policy.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (export / "policy.onnx").write_bytes(bytes(data))
    with pytest.raises(PolicyLoadError, match=r"policy\.onnx: file is corrupted or truncated") as caught:
        load(export)
    assert caught.value.path == export / "policy.onnx"


def test_truncated_saved_model_variables_fail_their_hash(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    (variables,) = (export / "saved_model" / "variables").glob("variables.data-*")
    variables.write_bytes(variables.read_bytes()[:100])
    with pytest.raises(PolicyLoadError, match=r"variables\.data-.*: file is corrupted or truncated"):
        load(export, "tensorflow")


def test_unreadable_model_with_a_matching_hash_is_reported(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    (export / "policy.onnx").write_bytes(b"not an onnx model")
    edit_metadata(export, files={"policy.onnx": hashlib.sha256(b"not an onnx model").hexdigest()})
    with pytest.raises(PolicyLoadError, match=r"policy\.onnx: onnxruntime cannot load the model"):
        load(export)


@pytest.mark.parametrize("text", ["", '{"env_id": "gymserve/CartPole-v1", "formats": ["onnx"'])
def test_truncated_metadata_is_reported(discrete_export, tmp_path, text):
    export = copy_export(discrete_export, tmp_path)
    (export / "policy.json").write_text(text)
    with pytest.raises(PolicyLoadError, match=r"policy\.json: metadata is truncated or invalid"):
        load(export)


def test_missing_metadata_and_missing_paths_are_reported(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    (export / "policy.json").unlink()
    with pytest.raises(PolicyLoadError, match=r"policy\.json: metadata file is missing"):
        load(export / "policy.onnx")
    with pytest.raises(PolicyLoadError, match="not a policy export"):
        load(export)
    with pytest.raises(PolicyLoadError, match="no such file or directory"):
        load(tmp_path / "absent")


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {
                "observation_space": {
                    "kind": "box",
                    "shape": [5],
                    "dtype": "float32",
                    "low": [0] * 5,
                    "high": [1] * 5,
                }
            },
            r"model takes observations of shape \(4,\); policy.json says \(5,\)",
        ),
        (
            {"action_space": {"kind": "discrete", "n": 3, "start": 0}},
            r"output 'logits' has shape \(2,\) per observation; policy.json says \(3,\)",
        ),
        (
            {"action_space": {"kind": "box", "shape": [1], "dtype": "float32", "low": [-1], "high": [1]}},
            r"output 'action' has shape \(\) per observation; policy.json says \(1,\)",
        ),
    ],
)
def test_spaces_that_disagree_with_the_model_are_reported(
    discrete_export, tmp_path, backend, changes, message
):
    export = copy_export(discrete_export, tmp_path)
    edit_metadata(export, **changes)
    with pytest.raises(PolicyLoadError, match=message):
        load(export, backend)


def test_backend_without_its_format_is_reported(discrete_policy, tmp_path):
    export_policy(discrete_policy, tmp_path / "onnx_only", formats=("onnx",))
    with pytest.raises(PolicyLoadError, match=r"the export has no tensorflow model \(formats: onnx\)"):
        load(tmp_path / "onnx_only", "tensorflow")
    with pytest.raises(ValueError, match="unknown backend 'torch'"):
        load(tmp_path / "onnx_only", "torch")


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_loaded_policy_rejects_bad_observations(discrete_export, backend):
    policy = load(discrete_export, backend)
    with pytest.raises(ValueError, match=r"observation has shape \(3,\); expected \(4,\)"):
        policy.action(np.zeros(3))
    with pytest.raises(ValueError, match="NaN or infinite"):
        policy.action(np.array([[0.0, 0.0, np.nan, 0.0]]))

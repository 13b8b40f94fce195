"""What an export writes to disk, how it replaces an old one, and how loading rejects bad files."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from policy_support import CARTPOLE_OBSERVATIONS, MINITAUR_ACTIONS, mlp, observations_for

import gymserve
import gymserve.policies.export.onnx_export
from gymserve.common.files import staged_folder
from gymserve.policies import ActorPolicy, ExportError, PolicyLoadError, PolicyMetadata, export_policy, load
from gymserve.policies import metadata as metadata_module
from gymserve.policies.export import policy_export as export_module
from gymserve.policies.metadata import PolicyEvaluation
from gymserve.policies.repository import PolicyDirectory, repository_directories, scan_policy_directory
from gymserve.pretrained import pretrained_policy_for_env


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
    assert metadata.evaluation == PolicyEvaluation(
        average_return=500.0, episodes=20, seed=1_000_000, during_training=True
    )
    assert "evaluation_return" not in json.loads((discrete_export / "policy.json").read_text())
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


def test_policy_json_of_the_older_format_with_evaluation_return_still_loads(discrete_export, tmp_path):
    export = tmp_path / "old"
    shutil.copytree(discrete_export, export)
    current = json.loads((export / "policy.json").read_text())
    del current["evaluation"]
    separate = {"episodes": 20, "mode": "greedy", "seed": 0, "average_return": 13.2, "return_std": 3.5,
                "average_episode_length": 928.8}  # fmt: skip
    for old, expected in (
        ({"evaluation_return": 480.0}, PolicyEvaluation(average_return=480.0, during_training=True)),
        ({"evaluation_return": 15.1, "evaluation": separate}, PolicyEvaluation(**separate)),
        ({"evaluation_return": None}, None),
    ):
        (export / "policy.json").write_text(json.dumps({**current, **old}))
        for backend in ("onnx", "tensorflow"):
            assert load(export, backend).metadata.evaluation == expected


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
        (
            {"formats": ("torchscript",)},
            ValueError,
            "expected one or more distinct of savedmodel, onnx, tflite",
        ),
        ({"formats": ()}, ValueError, "expected one or more distinct"),
        ({"metadata": {"train_steps": 3}}, ValueError, "train_steps"),
    ],
)
def test_bad_export_arguments_are_refused(discrete_policy, tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        export_policy(discrete_policy, tmp_path / "policy", **arguments)
    assert not (tmp_path / "policy").exists()


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


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_equal_bounds_load_alike_as_one_number_or_a_list(tmp_path, backend):
    """The pretrained Minitaur export's models embed its action bounds as a list of eight -1s and
    eight 1s (written before bounds shared by every element became one number); a policy.json
    that gives them as numbers matches the models all the same."""
    export = copy_export(pretrained_policy_for_env("gymserve/Minitaur-v0").path, tmp_path)
    action_space = json.loads((export / "policy.json").read_text())["action_space"]
    assert (action_space["low"], action_space["high"]) == ([-1.0] * 8, [1.0] * 8)
    edit_metadata(export, action_space=action_space | {"low": -1.0, "high": 1.0})
    assert load(export, backend).action_space == gym.spaces.Box(-1.0, 1.0, (8,), np.float32)


def test_a_bound_list_that_does_not_fit_the_shape_is_reported(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    observation_space = json.loads((export / "policy.json").read_text())["observation_space"]
    edit_metadata(export, observation_space=observation_space | {"high": [1.0, 2.0]})
    with pytest.raises(PolicyLoadError, match=r"high has 2 values for shape \(4,\) \(4 elements\)"):
        load(export)


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


KILLED_EXPORT = """
import os, signal, sys
import gymnasium as gym
import keras
import gymserve.policies.export.onnx_export
from gymserve.policies import ActorPolicy, export_policy

# Killed outright once the SavedModel is written: no cleanup code of the exporter runs.
gymserve.policies.export.onnx_export.write_onnx = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
network = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
export_policy(ActorPolicy(network, gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2)), sys.argv[1])
"""


def test_an_export_killed_midway_leaves_staging_that_the_next_export_removes(discrete_policy, tmp_path):
    versions = tmp_path / "repository" / "cartpole"
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_EXPORT, str(versions / "1")],
        env=environment,
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    [leftover] = list(versions.iterdir())
    assert leftover.name.startswith(".1.") and leftover.name.endswith(".tmp")
    assert (leftover / "saved_model" / "saved_model.pb").is_file()
    assert scan_policy_directory("cartpole", versions) == PolicyDirectory(), "no version, so none that fails"
    assert repository_directories(tmp_path / "repository") == {"cartpole": versions}

    export_policy(discrete_policy, versions / "2", formats=("onnx",))
    assert sorted(path.name for path in versions.iterdir()) == ["2", "config.pbtxt"]  # Triton's beside it
    assert [version.version for version in scan_policy_directory("cartpole", versions).versions] == [2]


def test_staging_of_an_export_still_being_written_is_kept(discrete_policy, tmp_path):
    old = time.time() - 3600
    abandoned = tmp_path / ".1.0123abcd.tmp"
    (abandoned / "saved_model").mkdir(parents=True)
    os.utime(abandoned, (old, old))
    with staged_folder(tmp_path / "3") as in_progress:  # another writer, still at work
        os.utime(in_progress, (old, old))  # and slow: older than the export below
        export_policy(discrete_policy, tmp_path / "2", formats=("onnx",))
        written = sorted(path.name for path in tmp_path.iterdir() if path.name != "config.pbtxt")
        assert written == sorted(["2", in_progress.name])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2", "3", "config.pbtxt"]


def test_a_full_disk_fails_the_export_with_one_line_naming_the_path_and_the_cause(
    discrete_policy, tmp_path, monkeypatch
):
    def disk_full(network, observation_space, action_space, metadata_json, path, distribution):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(gymserve.policies.export.onnx_export, "write_onnx", disk_full)
    out_dir = tmp_path / "repository" / "cartpole" / "1"
    with pytest.raises(ExportError) as raised:
        export_policy(discrete_policy, out_dir)
    message = str(raised.value)
    assert re.fullmatch(
        rf"cannot export to {re.escape(str(out_dir))}: No space left on device "
        rf"\({re.escape(str(out_dir.parent))}/\.1\.[0-9a-f]{{8}}\.tmp/policy\.onnx\)",
        message,
    ), message
    assert isinstance(raised.value.__cause__, OSError) and raised.value.path == out_dir
    assert list(tmp_path.iterdir()) == [], "neither the staging folder nor the folders made for it remain"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_folder_fails_the_export_with_one_line(discrete_policy, tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(ExportError) as raised:
            export_policy(discrete_policy, folder / "policy")
    finally:
        folder.chmod(0o700)
    assert re.fullmatch(
        rf"cannot export to {re.escape(str(folder / 'policy'))}: Permission denied "
        rf"\({re.escape(str(folder))}/\.policy\.[0-9a-f]{{8}}\.tmp\)",
        str(raised.value),
    ), str(raised.value)
    assert list(folder.iterdir()) == []


def add_recorded_file(export: Path, name: str, content: Path) -> None:
    """Record `name` in policy.json with the true hash of `content`, as a crafted export would."""
    path = export / "policy.json"
    metadata = json.loads(path.read_text())
    metadata["files"][name] = hashlib.sha256(content.read_bytes()).hexdigest()
    path.write_text(json.dumps(metadata))


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
@pytest.mark.parametrize(
    "name",
    [
        "saved_model/../../secret.txt",
        "policy.onnx/../../secret.txt",
        "saved_model//x",
        "./policy.onnx",
        "ABSOLUTE",
    ],
)
def test_files_keys_that_leave_the_export_are_refused_on_every_backend(
    discrete_export, tmp_path, backend, name, monkeypatch
):
    export = copy_export(discrete_export, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the export")
    name = str(secret) if name == "ABSOLUTE" else name
    add_recorded_file(export, name, secret)
    monkeypatch.setattr(metadata_module, "sha256_file", unread)
    with pytest.raises(
        PolicyLoadError, match=rf"files key {re.escape(repr(name))} is not a relative path inside"
    ):
        load(export, backend)


def unread(path: Path) -> str:
    raise AssertionError(f"{path} was read before the files keys were checked")


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_files_keys_that_resolve_outside_the_export_through_a_symlink_are_refused(
    discrete_export, tmp_path, backend, monkeypatch
):
    export = copy_export(discrete_export, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the export")
    (export / "saved_model" / "assets").mkdir(exist_ok=True)
    (export / "saved_model" / "assets" / "link").symlink_to(secret)
    add_recorded_file(export, "saved_model/assets/link", secret)
    monkeypatch.setattr(metadata_module, "sha256_file", unread)
    with pytest.raises(
        PolicyLoadError, match=r"files key 'saved_model/assets/link' resolves to .*secret\.txt, outside"
    ):
        load(export, backend)


@pytest.mark.parametrize(("backend", "model"), [("onnx", "policy.onnx"), ("tensorflow", "saved_model")])
def test_a_model_that_links_outside_the_export_is_refused(discrete_export, tmp_path, backend, model):
    export = copy_export(discrete_export, tmp_path)
    outside = tmp_path / "outside"
    (export / model).rename(outside)
    (export / model).symlink_to(outside)
    message = rf"files key '{model}[^']*' resolves to {re.escape(str(outside))}[^,]*, outside the export"
    with pytest.raises(PolicyLoadError, match=message):
        load(export, backend)


def test_an_unrecorded_link_in_the_saved_model_that_leaves_the_export_is_refused(discrete_export, tmp_path):
    export = copy_export(discrete_export, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the export")
    (export / "saved_model" / "assets").mkdir(exist_ok=True)
    (export / "saved_model" / "assets" / "link").symlink_to(secret)
    message = rf"saved_model/assets/link: resolves to {re.escape(str(secret))}, outside the export"
    with pytest.raises(PolicyLoadError, match=message):
        load(export, "tensorflow")


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
@pytest.mark.parametrize(
    ("action_space", "declared"),
    [
        ({"kind": "discrete", "n": 2, "start": 5}, r"Discrete\(2, start=5\)"),
        ({"kind": "discrete", "n": 2, "start": -1}, r"Discrete\(2, start=-1\)"),
    ],
)
def test_a_policy_json_whose_action_space_the_model_was_not_exported_for_is_refused(
    discrete_export, tmp_path, backend, action_space, declared
):
    export = copy_export(discrete_export, tmp_path)
    edit_metadata(export, action_space=action_space)
    message = (
        rf"the model was exported for the action space Discrete\(2\), but policy.json declares {declared}"
    )
    with pytest.raises(PolicyLoadError, match=message):
        load(export, backend)


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_a_policy_json_with_other_box_bounds_than_the_model_is_refused(continuous_export, tmp_path, backend):
    export = copy_export(continuous_export, tmp_path)
    action_space = json.loads((export / "policy.json").read_text())["action_space"]
    edit_metadata(
        export, action_space={**action_space, "high": [bound * 2 for bound in action_space["high"]]}
    )
    with pytest.raises(PolicyLoadError, match="the model was exported for the action space Box"):
        load(export, backend)


def test_discrete_actions_from_a_start_are_honoured_in_every_mode_on_every_backend(tmp_path):
    space = gym.spaces.Discrete(2, start=5)
    policy = ActorPolicy(mlp(4, 2, seed=8, hidden=16), CARTPOLE_OBSERVATIONS, space, seed=0)
    export_policy(policy, tmp_path / "shifted")
    observations = observations_for(CARTPOLE_OBSERVATIONS, 500, seed=3)
    loaded = [load(tmp_path / "shifted", backend) for backend in ("onnx", "tensorflow")]
    assert all(one.action_space == space for one in loaded)
    for acting in [policy, *loaded]:
        for mode, epsilon in (("greedy", None), ("stochastic", None), ("epsilon_greedy", 1.0)):
            actions = acting.action(observations, mode=mode, epsilon=epsilon, seed=4).action
            assert set(actions.tolist()) == {5, 6}, (acting, mode)
    for acting in loaded:
        greedy = policy.action(observations).action
        np.testing.assert_array_equal(acting.action(observations).action, greedy)
        stochastic = policy.action(observations, mode="stochastic", seed=4).action
        np.testing.assert_array_equal(
            acting.action(observations, mode="stochastic", seed=4).action, stochastic
        )
    model = tf.saved_model.load(str(tmp_path / "shifted" / "saved_model"))
    batch = tf.constant(observations)
    sampled = model.signatures["stochastic_action"](observations=batch, seed=tf.constant(1, tf.int64))
    assert set(sampled["action"].numpy().tolist()) == {5, 6}
    assert set(model.signatures["greedy_action"](observations=batch)["action"].numpy().tolist()) == {5, 6}

"""LiteRT (.tflite) exports: conversion from a SavedModel, parity with ONNX, files, loading errors."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from policy_support import CARTPOLE_OBSERVATIONS, observations_for

from gymserve.policies import ActorPolicy, PolicyLoadError, convert_export, export_policy, load
from gymserve.pretrained import pretrained_policy_for_env

QUANTIZED = ("dynamic-int8", "float16")
PRETRAINED = {"cartpole": "gymserve/CartPole-v1", "minitaur": "gymserve/Minitaur-v0"}


@pytest.fixture(scope="module", params=sorted(PRETRAINED))
def pretrained_lite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundled policy converted to ONNX (copied) and LiteRT, with both quantized variants."""
    source = pretrained_policy_for_env(PRETRAINED[request.param]).path
    out_dir = tmp_path_factory.mktemp("lite") / request.param
    convert_export(source, out_dir, ("onnx", "tflite"), QUANTIZED)
    return out_dir


def test_float32_tflite_matches_onnx_on_the_pretrained_policies(pretrained_lite):
    onnx, lite = load(pretrained_lite, "onnx"), load(pretrained_lite, "tflite")
    assert lite.backend == "tflite"
    observations = observations_for(onnx.observation_space, 1000, seed=5) * 0.25
    expected, actual = onnx.action(observations).action, lite.action(observations).action
    if isinstance(onnx.action_space, gym.spaces.Discrete):
        assert set(expected.tolist()) == {0, 1}, "both actions occur, so the comparison can tell them apart"
        np.testing.assert_array_equal(actual, expected)
    else:
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)
    one = lite.action(observations[0]).action  # a single observation after a batch resizes the inputs
    np.testing.assert_allclose(one, expected[0], rtol=0, atol=1e-5)


def test_stochastic_tflite_actions_match_onnx_for_the_same_seed(pretrained_lite):
    onnx, lite = load(pretrained_lite, "onnx"), load(pretrained_lite, "tflite")
    observations = observations_for(onnx.observation_space, 200, seed=6) * 0.25
    expected = onnx.action(observations, mode="stochastic", seed=11).action
    actual = lite.action(observations, mode="stochastic", seed=11).action
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


def test_quantized_variants_load_from_their_files(pretrained_lite):
    metadata = json.loads((pretrained_lite / "policy.json").read_text())
    assert metadata["formats"] == ["onnx", "tflite"]
    names = ["policy-dynamic-int8.tflite", "policy-float16.tflite", "policy.onnx", "policy.tflite"]
    assert sorted(metadata["files"]) == names
    for name in names:
        assert hashlib.sha256((pretrained_lite / name).read_bytes()).hexdigest() == metadata["files"][name]
    for name in names[:2]:
        policy = load(pretrained_lite / name)
        assert policy.backend == "tflite"
        observations = np.zeros((3, *policy.observation_space.shape), np.float32)
        assert policy.action_space.contains(policy.action(observations[0]).action)
        assert policy.action(observations).action.shape == (3, *policy.action_space.shape)


def test_export_policy_writes_tflite_without_keeping_the_saved_model(discrete_policy, tmp_path):
    metadata = export_policy(discrete_policy, tmp_path / "lite", formats=("tflite",))
    assert metadata.formats == ("tflite",)
    assert sorted(path.name for path in (tmp_path / "lite").iterdir()) == ["policy.json", "policy.tflite"]
    observations = observations_for(CARTPOLE_OBSERVATIONS, 500, seed=2)
    np.testing.assert_array_equal(
        load(tmp_path / "lite").action(observations).action, discrete_policy.action(observations).action
    )


def test_recurrent_tflite_carries_its_state_like_onnx(tmp_path):
    from gymserve.agents.networks import recurrent_actor_critic

    observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
    networks = recurrent_actor_critic(observation_space, action_space, lstm_units=8, hidden_sizes=(16,))
    policy = ActorPolicy(networks.actor, observation_space, action_space)
    export_policy(policy, tmp_path / "lstm", formats=("onnx", "tflite"))
    onnx, lite = load(tmp_path / "lstm", "onnx"), load(tmp_path / "lstm", "tflite")
    onnx_state, lite_state = onnx.get_initial_state(4), lite.get_initial_state(4)
    for step in range(5):
        observations = observations_for(observation_space, 4, seed=step)
        expected, actual = onnx.action(observations, onnx_state), lite.action(observations, lite_state)
        np.testing.assert_allclose(actual.action, expected.action, rtol=0, atol=1e-5)
        onnx_state, lite_state = expected.state, actual.state
    for onnx_part, lite_part in zip(onnx_state, lite_state, strict=True):
        np.testing.assert_allclose(lite_part, onnx_part, rtol=0, atol=1e-5)
        assert np.abs(lite_part).max() > 0, "the state moved away from zero"


@pytest.mark.parametrize(
    ("formats", "quantizations", "message"),
    [
        (("onnx",), ("float16",), "LiteRT quantizations need the tflite format"),
        (("tflite",), ("int4",), "expected distinct of dynamic-int8, float16"),
        (("tflite",), ("float16", "float16"), "expected distinct of dynamic-int8, float16"),
    ],
)
def test_bad_quantizations_are_refused(discrete_policy, tmp_path, formats, quantizations, message):
    with pytest.raises(ValueError, match=message):
        export_policy(discrete_policy, tmp_path / "lite", formats, tflite_quantizations=quantizations)
    assert not (tmp_path / "lite").exists()


@pytest.fixture(scope="module")
def cartpole_tflite_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("lite") / "cartpole"
    convert_export(pretrained_policy_for_env("gymserve/CartPole-v1").path, out_dir, ("tflite",))
    return out_dir


def test_converting_needs_the_models_it_starts_from(cartpole_tflite_only, tmp_path):
    with pytest.raises(
        ValueError, match=r"has no onnx or savedmodel model to start from \(formats: tflite\)"
    ):
        convert_export(cartpole_tflite_only, tmp_path / "again", ("savedmodel", "onnx"))
    assert not (tmp_path / "again").exists()


def test_an_unrecorded_or_corrupted_tflite_file_is_refused(cartpole_tflite_only, tmp_path):
    lite = tmp_path / "lite"
    shutil.copytree(cartpole_tflite_only, lite)
    shutil.copyfile(lite / "policy.tflite", lite / "policy-float16.tflite")
    with pytest.raises(PolicyLoadError, match="the export records no such LiteRT model"):
        load(lite / "policy-float16.tflite")
    with (lite / "policy.tflite").open("r+b") as file:
        file.truncate(1000)
    with pytest.raises(PolicyLoadError, match=r"its sha256 differs from policy\.json"):
        load(lite, "tflite")


def test_loading_tflite_without_ai_edge_litert_names_the_extra(cartpole_tflite_only):
    script = (
        "import sys; sys.modules['ai_edge_litert'] = None\n"
        "import gymserve.policies\n"
        "try:\n"
        "    gymserve.policies.load(sys.argv[1])\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(cartpole_tflite_only)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == (
        "MissingExtraError loading a policy with backend='tflite' needs ai_edge_litert, which is not "
        'installed: pip install "gymserve[litert]"'
    )


def test_running_a_tflite_policy_never_imports_tensorflow(cartpole_tflite_only):
    script = (
        "import sys, numpy as np, gymserve.policies\n"
        "policy = gymserve.policies.load(sys.argv[1])\n"
        "policy.action(np.zeros(4, np.float32), mode='stochastic', seed=1)\n"
        "print(policy.backend, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(cartpole_tflite_only)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "tflite False"


def test_export_command_converts_a_previous_export(tmp_path, capsys):
    from gymserve.cli import main

    source = pretrained_policy_for_env("gymserve/CartPole-v1").path
    out = tmp_path / "lite"
    arguments = ["export", str(source), "--out", str(out), "--format", "tflite"]
    assert main([*arguments, "--tflite-quantize", "float16"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"converted {source} to {out}\n")
    assert "  policy-float16.tflite  sha256 " in printed and "  policy.tflite  sha256 " in printed
    assert load(out).metadata.train_step == load(source).metadata.train_step
    assert main([*arguments, "--overwrite", "--tflite-quantize", "int4"]) == 2
    assert "expected distinct of dynamic-int8, float16" in capsys.readouterr().err


def test_export_format_all_writes_every_model(tmp_path, capsys):
    from gymserve.cli import main

    source = pretrained_policy_for_env("gymserve/CartPole-v1").path
    out = tmp_path / "all"
    assert main(["export", str(source), "--out", str(out), "--format", "all"]) == 0
    assert load(out).metadata.formats == ("savedmodel", "onnx", "tflite")
    for backend in ("onnx", "tensorflow", "tflite"):
        assert load(out, backend=backend).action(np.zeros((1, 4), np.float32)).action.shape == (1,)

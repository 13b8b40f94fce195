"""A CNN policy over uint8 frames exports to SavedModel, ONNX and LiteRT models that take the raw
frames and act exactly like the in-process policy, greedy and stochastic."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import onnx
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from image_policies import frames, image_policy

from gymserve.policies import ActorPolicy, export_policy, load
from gymserve.policies.metadata import read_metadata
from gymserve.policies.signatures import TFLITE_POLICY_SIGNATURE


@pytest.fixture(scope="module")
def policy() -> ActorPolicy:
    return image_policy()


@pytest.fixture(scope="module")
def export(policy: ActorPolicy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("exports") / "bright_side"
    export_policy(
        policy,
        out_dir,
        metadata={"env_id": "gymserve/BrightSide-v0", "algorithm": "dqn"},
        formats=("savedmodel", "onnx", "tflite"),
    )
    return out_dir


def test_the_models_take_uint8_frames(export):
    (observations,) = onnx.load(export / "policy.onnx").graph.input
    assert observations.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    model = tf.saved_model.load(str(export / "saved_model"))
    (spec,) = model.signatures["greedy_action"].structured_input_signature[1].values()
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 1, 36, 36]
    interpreter = Interpreter(model_path=str(export / "policy.tflite"))
    (lite,) = interpreter.get_signature_runner(TFLITE_POLICY_SIGNATURE).get_input_details().values()
    assert lite["dtype"] == np.uint8


def test_policy_json_gives_the_frame_bounds_once(policy, export):
    """Listing 0 and 255 for every pixel would make an 84x84x4 policy's policy.json 660 KB."""
    recorded = json.loads((export / "policy.json").read_text())["observation_space"]
    assert (recorded["low"], recorded["high"]) == (0.0, 255.0)
    assert read_metadata(export).observation_gym_space() == policy.observation_space
    assert policy.observation_space == gym.spaces.Box(0, 255, (1, 36, 36), np.uint8)


@pytest.mark.parametrize("backend", ["onnx", "tensorflow", "tflite"])
def test_greedy_actions_agree_exactly(policy, export, backend):
    batch = frames(400, seed=1)
    expected = policy.action(batch).action
    assert len(np.unique(expected)) >= 2  # the actions vary, so agreement is not trivial
    np.testing.assert_array_equal(load(export, backend).action(batch).action, expected)


def test_stochastic_actions_with_one_seed_agree_across_backends(policy, export):
    batch = frames(400, seed=2)
    expected = policy.action(batch, mode="stochastic", seed=99).action
    for backend in ("onnx", "tensorflow", "tflite"):
        np.testing.assert_array_equal(
            load(export, backend).action(batch, mode="stochastic", seed=99).action, expected
        )


def test_frames_outside_0_to_255_or_fractional_are_refused(policy):
    batch = frames(2, seed=3).astype(np.float32)
    np.testing.assert_array_equal(policy.action(batch).action, policy.action(batch.astype(np.uint8)).action)
    for bad in (batch + 0.5, batch - 300):
        with pytest.raises(ValueError, match=r"integers 0\.\.255"):
            policy.action(bad)

"""Exported models act exactly like the in-process policy: SavedModel (without gymserve) and ONNX."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf
from policy_support import (
    CARTPOLE_OBSERVATIONS,
    MINITAUR_ACTIONS,
    MINITAUR_OBSERVATIONS,
    mlp,
    observations_for,
)

from gymserve.policies import ActorPolicy, export_policy, load

SAVED_MODEL_CLIENT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    model = tf.saved_model.load(sys.argv[1])
    observations = tf.constant(np.load(sys.argv[2]))
    np.save(sys.argv[3], model.signatures["greedy_action"](observations=observations)["action"].numpy())
    assert not [name for name in sys.modules if name.startswith("gymserve")], "gymserve was imported"
    """
)


def greedy_from_saved_model_without_gymserve(
    saved_model: Path, observations: np.ndarray, tmp_path: Path
) -> np.ndarray:
    np.save(tmp_path / "observations.npy", observations)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", SAVED_MODEL_CLIENT, str(saved_model), "observations.npy", "actions.npy"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(tmp_path / "actions.npy")


@pytest.fixture(scope="module")
def discrete_observations() -> np.ndarray:
    return observations_for(CARTPOLE_OBSERVATIONS, 10_000, seed=21)


@pytest.fixture(scope="module")
def continuous_observations() -> np.ndarray:
    return observations_for(MINITAUR_OBSERVATIONS, 10_000, seed=22)


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_discrete_greedy_actions_agree_exactly(
    discrete_policy, discrete_export, discrete_observations, backend
):
    expected = discrete_policy.action(discrete_observations).action
    assert 0.2 < expected.mean() < 0.8  # both actions occur, so agreement is not trivial
    actions = load(discrete_export, backend).action(discrete_observations).action
    assert actions.dtype == np.int64
    np.testing.assert_array_equal(actions, expected)


@pytest.mark.parametrize("backend", ["onnx", "tensorflow"])
def test_continuous_greedy_actions_agree_within_1e_5(
    continuous_policy, continuous_export, continuous_observations, backend
):
    expected = continuous_policy.action(continuous_observations).action
    actions = load(continuous_export, backend).action(continuous_observations).action
    assert actions.dtype == np.float32
    np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)


@pytest.mark.slow  # starts a fresh TensorFlow process (about 5 s)
def test_saved_model_serves_the_same_greedy_actions_without_gymserve(
    discrete_policy, discrete_export, continuous_policy, continuous_export, tmp_path
):
    for policy, export, space in (
        (discrete_policy, discrete_export, CARTPOLE_OBSERVATIONS),
        (continuous_policy, continuous_export, MINITAUR_OBSERVATIONS),
    ):
        observations = observations_for(space, 10_000, seed=23)
        expected = policy.action(observations).action
        actions = greedy_from_saved_model_without_gymserve(export / "saved_model", observations, tmp_path)
        assert actions.dtype == expected.dtype
        tolerance = 0 if expected.dtype == np.int64 else 1e-5
        np.testing.assert_allclose(actions, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("export_name", ["discrete", "continuous"])
def test_stochastic_actions_with_one_seed_agree_across_backends(request, export_name):
    policy = request.getfixturevalue(f"{export_name}_policy")
    export = request.getfixturevalue(f"{export_name}_export")
    observations = observations_for(policy.observation_space, 5000, seed=24)
    expected = policy.action(observations, mode="stochastic", seed=99).action
    for backend in ("onnx", "tensorflow"):
        actions = load(export, backend).action(observations, mode="stochastic", seed=99).action
        np.testing.assert_allclose(actions, expected, rtol=0, atol=1e-5)
    seeded = load(export, "onnx", seed=7)
    np.testing.assert_array_equal(
        seeded.action(observations, mode="stochastic").action,
        load(export, "onnx", seed=7).action(observations, mode="stochastic").action,
    )


def test_loaded_policy_epsilon_greedy_explores_uniformly(discrete_export):
    policy = load(discrete_export)
    observations = observations_for(CARTPOLE_OBSERVATIONS, 10_000, seed=25)
    greedy = policy.action(observations).action
    explored = policy.action(observations, mode="epsilon_greedy", epsilon=1.0, seed=1).action
    np.testing.assert_array_equal(
        policy.action(observations, mode="epsilon_greedy", epsilon=0.0).action, greedy
    )
    assert 0.47 < np.mean(explored) < 0.53


def test_saved_model_signatures(continuous_policy, continuous_export):
    model = tf.saved_model.load(str(continuous_export / "saved_model"))
    observations = observations_for(MINITAUR_OBSERVATIONS, 64, seed=26)
    stochastic = model.signatures["stochastic_action"]

    def sample(seed: int) -> np.ndarray:
        return stochastic(observations=tf.constant(observations), seed=tf.constant(seed, tf.int64))[
            "action"
        ].numpy()

    np.testing.assert_array_equal(sample(3), sample(3))
    assert np.any(sample(3) != sample(4))
    assert np.all((sample(5) >= MINITAUR_ACTIONS.low) & (sample(5) <= MINITAUR_ACTIONS.high))

    parameters = model.signatures["distribution"](observations=tf.constant(observations))
    distribution = continuous_policy.distribution(observations)
    np.testing.assert_allclose(parameters["mean"].numpy(), distribution.mean, atol=1e-6)
    np.testing.assert_allclose(parameters["log_std"].numpy(), distribution.log_std, atol=1e-6)
    assert model.signatures["get_initial_state"](batch_size=tf.constant(3, tf.int64)) == {}

    default = model.signatures["serving_default"](observations=tf.constant(observations))["action"]
    greedy = model.signatures["greedy_action"](observations=tf.constant(observations))["action"]
    np.testing.assert_array_equal(default.numpy(), greedy.numpy())
    np.testing.assert_allclose(
        default.numpy(), continuous_policy.action(observations).action, rtol=0, atol=1e-5
    )

    embedded = json.loads(model.signatures["get_metadata"]()["metadata"].numpy().decode())
    recorded = json.loads((continuous_export / "policy.json").read_text())
    assert embedded == {key: value for key, value in recorded.items() if key != "files"}


def test_saved_model_functions_take_int32_or_int64_seeds_and_batch_sizes(continuous_export):
    model = tf.saved_model.load(str(continuous_export / "saved_model"))
    observations = tf.constant(observations_for(MINITAUR_OBSERVATIONS, 16, seed=28))
    by_signature = model.signatures["stochastic_action"](
        observations=observations, seed=tf.constant(9, tf.int64)
    )
    for seed in (tf.constant(9, tf.int32), tf.constant(9, tf.int64), 9):
        actions = model.stochastic_action(observations, seed)["action"].numpy()
        np.testing.assert_array_equal(actions, by_signature["action"].numpy())
    for batch_size in (tf.constant(3, tf.int32), tf.constant(3, tf.int64)):
        assert model.get_initial_state(batch_size) == {}


def test_discrete_saved_model_samples_valid_actions(discrete_export):
    model = tf.saved_model.load(str(discrete_export / "saved_model"))
    observations = tf.constant(observations_for(CARTPOLE_OBSERVATIONS, 2000, seed=27))
    actions = model.signatures["stochastic_action"](observations=observations, seed=tf.constant(1, tf.int64))
    assert set(np.unique(actions["action"].numpy())) == {0, 1}
    logits = model.signatures["distribution"](observations=observations)["logits"]
    assert logits.shape == (2000, 2)


@pytest.mark.parametrize(
    ("export_name", "outputs"),
    [("discrete", ["action", "logits"]), ("continuous", ["action", "mean", "log_std"])],
)
def test_onnx_model_interface(request, export_name, outputs):
    model = onnx.load(request.getfixturevalue(f"{export_name}_export") / "policy.onnx")
    assert [opset.version for opset in model.opset_import if opset.domain in ("", "ai.onnx")] == [17]
    (observations,) = model.graph.input
    assert observations.name == "observations"
    batch = observations.type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.HasField("dim_value")  # a dynamic batch dimension
    assert sorted(output.name for output in model.graph.output) == sorted(outputs)
    properties = {prop.key: prop.value for prop in model.metadata_props}
    assert json.loads(properties["gymserve_metadata"])["formats"] == ["savedmodel", "onnx"]


def test_discrete_action_start_is_added_inside_the_models(tmp_path):
    policy = ActorPolicy(
        mlp(4, 3, seed=8, hidden=16), CARTPOLE_OBSERVATIONS, gym.spaces.Discrete(3, start=-1)
    )
    export_policy(policy, tmp_path / "shifted", formats=("onnx",))
    observations = observations_for(CARTPOLE_OBSERVATIONS, 2000, seed=28)
    expected = policy.action(observations).action
    assert set(np.unique(expected)) <= {-1, 0, 1} and expected.min() == -1
    np.testing.assert_array_equal(load(tmp_path / "shifted").action(observations).action, expected)


@pytest.fixture(scope="module")
def noisy_deterministic_policy() -> ActorPolicy:
    """A TD3-style actor: [pre-tanh action | exploration noise std] for 8 motors with uneven bounds."""
    keras.utils.set_random_seed(5)
    inputs = keras.Input((28,))
    pre_tanh = mlp(28, 8, seed=5)(inputs)
    noise_std = keras.layers.Lambda(lambda x: 0.0 * x + np.linspace(0.05, 0.4, 8, dtype=np.float32))(pre_tanh)
    network = keras.Model(inputs, keras.layers.Concatenate()([pre_tanh, noise_std]))
    return ActorPolicy(
        network, MINITAUR_OBSERVATIONS, MINITAUR_ACTIONS, seed=0, distribution="noisy_deterministic"
    )


@pytest.fixture(scope="module")
def noisy_deterministic_export(noisy_deterministic_policy, tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("exports") / "td3"
    export_policy(noisy_deterministic_policy, out_dir, metadata={"algorithm": "td3"})
    return out_dir


def test_noisy_deterministic_actors_act_alike_in_process_and_in_both_backends(
    noisy_deterministic_policy, noisy_deterministic_export
):
    observations = observations_for(MINITAUR_OBSERVATIONS, 5000, seed=29)
    greedy = noisy_deterministic_policy.action(observations).action
    stochastic = noisy_deterministic_policy.action(observations, mode="stochastic", seed=11).action
    noise = stochastic - greedy
    stds = np.linspace(0.05, 0.4, 8)
    inside = (greedy > MINITAUR_ACTIONS.low + 4 * stds) & (greedy < MINITAUR_ACTIONS.high - 4 * stds)
    for dimension, std in enumerate(stds):  # noise that no bound clips has the configured std
        assert inside[:, dimension].sum() > 200
        assert np.std(noise[inside[:, dimension], dimension]) == pytest.approx(std, rel=0.1)
    for backend in ("onnx", "tensorflow"):
        loaded = load(noisy_deterministic_export, backend)
        assert loaded.metadata.action_distribution == "noisy_deterministic"
        np.testing.assert_allclose(loaded.action(observations).action, greedy, rtol=0, atol=1e-5)
        sampled = loaded.action(observations, mode="stochastic", seed=11).action
        np.testing.assert_allclose(sampled, stochastic, rtol=0, atol=1e-5)
        assert set(loaded.distribution(observations).parameters()) == {"mean", "noise_std"}


def test_noisy_deterministic_saved_model_samples_within_the_bounds(noisy_deterministic_export):
    model = tf.saved_model.load(str(noisy_deterministic_export / "saved_model"))
    observations = tf.constant(observations_for(MINITAUR_OBSERVATIONS, 500, seed=30))
    greedy = model.signatures["greedy_action"](observations=observations)["action"].numpy()
    sample = model.signatures["stochastic_action"](observations=observations, seed=tf.constant(3, tf.int64))
    actions = sample["action"].numpy()
    assert np.all((actions >= MINITAUR_ACTIONS.low) & (actions <= MINITAUR_ACTIONS.high))
    assert 0.0 < np.mean(np.abs(actions - greedy)) < 0.4
    parameters = model.signatures["distribution"](observations=observations)
    np.testing.assert_allclose(parameters["mean"].numpy(), greedy, atol=1e-6)
    np.testing.assert_allclose(parameters["noise_std"].numpy()[0], np.linspace(0.05, 0.4, 8), rtol=1e-6)


ASYMMETRIC_BOX = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([3.0, 0.5], np.float32))
HAND_KERNEL = np.array([[0.5, -1.0, 0.1, 0.2], [2.0, 0.25, -0.3, 0.4], [-0.75, 1.5, 0.0, 0.0]], np.float32)
HAND_BIAS = np.array([0.1, -0.2, -1.0, -2.0], np.float32)


def hand_set_policy(distribution: str | None) -> ActorPolicy:
    """One Dense layer with a known kernel and bias: 3 observations -> [pre-squash mean (2) | 2 more]."""
    dense = keras.layers.Dense(4)
    network = keras.Sequential([keras.Input((3,)), dense])
    dense.set_weights([HAND_KERNEL, HAND_BIAS])
    observations = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    return ActorPolicy(network, observations, ASYMMETRIC_BOX, distribution=distribution)


@pytest.mark.parametrize("distribution", [None, "noisy_deterministic"])
def test_exported_greedy_box_actions_equal_the_squash_computed_by_hand(tmp_path, distribution):
    policy = hand_set_policy(distribution)
    export_policy(policy, tmp_path / "hand")
    observations = np.array(
        [[0.0, 0.0, 0.0], [1.0, -1.0, 0.5], [-2.0, 0.5, 3.0], [4.0, 4.0, -4.0], [0.3, -0.7, 0.2]], np.float32
    )
    pre_squash = (observations.astype(np.float64) @ HAND_KERNEL.astype(np.float64) + HAND_BIAS)[:, :2]
    low, high = np.array([-1.0, 0.0]), np.array([3.0, 0.5])
    expected = low + (np.tanh(pre_squash) + 1) / 2 * (high - low)
    assert (expected[:, 0] > 2.0).any() and (expected[:, 1] < 0.1).any(), "both sides of both bounds are used"
    tolerance = 4 * np.finfo(np.float32).eps * 3.0  # a few float32 roundings of values up to 3
    np.testing.assert_allclose(policy.action(observations).action, expected, rtol=0, atol=tolerance)
    for backend in ("onnx", "tensorflow"):
        actions = load(tmp_path / "hand", backend).action(observations).action
        assert actions.dtype == np.float32
        np.testing.assert_allclose(actions, expected, rtol=0, atol=tolerance, err_msg=backend)
    without_gymserve = greedy_from_saved_model_without_gymserve(
        tmp_path / "hand" / "saved_model", observations, tmp_path
    )
    np.testing.assert_allclose(without_gymserve, expected, rtol=0, atol=tolerance)

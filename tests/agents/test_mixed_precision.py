"""`mixed_precision`: gradient steps compute the heavy layers in bfloat16; acting stays float32."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.agents.networks import actor_critic, bfloat16_compute, q_network
from gymserve.agents.off_policy.dqn import DQN, DQNConfig
from gymserve.agents.on_policy.acer import ACERConfig
from gymserve.agents.on_policy.ppo import PPO, PPOConfig
from gymserve.agents.on_policy.trpo import TRPOConfig
from gymserve.agents.training.env_runner import EnvRunner

FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
ACTIONS = gym.spaces.Discrete(6)
BATCH = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 4, 84, 84)).astype(np.uint8))


def op_dtypes(function: tf.types.experimental.ConcreteFunction, op_type: str) -> set[str]:
    """The dtypes (attribute T) of the ops of `op_type` in a traced function, its loops included."""
    definition = function.graph.as_graph_def()
    nodes = [*definition.node, *(node for body in definition.library.function for node in body.node_def)]
    return {tf.dtypes.as_dtype(node.attr["T"].type).name for node in nodes if node.op == op_type}


def test_heavy_layers_compute_in_bfloat16_only_inside_the_block_and_heads_stay_float32():
    network = q_network(FRAMES, ACTIONS, hidden_sizes=(512,), image_encoder="nature_cnn")
    acting = tf.function(lambda frames: network(frames)).get_concrete_function(BATCH)
    with bfloat16_compute(network):
        training = tf.function(lambda frames: network(frames)).get_concrete_function(BATCH)
    after = tf.function(lambda frames: network(frames)).get_concrete_function(BATCH)
    assert op_dtypes(training, "Conv2D") == {"bfloat16"}
    assert op_dtypes(training, "MatMul") == {"bfloat16", "float32"}  # the hidden layer, the head
    assert training.structured_outputs.dtype == tf.float32
    for float32_trace in (acting, after):
        assert op_dtypes(float32_trace, "Conv2D") == {"float32"}
        assert op_dtypes(float32_trace, "MatMul") == {"float32"}
    assert {layer.dtype_policy.name for layer in network.layers} == {"float32"}
    assert {weight.dtype for weight in network.weights} == {"float32"}


def test_impala_stages_compute_in_bfloat16_too():
    network = q_network(FRAMES, ACTIONS, hidden_sizes=(256,), image_encoder="impala_cnn")
    with bfloat16_compute(network):
        training = tf.function(lambda frames: network(frames)).get_concrete_function(BATCH)
    assert op_dtypes(training, "Conv2D") == {"bfloat16"}
    assert op_dtypes(training, "MaxPool") | op_dtypes(training, "AddV2") == {"bfloat16"}
    assert training.structured_outputs.dtype == tf.float32


def test_the_layers_get_their_policies_back_even_when_the_block_raises():
    network = q_network(FRAMES, ACTIONS, hidden_sizes=(512,), image_encoder="nature_cnn")
    with pytest.raises(RuntimeError, match="inside"), bfloat16_compute(network):
        assert network.get_layer("conv_0").dtype_policy.name == "mixed_bfloat16"
        raise RuntimeError("inside")
    assert {layer.dtype_policy.name for layer in network.layers} == {"float32"}


def test_a_network_without_convolutions_is_refused():
    vectors = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    with (
        pytest.raises(
            ValueError, match="bfloat16 compute is for image networks; q_network has no convolutions"
        ),
        bfloat16_compute(q_network(vectors, ACTIONS, hidden_sizes=(8,), name="q_network")),
    ):
        pass


def test_bfloat16_values_and_gradients_stay_close_to_float32():
    networks = actor_critic(FRAMES, ACTIONS, (512,), "relu", shared_torso=True, image_encoder="nature_cnn")

    def outputs_and_gradients(mixed: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        with tf.GradientTape() as tape, bfloat16_compute(networks.both, mixed):
            logits, values = networks.both(BATCH)
            loss = tf.reduce_mean(tf.square(values - 1.0)) + tf.reduce_mean(tf.nn.log_softmax(logits))
        gradients = tape.gradient(loss, networks.both.trainable_variables)
        assert {gradient.dtype for gradient in gradients} == {tf.float32}
        return logits.numpy(), [gradient.numpy() for gradient in gradients]

    exact_logits, exact_gradients = outputs_and_gradients(False)
    mixed_logits, mixed_gradients = outputs_and_gradients(True)
    assert not np.array_equal(exact_logits, mixed_logits)  # bfloat16 did run
    np.testing.assert_allclose(mixed_logits, exact_logits, atol=0.02)
    for mixed, exact in zip(mixed_gradients, exact_gradients, strict=True):
        cosine = np.sum(mixed * exact) / (np.linalg.norm(mixed) * np.linalg.norm(exact))
        assert cosine > 0.99


def test_ppo_learns_in_bfloat16_and_acts_in_float32():
    env_id = "gymserve/BrightSide-v0"
    runner = EnvRunner.make(env_id, 2, seed=0)
    config = PPOConfig(
        image_encoder="nature_cnn",
        hidden_sizes=(16,),
        mixed_precision=True,
        num_envs=2,
        n_steps=4,
        batch_size=4,
    )
    ppo = PPO(config, runner.observation_space, runner.action_space)
    metrics = ppo.train_iteration(runner)
    assert all(np.isfinite(value) for value in metrics.values())
    iteration = ppo._iteration.get_concrete_function(tf.constant(1.0))  # the trace train_iteration ran
    assert op_dtypes(iteration, "Conv2D") == {"float32", "bfloat16"}  # the rollout acts, the update learns
    assert {layer.dtype_policy.name for layer in ppo.actor_critic.both.layers} == {"float32"}


def test_dqn_learns_in_bfloat16_and_acts_in_float32():
    runner = EnvRunner.make("gymserve/BrightSide-v0", 1, seed=0)
    config = DQNConfig(
        image_encoder="nature_cnn",
        hidden_sizes=(16,),
        mixed_precision=True,
        jit_compile=False,
        learning_starts=8,
        batch_size=4,
        train_freq=1,
    )
    dqn = DQN(config, runner.observation_space, runner.action_space)
    for _ in range(12):
        metrics = dqn.train_iteration(runner)
    assert all(np.isfinite(value) for value in metrics.values())
    assert op_dtypes(dqn._compiled_update, "Conv2D") == {"float32", "bfloat16"}  # learns, then acts


@pytest.mark.parametrize(
    ("config_class", "fields", "message"),
    [
        (PPOConfig, {}, "mixed_precision applies to image networks: set image_encoder, or leave it false"),
        (DQNConfig, {}, "mixed_precision applies to image networks: set image_encoder, or leave it false"),
        (TRPOConfig, {"image_encoder": "nature_cnn"}, "mixed_precision does not apply to trpo"),
        (ACERConfig, {"image_encoder": "nature_cnn"}, "mixed_precision does not apply to acer"),
        (
            PPOConfig,
            {"image_encoder": "nature_cnn", "lstm_units": 8},
            "image_encoder does not apply with lstm_units",
        ),
    ],
)
def test_mixed_precision_is_refused_where_it_does_not_apply(config_class, fields, message):
    with pytest.raises(ValueError, match=message):
        config_class(mixed_precision=True, **fields)

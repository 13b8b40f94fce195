import gymnasium as gym
import keras
import numpy as np
import pytest

from gymserve.agents.networks import (
    NumpyForward,
    RunningNormalization,
    actor_critic,
    normalization_layers,
    q_network,
)
from gymserve.policies.actor_policy import ActorPolicy

OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
BATCH = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def dense_units(model):
    return [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_q_network_outputs_one_value_per_action_with_the_configured_layers():
    network = q_network(OBSERVATIONS, DISCRETE, hidden_sizes=(32, 16, 8))
    assert network(BATCH).shape == (5, 3)
    assert dense_units(network) == [32, 16, 8, 3]


def test_categorical_actor_critic_outputs_logits_and_a_value_per_observation():
    networks = actor_critic(OBSERVATIONS, DISCRETE, hidden_sizes=(16,))
    logits, values = networks.both(BATCH)
    assert logits.shape == (5, 3) and values.shape == (5,)
    np.testing.assert_allclose(networks.actor(BATCH), logits, rtol=1e-6)
    np.testing.assert_allclose(networks.critic(BATCH), values, rtol=1e-6)
    assert dense_units(networks.actor) == [16, 3]


def test_gaussian_actor_outputs_mean_then_a_learned_log_std():
    networks = actor_critic(OBSERVATIONS, BOX, hidden_sizes=(16,), initial_log_std=-0.5)
    outputs = np.asarray(networks.actor(BATCH))
    assert outputs.shape == (5, 4)
    np.testing.assert_allclose(outputs[:, 2:], -0.5)  # one trainable value per dimension
    log_std_weights = [w for w in networks.actor.trainable_weights if "log_std" in w.path]
    assert [tuple(w.shape) for w in log_std_weights] == [(2,)]


def test_state_dependent_log_std_varies_with_the_observation():
    networks = actor_critic(OBSERVATIONS, BOX, hidden_sizes=(16,), state_dependent_std=True)
    log_std = np.asarray(networks.actor(BATCH))[:, 2:]
    assert not np.allclose(log_std, log_std[0])


def test_mean_and_state_dependent_log_std_heads_start_from_different_weights():
    networks = actor_critic(OBSERVATIONS, BOX, hidden_sizes=(16,), state_dependent_std=True)
    kernels = {
        w.path.split("/")[0]: np.asarray(w) for w in networks.actor.weights if w.path.endswith("kernel")
    }
    assert kernels["mean"].shape == kernels["log_std"].shape
    assert not np.allclose(kernels["mean"], kernels["log_std"])


def test_shared_torso_gives_actor_and_critic_the_same_hidden_layers():
    networks = actor_critic(OBSERVATIONS, DISCRETE, hidden_sizes=(8,), shared_torso=True)
    actor_hidden = {id(w) for w in networks.actor.trainable_weights}
    critic_hidden = {id(w) for w in networks.critic.trainable_weights}
    assert len(actor_hidden & critic_hidden) == 2  # kernel and bias of the torso


def test_actor_networks_follow_the_policy_output_contract():
    for space in (DISCRETE, BOX):
        policy = ActorPolicy(actor_critic(OBSERVATIONS, space).actor, OBSERVATIONS, space, seed=0)
        actions = policy.action(BATCH, mode="stochastic").action
        assert actions.shape == (5, *space.shape)
        assert all(space.contains(action) for action in actions)


def test_running_normalization_matches_the_statistics_of_everything_seen():
    network = q_network(OBSERVATIONS, DISCRETE, normalize_observations=True)
    (layer,) = normalization_layers([network])
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, size=(size, 4)) for size in (1, 7, 50)]
    for batch in batches:
        layer.update(batch)
    seen = np.concatenate(batches)
    np.testing.assert_allclose(layer.mean.numpy(), seen.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(layer.variance.numpy(), seen.var(axis=0), rtol=1e-5)
    standardized = np.asarray(layer(seen.astype(np.float32)))
    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardized.std(axis=0), 1.0, atol=1e-4)


def test_normalization_statistics_are_non_trainable_weights_of_the_network():
    network = q_network(OBSERVATIONS, DISCRETE, normalize_observations=True)
    names = {weight.path.rsplit("/", 1)[-1] for weight in network.non_trainable_weights}
    assert names == {"mean", "variance", "count"}
    assert all(not weight.trainable for weight in network.non_trainable_weights)


def test_normalization_clips_far_observations():
    layer = RunningNormalization(clip=5.0)
    layer.build((None, 1))
    layer.update(np.array([[0.0], [2.0]]))  # mean 1, std 1
    np.testing.assert_allclose(
        np.asarray(layer(np.array([[100.0], [-100.0], [2.5]], np.float32))), [[5], [-5], [1.5]]
    )


@pytest.mark.parametrize("normalize", [False, True])
def test_numpy_forward_computes_the_keras_outputs(normalize):
    network = q_network(OBSERVATIONS, DISCRETE, hidden_sizes=(32, 32), normalize_observations=normalize)
    forward = NumpyForward(network)
    np.testing.assert_allclose(forward(BATCH), network(BATCH), rtol=1e-5, atol=1e-6)
    network.layers[-1].bias.assign(np.ones(3, np.float32))
    for layer in normalization_layers([network]):
        layer.update(BATCH * 4.0)
    assert not np.allclose(forward(BATCH), network(BATCH))
    forward.sync()
    np.testing.assert_allclose(forward(BATCH), network(BATCH), rtol=1e-5, atol=1e-6)


def test_numpy_forward_refuses_layers_it_cannot_compute():
    inputs = keras.Input((4,))
    model = keras.Model(
        inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dropout(0.5)(inputs))
    )
    with pytest.raises(TypeError, match="cannot compute layer"):
        NumpyForward(model)

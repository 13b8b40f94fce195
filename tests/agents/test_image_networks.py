"""The convolutional encoders: uint8 frames in, the published layer shapes and parameter counts."""

from __future__ import annotations

import gymnasium as gym
import keras
import numpy as np
import pytest

from gymserve.agents.networks import actor_critic, q_network

FRAMES = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)  # 4 stacked 84x84 frames, channels first
ACTIONS = gym.spaces.Discrete(6)
BATCH = np.random.default_rng(0).integers(0, 256, (3, 4, 84, 84)).astype(np.uint8)


def _conv_params(size: int, channels_in: int, filters: int) -> int:
    return size * size * channels_in * filters + filters


def test_nature_cnn_has_the_papers_layers_and_parameter_count():
    network = q_network(FRAMES, ACTIONS, hidden_sizes=(512,), image_encoder="nature_cnn")
    # 84 -> (84 - 8) / 4 + 1 = 20 -> (20 - 4) / 2 + 1 = 9 -> 9 - 3 + 1 = 7
    expected = (
        _conv_params(8, 4, 32)
        + _conv_params(4, 32, 64)
        + _conv_params(3, 64, 64)
        + (7 * 7 * 64 * 512 + 512)
        + (512 * 6 + 6)
    )
    assert expected == 1_687_206
    assert network.count_params() == expected
    convolutions = [layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides) for c in convolutions] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    assert network.get_layer("conv_features").output.shape == (None, 7 * 7 * 64)


def test_image_networks_take_uint8_frames_and_give_float32_values():
    network = q_network(FRAMES, ACTIONS, hidden_sizes=(512,), image_encoder="nature_cnn")
    assert network.inputs[0].dtype == "uint8"
    values = network(BATCH)
    assert values.shape == (3, 6) and values.dtype == "float32"


def test_frames_are_scaled_by_1_over_255_inside_the_network():
    network = q_network(FRAMES, ACTIONS, hidden_sizes=(8,), image_encoder="nature_cnn")
    scaled = keras.Model(network.input, network.get_layer("image_scaling").output)(BATCH)
    # channels last, values in [0, 1]
    np.testing.assert_allclose(scaled, np.transpose(BATCH, (0, 2, 3, 1)) / np.float32(255), rtol=1e-6)


def test_impala_cnn_shapes_and_residual_stages():
    networks = actor_critic(
        FRAMES, ACTIONS, hidden_sizes=(256,), activation="relu", image_encoder="impala_cnn"
    )
    logits, values = networks.both(BATCH)
    assert logits.shape == (3, 6) and values.shape == (3,)
    # 84 -> 42 -> 21 -> 11 after three max-pools of stride 2 ('same' padding), 32 channels
    assert networks.both.get_layer("conv_features").output.shape == (None, 11 * 11 * 32)
    adds = [layer for layer in networks.both.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 6  # two residual blocks per stage
    convolutions = [layer.filters for layer in networks.both.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions == [16] * 5 + [32] * 5 + [32] * 5
    # the encoder is shared: the actor and the critic use the same convolution weights
    assert networks.actor.get_layer("stage_0_conv") is networks.critic.get_layer("stage_0_conv")


@pytest.mark.parametrize(
    ("space", "options", "message"),
    [
        (gym.spaces.Box(-1, 1, (4, 84, 84), np.float32), {}, "takes uint8 images"),
        (gym.spaces.Box(0, 255, (84, 84), np.uint8), {}, "takes uint8 images"),
        (FRAMES, {"normalize_observations": True}, "normalize_observations does not apply"),
    ],
)
def test_an_image_encoder_refuses_observations_that_are_not_images(space, options, message):
    with pytest.raises(ValueError, match=message):
        q_network(space, ACTIONS, image_encoder="nature_cnn", **options)


def _torso_kernels(network: keras.Model) -> dict[str, np.ndarray]:
    """The convolutions' and hidden layers' kernels, each as a (fan_in, units) matrix."""
    return {
        layer.name: layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
        for layer in network.layers
        if isinstance(layer, keras.layers.Conv2D) or layer.name.startswith("torso")
    }


def _gram(kernel: np.ndarray) -> np.ndarray:
    """K^T K, or K K^T when K has fewer rows than columns: 2 I for an orthogonal K of gain sqrt(2)."""
    return kernel.T @ kernel if kernel.shape[0] >= kernel.shape[1] else kernel @ kernel.T


@pytest.mark.parametrize("encoder", ["nature_cnn", "impala_cnn"])
def test_an_orthogonal_torso_has_orthogonal_kernels_of_gain_sqrt_2(encoder):
    def torso(orthogonal: bool) -> dict[str, np.ndarray]:
        networks = actor_critic(
            FRAMES,
            ACTIONS,
            hidden_sizes=(64, 64, 64),  # two (64, 64) kernels
            shared_torso=True,
            image_encoder=encoder,
            orthogonal_torso=orthogonal,
        )
        return _torso_kernels(networks.actor)

    orthogonal, glorot = torso(True), torso(False)
    assert len(orthogonal) >= 4 and orthogonal.keys() == glorot.keys()
    for name, kernel in orthogonal.items():
        identity = np.eye(min(kernel.shape))
        np.testing.assert_allclose(_gram(kernel), 2 * identity, atol=1e-4, err_msg=name)
        assert not np.allclose(_gram(glorot[name]), 2 * identity, atol=0.1), name
    kernels = list(orthogonal.values())
    twins = [(a, b) for i, a in enumerate(kernels) for b in kernels[i + 1 :] if a.shape == b.shape]
    assert twins and not any(np.array_equal(a, b) for a, b in twins), "same-shaped layers start differently"

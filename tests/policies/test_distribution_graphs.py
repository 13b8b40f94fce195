"""The TensorFlow forms of the distributions, as training uses them, by hand and against numpy."""

import math

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from gymserve.policies.distributions import (
    KINDS,
    Categorical,
    DistributionGraph,
    SquashedGaussian,
    distribution_from_outputs,
    distribution_graph,
)

BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def test_categorical_log_probs_entropy_and_offset_actions():
    distribution = distribution_graph(gym.spaces.Discrete(3, start=-1))
    logits = tf.constant([[0.0, math.log(2.0), math.log(5.0)]])  # probabilities 1/8, 2/8, 5/8
    np.testing.assert_allclose(
        distribution.log_prob(logits, tf.constant([2], tf.int64)), [math.log(5 / 8)], rtol=1e-6
    )
    expected_entropy = -sum(p * math.log(p) for p in (1 / 8, 2 / 8, 5 / 8))
    np.testing.assert_allclose(distribution.entropy(logits), [expected_entropy], rtol=1e-6)
    np.testing.assert_array_equal(distribution.env_actions(tf.constant([0, 2], tf.int64)), [-1, 1])


def test_categorical_samples_follow_the_softmax():
    distribution = Categorical.Graph(gym.spaces.Discrete(2))
    logits = tf.constant([[0.0, math.log(3.0)]] * 20_000)
    samples = distribution.sample(logits, tf.random.Generator.from_seed(1)).numpy()
    assert abs(samples.mean() - 0.75) < 0.01


def test_squashed_gaussian_log_prob_includes_the_tanh_and_scale_correction_by_hand():
    distribution = SquashedGaussian.Graph(gym.spaces.Box(-2.0, 2.0, (1,), np.float32))
    outputs = tf.constant([[0.0, 0.0]])  # mean 0, log_std 0
    # u = 0 maps to a = 0 with da/du = (1 - tanh(0)^2) * (2 - (-2)) / 2 = 2
    log_prob = distribution.log_prob(outputs, tf.constant([[0.0]]))
    np.testing.assert_allclose(log_prob, [-0.5 * math.log(2 * math.pi) - math.log(2.0)], rtol=1e-6)


def test_squashed_gaussian_density_of_the_env_action_integrates_to_one():
    distribution = SquashedGaussian.Graph(gym.spaces.Box(0.0, 3.0, (1,), np.float32))
    pre_squash = np.linspace(-10.0, 10.0, 100_001, dtype=np.float32)[:, None]
    outputs = tf.repeat(tf.constant([[0.3, -0.5]]), len(pre_squash), axis=0)
    density = np.exp(distribution.log_prob(outputs, tf.constant(pre_squash)).numpy().astype(np.float64))
    actions = distribution.env_actions(tf.constant(pre_squash)).numpy()[:, 0].astype(np.float64)
    assert np.sum(0.5 * (density[1:] + density[:-1]) * np.diff(actions)) == pytest.approx(1.0, abs=1e-3)


def test_squashed_gaussian_log_prob_sums_over_action_dimensions():
    outputs = np.array([[0.3, -0.4, -0.5, 0.2]], np.float32)  # means (0.3, -0.4), log_stds (-0.5, 0.2)
    raw = np.array([[1.1, -0.7]], np.float32)
    joint = SquashedGaussian.Graph(BOX).log_prob(tf.constant(outputs), tf.constant(raw))
    per_dimension = [
        SquashedGaussian.Graph(gym.spaces.Box(BOX.low[d], BOX.high[d], (1,), np.float32)).log_prob(
            tf.constant(outputs[:, [d, 2 + d]]), tf.constant(raw[:, [d]])
        )
        for d in range(2)
    ]
    np.testing.assert_allclose(joint, per_dimension[0] + per_dimension[1], rtol=1e-6)


def test_env_actions_match_the_served_distribution():
    outputs = np.array([[0.7, -3.0, 0.1, 0.0], [-1.5, 2.0, -1.0, 1.0]], np.float32)
    distribution = SquashedGaussian.Graph(BOX)
    served = distribution_from_outputs(outputs, BOX)
    np.testing.assert_allclose(
        distribution.env_actions(tf.constant(outputs[:, :2])).numpy(), served.mode(), atol=1e-6
    )


def test_samples_have_the_configured_mean_and_spread():
    distribution = SquashedGaussian.Graph(gym.spaces.Box(-1.0, 1.0, (1,), np.float32))
    outputs = tf.constant([[0.5, math.log(0.2)]] * 20_000)
    samples = distribution.sample(outputs, tf.random.Generator.from_seed(3)).numpy()
    assert samples.mean() == pytest.approx(0.5, abs=0.01)
    assert samples.std() == pytest.approx(0.2, abs=0.01)


def test_categorical_kl_divergence_by_hand():
    distribution = Categorical.Graph(gym.spaces.Discrete(2))
    old_logits = tf.constant([[0.0, 0.0], [1.0, 2.0]])  # probabilities (1/2, 1/2), then any
    logits = tf.constant([[0.0, math.log(3.0)], [1.0, 2.0]])  # (1/4, 3/4), then the same
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    np.testing.assert_allclose(distribution.kl_divergence(old_logits, logits), [expected, 0.0], atol=1e-7)


def test_squashed_gaussian_kl_divergence_by_hand_and_by_sampling_the_squashed_densities():
    distribution = SquashedGaussian.Graph(gym.spaces.Box(-2.0, 2.0, (1,), np.float32))
    old, new = tf.constant([[0.0, 0.0]]), tf.constant([[1.0, math.log(2.0)]])  # N(0, 1) -> N(1, 2^2)
    by_hand = math.log(2.0) + (1.0 + 1.0) / (2 * 4.0) - 0.5
    np.testing.assert_allclose(distribution.kl_divergence(old, new), [by_hand], rtol=1e-6)
    # E_old[log pi_old(a) - log pi_new(a)] over the env actions' densities, squash included
    old, new = tf.constant([[0.3, -0.5, 0.2, 0.1]]), tf.constant([[-0.2, 0.4, -0.3, 0.5]])
    two_dimensional = SquashedGaussian.Graph(BOX)
    raw = two_dimensional.sample(tf.repeat(old, 200_000, axis=0), tf.random.Generator.from_seed(4))
    sampled = tf.reduce_mean(
        two_dimensional.log_prob(tf.repeat(old, 200_000, axis=0), raw)
        - two_dimensional.log_prob(tf.repeat(new, 200_000, axis=0), raw)
    )
    assert float(two_dimensional.kl_divergence(old, new)[0]) == pytest.approx(float(sampled), abs=0.01)


def test_unbounded_box_and_other_spaces_are_refused():
    with pytest.raises(ValueError, match="bounded Box"):
        distribution_graph(gym.spaces.Box(-np.inf, np.inf, (1,), np.float32))
    with pytest.raises(TypeError, match="Discrete or Box"):
        distribution_graph(gym.spaces.MultiBinary(2))


FIXED_OUTPUTS = np.array([[0.7, -3.0, 0.1, 0.0], [-1.5, 2.0, -1.0, 1.0], [0.0, 0.4, 2.5, -30.0]], np.float32)
KIND_SPACES = {
    "categorical": gym.spaces.Discrete(4, start=-1),
    "squashed_gaussian": BOX,
    "noisy_deterministic": BOX,
    "deterministic": gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
    "gaussian": BOX,
}
RAW_ACTIONS = {  # what training stores: indices, pre-squash samples, env actions
    "categorical": np.array([0, 3, 1], np.int64),
    "squashed_gaussian": np.array([[0.5, -1.0], [-2.0, 0.3], [1.2, 0.0]], np.float32),
    "gaussian": np.array([[0.5, -1.0], [-2.0, 0.3], [1.2, 0.0]], np.float32),
}


def test_every_kind_is_tested_here_and_has_both_forms():
    assert set(KIND_SPACES) == set(KINDS)
    for kind, cls in KINDS.items():
        assert cls.kind == kind
        assert issubclass(cls.Graph, DistributionGraph), kind
        outputs = FIXED_OUTPUTS[:, : cls.output_size(KIND_SPACES[kind])]
        assert set(cls.from_outputs(outputs, KIND_SPACES[kind]).parameters()) == set(cls.parameter_names)


@pytest.mark.parametrize("kind", sorted(KIND_SPACES))
def test_the_tensorflow_form_agrees_with_numpy_on_parameters_and_greedy_actions(kind):
    space = KIND_SPACES[kind]
    outputs = FIXED_OUTPUTS[:, : KINDS[kind].output_size(space)]
    numpy_form = distribution_from_outputs(outputs, space, kind)
    graph = distribution_graph(space, kind)
    parameters = graph.parameters(tf.constant(outputs))
    assert sorted(parameters) == sorted(numpy_form.parameters())
    for name, value in numpy_form.parameters().items():
        np.testing.assert_allclose(parameters[name].numpy(), value, rtol=1e-6, atol=1e-6)
    # The exported greedy action is what Policy.action returns: the mode, clipped to a Box's bounds.
    greedy = numpy_form.mode()
    if isinstance(space, gym.spaces.Box):
        greedy = np.clip(greedy, space.low, space.high)
        assert kind != "gaussian" or (greedy != numpy_form.mode()).any()  # the clip is exercised
    np.testing.assert_allclose(graph.greedy_action(parameters).numpy(), greedy, atol=1e-6)
    seeded = graph.stochastic_action(parameters, tf.constant(5, tf.int64)).numpy()
    assert seeded.shape == numpy_form.mode().shape
    if isinstance(space, gym.spaces.Box):
        assert ((seeded >= space.low) & (seeded <= space.high)).all()
    np.testing.assert_array_equal(seeded, graph.stochastic_action(parameters, tf.constant(5, tf.int64)))


@pytest.mark.parametrize("kind", sorted(RAW_ACTIONS))
def test_the_tensorflow_log_prob_of_raw_actions_is_the_numpy_one_of_their_env_actions(kind):
    space = KIND_SPACES[kind]
    outputs = FIXED_OUTPUTS[:, : KINDS[kind].output_size(space)]
    graph = distribution_graph(space, kind)
    raw = tf.constant(RAW_ACTIONS[kind])
    env_actions = graph.env_actions(raw).numpy()
    expected = distribution_from_outputs(outputs, space, kind).log_prob(env_actions)
    np.testing.assert_allclose(graph.log_prob(tf.constant(outputs), raw).numpy(), expected, rtol=1e-4)


def test_kinds_without_a_training_form_say_so():
    graph = distribution_graph(BOX, "noisy_deterministic")
    with pytest.raises(NotImplementedError, match=r"NoisyDeterministic\.Graph has no log_prob"):
        graph.log_prob(tf.constant(FIXED_OUTPUTS), tf.constant(RAW_ACTIONS["gaussian"]))

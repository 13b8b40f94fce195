"""log_prob and entropy of every distribution, checked against numerical integration or enumeration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gymserve.policies import Categorical, Deterministic, Normal, SquashedGaussian, Uniform
from gymserve.policies.distributions import NoisyDeterministic, distribution_from_parameters


def integrate(density: np.ndarray, grid: np.ndarray) -> float:
    return float(np.sum((density[1:] + density[:-1]) / 2 * np.diff(grid)))


def test_categorical_log_prob_and_entropy_enumerate_the_probabilities():
    distribution = Categorical(np.array([[0.0, math.log(3.0)], [5.0, 5.0]]), start=1)
    np.testing.assert_allclose(distribution.log_prob(np.array([2, 1])), [math.log(0.75), math.log(0.5)])
    np.testing.assert_allclose(
        distribution.entropy(), [-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)), math.log(2)]
    )
    with pytest.raises(ValueError, match=r"actions \[0, 1\] are not one of 1..2"):
        distribution.log_prob(np.array([0, 1]))


def test_a_categorical_point_mass_has_zero_entropy():
    assert Categorical(np.array([[0.0, -np.inf]])).entropy()[0] == 0.0


def test_squashed_gaussian_density_integrates_to_one_over_the_bounds():
    distribution = SquashedGaussian(np.array([[0.3]]), np.array([[-0.5]]), np.array([-1.0]), np.array([3.0]))
    grid = np.linspace(-1.0, 3.0, 200_001)[1:-1]
    density = np.exp([distribution.log_prob(np.array([[a]]))[0] for a in grid[::100]])
    assert integrate(density, grid[::100]) == pytest.approx(1.0, abs=2e-3)
    assert distribution.log_prob(np.array([[3.0]]))[0] == -np.inf
    with pytest.raises(NotImplementedError, match="SquashedGaussian has no closed-form entropy"):
        distribution.entropy()


def test_normal_log_prob_integrates_to_one_and_its_entropy_matches_the_integral():
    grid = np.linspace(-20, 20, 40_001)
    one_dim = Normal(np.full((len(grid), 1), 0.5), np.full((len(grid), 1), 2.0))
    log_density = one_dim.log_prob(grid[:, None])
    assert integrate(np.exp(log_density), grid) == pytest.approx(1.0, abs=1e-6)
    assert one_dim.entropy()[0] == pytest.approx(
        integrate(-np.exp(log_density) * log_density, grid), abs=1e-6
    )
    two_dims = Normal(np.array([[0.5, -1.0]]), np.array([[2.0, 0.5]]))
    expected = Normal(np.array([[0.5]]), np.array([[2.0]])).log_prob(np.array([[0.1]])) + Normal(
        np.array([[-1.0]]), np.array([[0.5]])
    ).log_prob(np.array([[0.2]]))
    np.testing.assert_allclose(two_dims.log_prob(np.array([[0.1, 0.2]])), expected)  # independent dims


def test_uniform_and_deterministic_densities():
    uniform = Uniform(np.array([0.0, -1.0]), np.array([2.0, 1.0]), batch_size=2)
    np.testing.assert_allclose(uniform.entropy(), [math.log(4)] * 2)
    np.testing.assert_allclose(uniform.log_prob(np.array([[1.0, 0.0], [3.0, 0.0]])), [-math.log(4), -np.inf])
    point = Deterministic(np.array([[1.0, 2.0], [0.0, 0.0]]))
    np.testing.assert_array_equal(point.log_prob(np.array([[1.0, 2.0], [0.0, 1.0]])), [0.0, -np.inf])
    np.testing.assert_array_equal(point.entropy(), [0.0, 0.0])
    np.testing.assert_array_equal(point.sample(np.random.default_rng(0)), point.mode())


def test_a_distribution_without_a_density_says_so():
    noisy = NoisyDeterministic(np.zeros((1, 2)), np.ones((1, 2)), -np.ones(2), np.ones(2))
    with pytest.raises(NotImplementedError, match="NoisyDeterministic has no log_prob"):
        noisy.log_prob(np.zeros((1, 2)))


def test_new_distributions_round_trip_through_their_parameters():
    import gymnasium as gym

    box = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    normal = Normal(np.array([[0.5, -1.0]]), np.array([[2.0, 0.5]]))
    again = distribution_from_parameters(normal.parameters(), box)
    assert isinstance(again, Normal) and again.log_prob(np.zeros((1, 2))) == normal.log_prob(np.zeros((1, 2)))
    point = distribution_from_parameters({"loc": np.array([1])}, gym.spaces.Discrete(3))
    assert isinstance(point, Deterministic) and point.mode().tolist() == [1]


def test_a_distribution_reads_as_its_class_batch_and_parameters():
    normal = Normal(np.array([[0.5, -1.0], [0.0, 0.25]]), np.array([[1.0, 2.0], [0.5, 0.5]]))
    assert repr(normal) == (
        "Normal(batch_size=2, loc=[[ 0.5 , -1.  ],\n [ 0.  ,  0.25]], scale=[[1. , 2. ],\n [0.5, 0.5]])"
    )
    assert repr(Categorical(np.zeros((1, 3)), start=1)) == "Categorical(batch_size=1, logits=[[0., 0., 0.]])"
    assert repr(Deterministic(np.array([2, 0]))) == "Deterministic(batch_size=2, loc=[2, 0])"
    long = repr(Uniform(np.zeros(50), np.ones(50), batch_size=4))
    assert long.startswith("Uniform(batch_size=4, low=[[0., 0., 0., ..., 0., 0., 0.],") and len(long) < 400
    assert repr(SquashedGaussian(np.zeros((1, 1)), np.zeros((1, 1)), -np.ones(1), np.ones(1))) == (
        "SquashedGaussian(batch_size=1, mean=[[0.]], log_std=[[0.]])"
    )

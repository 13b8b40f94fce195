"""What every registered algorithm (and each registered variant) must do, on a tiny env of its action kind:
train an iteration, restore a checkpoint exactly (weights, optimizer slots, extra state, generator),
and export a policy whose SavedModel and ONNX greedy actions equal the in-process policy's.

All registrations together take about 45 s on 2 cores (2-5 s each).
"""

from __future__ import annotations

import numpy as np
import pytest

from gymserve.agents.algorithm import Algorithm
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.agents.training.registry import REGISTRY, algorithm_class
from gymserve.agents.training.runs import RunInfo, build_algorithm
from gymserve.policies import export_policy, load

ENV_OF_ACTION_KIND = {"Discrete": "gymserve/CartPole-v1", "Box": "Pendulum-v1"}
# Applied to the fields an algorithm's config has: tiny networks, rollouts, buffers and searches.
TINY = {
    "num_envs": 2,
    "n_steps": 8,
    "batch_size": 8,
    "n_epochs": 2,
    "hidden_sizes": (8,),
    "actor_hidden_sizes": (8,),
    "critic_hidden_sizes": (8,),
    "normalize_observations": True,
    "buffer_size": 64,
    "learning_starts": 8,
    "rollouts_per_iteration": 2,
    "critic_epochs": 1,
    "cg_iterations": 2,
    "line_search_steps": 2,
}
# What a variant's config field is set to (with what it needs) to build the variant.
VARIANT_SETTINGS = {"lstm_units": {"lstm_units": 4, "bptt_length": 4}}
MAX_ITERATIONS = 40  # off-policy iterations until the first gradient step (learning_starts / num_envs + 1)


def cases() -> list:
    """(name, variant field or None, action kind) for every registration."""
    found = []
    for name, entry in REGISTRY.items():
        for kind in entry.action_kinds:
            found.append(pytest.param(name, None, kind, id=f"{name}-{kind}"))
            for variant in entry.variants:
                found.append(pytest.param(name, variant, kind, id=f"{name}-{variant}-{kind}"))
    return found


def tiny_run(name: str, variant: str | None, kind: str) -> RunInfo:
    config_class = algorithm_class(name).config_class
    values = {field: value for field, value in TINY.items() if field in config_class.model_fields}
    if variant is not None:
        values.update(VARIANT_SETTINGS[variant])
    return RunInfo(name, ENV_OF_ACTION_KIND[kind], config_class(seed=3, **values))


def optimizer_steps(algorithm: Algorithm) -> int:
    return sum(int(optimizer.iterations.numpy()) for optimizer in algorithm.optimizers().values())


def every_variable(algorithm: Algorithm) -> dict[str, np.ndarray]:
    """Network weights and optimizer variables (step counts and slots), by owner and position
    (variable paths carry per-instance suffixes such as adam_1)."""
    values = {}
    for name, network in algorithm.networks().items():
        for index, weight in enumerate(network.weights):
            values[f"network {name} {index}"] = np.asarray(weight.numpy())
    for name, optimizer in algorithm.optimizers().items():
        for index, variable in enumerate(optimizer.variables):
            values[f"optimizer {name} {index}"] = np.asarray(variable.numpy())
    return values


def assert_same_values(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(actual) == list(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name], value, err_msg=name)


def fixed_observations(algorithm: Algorithm) -> np.ndarray:
    space = algorithm.observation_space
    observations = np.random.default_rng(11).normal(size=(64, *space.shape)).astype(np.float32)
    return np.clip(observations, space.low, space.high)


def greedy_actions(policy, observations: np.ndarray) -> np.ndarray:
    return policy.action(observations, policy.get_initial_state(len(observations))).action


@pytest.mark.parametrize(("name", "variant", "kind"), cases())
def test_algorithm_trains_restores_exactly_and_exports_the_same_greedy_actions(name, variant, kind, tmp_path):
    info = tiny_run(name, variant, kind)
    algorithm = build_algorithm(info)
    assert algorithm.name == name
    runner = EnvRunner.make(
        info.env_id, info.config.num_envs, seed=5, on_observations=algorithm.update_observation_statistics
    )
    for _ in range(MAX_ITERATIONS):
        metrics = algorithm.train_iteration(runner)
        if optimizer_steps(algorithm) > 0:
            break
    assert optimizer_steps(algorithm) > 0, "no gradient step within the iterations allowed"
    assert runner.total_steps > 0 and all(np.isfinite(value) for value in metrics.values())

    algorithm.save(tmp_path)
    restored = build_algorithm(info)
    fresh = every_variable(restored)
    trained = every_variable(algorithm)
    assert any(not np.array_equal(fresh[key], trained[key]) for key in fresh if key in trained), (
        "training changed nothing a restore could bring back"
    )
    restored.restore(tmp_path)
    assert_same_values(every_variable(restored), trained)
    assert_same_values(restored.state(), algorithm.state())
    assert restored.rng.bit_generator.state == algorithm.rng.bit_generator.state
    assert restored.learning_rate_scale == algorithm.learning_rate_scale

    observations = fixed_observations(algorithm)
    expected = greedy_actions(algorithm.policy(), observations)
    export = tmp_path / "export"
    export_policy(algorithm.policy(), export, metadata={"algorithm": name, "env_id": info.env_id})
    tolerance = 0 if kind == "Discrete" else 1e-5
    for backend in ("tensorflow", "onnx"):
        actions = greedy_actions(load(export, backend), observations)
        assert actions.dtype == expected.dtype
        np.testing.assert_allclose(actions, expected, rtol=0, atol=tolerance, err_msg=backend)

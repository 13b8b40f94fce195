import gymnasium as gym
import keras
import numpy as np
import pytest
from tiny_dqn import TINY_DQN

from gymserve.agents import load_trained_policy, train
from gymserve.agents.algorithm import UnsupportedActionSpaceError
from gymserve.agents.off_policy.dqn import DQN, DQNConfig, td_targets
from gymserve.agents.off_policy.n_step import n_step_targets
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.agents.training.schedules import linear_schedule
from gymserve.policies import RandomPolicy
from gymserve.policies.episodes import evaluate

CARTPOLE = "gymserve/CartPole-v1"
OBSERVATIONS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
GAMMA = 0.9


def test_n_step_returns_sum_discounted_rewards_and_bootstrap_with_gamma_to_the_n():
    rewards = np.array([[1.0, 2.0, 3.0]])
    returns, discounts, last = n_step_targets(rewards, np.zeros((1, 3), bool), np.ones((1, 3), bool), GAMMA)
    np.testing.assert_allclose(returns, [1 + 0.9 * 2 + 0.81 * 3])
    np.testing.assert_allclose(discounts, [0.729])
    np.testing.assert_array_equal(last, [2])


def test_n_step_returns_stop_at_a_terminal_step_without_bootstrapping():
    rewards = np.array([[1.0, 2.0, 3.0]])
    terminated = np.array([[False, True, False]])
    mask = np.array([[True, True, False]])  # the third step belongs to the next episode
    returns, discounts, last = n_step_targets(rewards, terminated, mask, GAMMA)
    np.testing.assert_allclose(returns, [2.8])
    np.testing.assert_allclose(discounts, [0.0])
    np.testing.assert_array_equal(last, [1])


def test_n_step_returns_cut_by_truncation_or_the_newest_item_still_bootstrap():
    rewards = np.array([[1.0, 2.0, 3.0], [5.0, 0.0, 0.0]])
    mask = np.array([[True, True, False], [True, False, False]])
    returns, discounts, last = n_step_targets(rewards, np.zeros((2, 3), bool), mask, GAMMA)
    np.testing.assert_allclose(returns, [2.8, 5.0])
    np.testing.assert_allclose(discounts, [0.81, 0.9])
    np.testing.assert_array_equal(last, [1, 0])


def test_double_q_targets_take_the_online_choice_valued_by_the_target_network():
    returns, discounts = np.array([1.0, 1.0], np.float32), np.array([0.5, 0.0], np.float32)
    online = np.array([[1.0, 3.0], [4.0, 0.0]], np.float32)
    target = np.array([[5.0, 2.0], [7.0, 9.0]], np.float32)
    np.testing.assert_allclose(
        td_targets(returns, discounts, online, target, double_q=True), [1 + 0.5 * 2, 1]
    )
    np.testing.assert_allclose(td_targets(returns, discounts, None, target, double_q=False), [1 + 0.5 * 5, 1])


def test_epsilon_decays_linearly_then_stays():
    assert [linear_schedule(1.0, 0.1, 100, step) for step in (0, 50, 100, 1000)] == pytest.approx(
        [1, 0.55, 0.1, 0.1]
    )
    assert linear_schedule(1.0, 0.1, 0, 0) == 0.1


def test_dqn_refuses_box_action_spaces():
    with pytest.raises(UnsupportedActionSpaceError, match=r"dqn acts only in Discrete action spaces.*Box"):
        DQN(DQNConfig(), OBSERVATIONS, gym.spaces.Box(-1.0, 1.0, (1,), np.float32))


def tiny_dqn(**fields) -> DQN:
    config = DQNConfig(
        hidden_sizes=(8,), batch_size=4, learning_starts=0, train_freq=2, jit_compile=False, **fields
    )
    return DQN(config, OBSERVATIONS, gym.spaces.Discrete(2))


def test_epsilon_greedy_actions_take_the_same_random_draws_as_computing_q_values_first():
    dqn = tiny_dqn(dueling=True, exploration_initial_eps=0.5, exploration_final_eps=0.5)
    observations = np.random.default_rng(1).normal(size=(64, 4)).astype(np.float32)
    q_values = dqn.policy().network_outputs(observations)
    draws = np.random.default_rng()
    draws.bit_generator.state = dqn.rng.bit_generator.state
    # the order before the network was skipped for random actions: Q-values, coins, random actions
    expected = np.argmax(q_values, axis=1)
    explore = draws.random(64) < 0.5
    expected[explore] = draws.integers(2, size=int(explore.sum()))

    actions = dqn.explore(observations, total_steps=0)

    assert 0 < explore.sum() < 64
    np.testing.assert_array_equal(actions, expected)
    assert dqn.rng.bit_generator.state == draws.bit_generator.state


@pytest.mark.parametrize(("epsilon", "network_calls"), [(1.0, 0), (0.0, 1)])
def test_the_q_network_runs_only_when_some_env_acts_greedily(monkeypatch, epsilon, network_calls):
    dqn = tiny_dqn(dueling=True, exploration_initial_eps=epsilon, exploration_final_eps=epsilon)
    calls = []

    def q_values(observations: np.ndarray) -> np.ndarray:
        calls.append(len(observations))
        return np.tile([0.0, 1.0], (len(observations), 1))

    monkeypatch.setattr(dqn, "acting_outputs", q_values)
    actions = dqn.explore(np.zeros((64, 4), np.float32), total_steps=0)

    assert len(calls) == network_calls
    if network_calls:
        assert actions.tolist() == [1] * 64
    else:
        assert 0 < actions.sum() < 64  # uniform random actions, not the greedy 1s


def test_target_network_is_copied_every_interval_of_gradient_steps():
    dqn = tiny_dqn(gradient_steps=3, target_update_interval=4)
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)

    def target_matches():
        pairs = zip(dqn.target_network.weights, dqn.q_network.weights, strict=True)
        return all(np.array_equal(target.numpy(), online.numpy()) for target, online in pairs)

    dqn.train_iteration(runner)  # gradient steps 1-3
    assert not target_matches()
    dqn.train_iteration(runner)  # steps 4-6: copied at 4, trained after
    assert not target_matches()
    dqn.train_iteration(runner)  # steps 7-9: copied at 8, trained after
    copied_at_8 = [weight.numpy() for weight in dqn.target_network.weights]
    dqn.train_iteration(runner)  # steps 10-12: copied at 12, the last step
    assert target_matches()
    assert not all(
        np.array_equal(a, w.numpy()) for a, w in zip(copied_at_8, dqn.target_network.weights, strict=True)
    )
    assert int(dqn.optimizer.iterations.numpy()) == 12


def test_polyak_updates_move_the_target_part_of_the_way():
    dqn = tiny_dqn(gradient_steps=1, target_update_interval=1, tau=0.25)
    before = [weight.numpy() for weight in dqn.target_network.weights]
    dqn.train_iteration(EnvRunner.make(CARTPOLE, 1, seed=0))
    for old, target, online in zip(before, dqn.target_network.weights, dqn.q_network.weights, strict=True):
        np.testing.assert_allclose(target.numpy(), 0.25 * online.numpy() + 0.75 * old, rtol=1e-5, atol=1e-7)


def test_checkpointed_state_restores_the_replay_buffer_and_generator(tmp_path):
    dqn = tiny_dqn()
    runner = EnvRunner.make(CARTPOLE, 1, seed=0)
    for _ in range(5):
        dqn.train_iteration(runner)
    dqn.save(tmp_path)
    restored = tiny_dqn()
    restored.restore(tmp_path)
    for name, array in dqn.replay.gather_all().items():
        np.testing.assert_array_equal(restored.replay.gather_all()[name], array)
    assert restored.rng.random() == dqn.rng.random()
    np.testing.assert_array_equal(restored.q_network(runner.observations), dqn.q_network(runner.observations))


@pytest.mark.slow
def test_shipped_config_solves_cartpole_for_at_least_4_of_5_seeds(tmp_path):
    """Greedy AverageReturn >= 475 over 20 episodes, with the defaults `gymserve train` ships."""
    solved = []
    for seed in range(5):
        result = train(
            "dqn", CARTPOLE, tmp_path / str(seed), {"seed": seed, "max_steps": 50_000}, progress_bar=False
        )
        if result.stop_reason == "target_reward":
            assert result.state.evaluation_return >= 475
            solved.append(seed)
    assert len(solved) >= 4, f"solved only with seeds {solved}"
    trained = load_trained_policy(tmp_path / str(solved[0]))
    assert trained.evaluation_return >= 475
    assert evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=12345).average_return >= 475


def test_dueling_head_is_value_plus_advantages_minus_their_mean():
    dqn = tiny_dqn(dueling=True)
    observations = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    features = keras.Model(dqn.q_network.inputs, dqn.q_network.get_layer("hidden_0").output)(observations)
    value = dqn.q_network.get_layer("state_value")(features).numpy()
    advantages = dqn.q_network.get_layer("advantages")(features).numpy()
    expected = value + advantages - advantages.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(dqn.q_network(observations).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_renamed_fields_still_load_with_a_deprecation_warning():
    with pytest.warns(FutureWarning, match="'n_step' is deprecated.*'bootstrap_horizon'"):
        config = DQNConfig(n_step=3, target_update_tau=0.5)
    assert (config.bootstrap_horizon, config.tau) == (3, 0.5)
    with pytest.raises(ValueError, match="'n_step' was renamed 'bootstrap_horizon'; give only"):
        DQNConfig(n_step=3, bootstrap_horizon=2)


@pytest.mark.slow
@pytest.mark.parametrize("option", ["dueling", "prioritized_replay"])
def test_short_cartpole_run_with_each_option_beats_random_play(tmp_path, option):
    """About 15 s each: greedy return against a uniformly random policy (about 22 on CartPole)."""
    config = {**TINY_DQN, "hidden_sizes": [32], "max_steps": 4000, "eval_interval": 1000, option: True}
    train("dqn", CARTPOLE, tmp_path / "run", config, progress_bar=False)
    trained = load_trained_policy(tmp_path / "run")
    random_return = evaluate(
        RandomPolicy(trained.policy.observation_space, trained.policy.action_space, seed=0),
        CARTPOLE,
        20,
        seed=5,
    )
    greedy_return = evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=5).average_return
    assert greedy_return >= 4 * random_return.average_return, (greedy_return, random_return.average_return)

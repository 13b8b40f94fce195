import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf
from tensorboard_scalars import tensorboard_scalars

from gymserve.agents import load_trained_policy, train
from gymserve.agents.on_policy.algorithm import clipped_surrogate_loss
from gymserve.agents.on_policy.ppo import PPO, PPOConfig
from gymserve.agents.training.checkpoints import CheckpointStore
from gymserve.agents.training.env_runner import EnvRunner
from gymserve.agents.training.runs import build_algorithm, read_run_info
from gymserve.policies.episodes import evaluate

CARTPOLE = "gymserve/CartPole-v1"


def test_clipped_surrogate_loss_by_hand():
    ratios = np.array([0.5, 1.0, 1.5, 0.5])
    advantages = tf.constant([1.0, -1.0, 2.0, -1.0])
    old_log_probs = tf.constant([-1.0, -2.0, -0.5, -1.5])
    log_probs = tf.Variable(old_log_probs + np.log(ratios).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = clipped_surrogate_loss(log_probs, old_log_probs, advantages, clip_coef=0.2)
    # min(r A, clip(r, 0.8, 1.2) A): 0.5 (unclipped), -1, 1.2 * 2 = 2.4 (clipped), 0.8 * -1 = -0.8 (clipped)
    assert float(loss) == pytest.approx(-(0.5 - 1.0 + 2.4 - 0.8) / 4, rel=1e-6)
    # d/dlog_prob of -r A / 4 where unclipped; clipped terms pass no gradient
    np.testing.assert_allclose(
        tape.gradient(loss, log_probs), [-0.5 / 4, 1.0 / 4, 0.0, 0.0], rtol=1e-6, atol=1e-8
    )


def test_clip_fraction_counts_the_ratios_outside_the_clip_range_by_hand():
    env = gym.make(CARTPOLE)
    old_log_probs = tf.constant([-1.0, -2.0, -0.5, -1.5])
    # 1.102 is outside 1 + 0.1 though its log ratio, 0.097, is inside 0.1: the range bounds r, not log r
    log_probs = old_log_probs + np.log([0.5, 1.0, 1.07, 1.102]).astype(np.float32)
    constant = PPO(PPOConfig(clip_coef=0.1), env.observation_space, env.action_space)
    decayed = PPO(PPOConfig(clip_coef=0.1, linear_decay_steps=100), env.observation_space, env.action_space)
    fraction = tf.constant(0.5)
    assert float(constant.policy_metrics(log_probs, old_log_probs, fraction)["clip_fraction"]) == 0.5
    # the decayed clip is 0.05, so 1.07 is outside it too
    assert float(decayed.policy_metrics(log_probs, old_log_probs, fraction)["clip_fraction"]) == 0.75


def test_the_clip_fraction_is_zero_with_one_step_per_rollout_and_large_with_many_large_ones():
    env = gym.make(CARTPOLE)

    def clip_fractions(iterations: int, **config: object) -> list[float]:
        ppo = PPO(
            PPOConfig(num_envs=2, n_steps=32, hidden_sizes=(16,), **config),
            env.observation_space,
            env.action_space,
        )
        runner = EnvRunner.make(CARTPOLE, 2, seed=0)
        return [ppo.train_iteration(runner)["ppo/clip_fraction"] for _ in range(iterations)]

    assert clip_fractions(3, batch_size=64, n_epochs=1) == [0.0] * 3, "a lone step acts as it learns"
    assert clip_fractions(3, batch_size=8, n_epochs=10, learning_rate=0.01)[-1] > 0.1


def test_a_rollout_acted_elsewhere_is_valued_again_by_the_learners_critic():
    """Remote actors receive only the policy's weights, so the values their critics recorded are
    stale; learning from such a rollout gives the same update whatever values it carries."""
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    config = PPOConfig(num_envs=2, n_steps=8, batch_size=8, n_epochs=2)
    ppo = PPO(config, runner.observation_space, runner.action_space)
    rollout = ppo.collect(runner)
    weights = ppo.actor_critic.both.get_weights()
    slots = [variable.numpy() for variable in ppo.optimizer.variables]
    stream = ppo._generator.state.numpy()

    def learn(values: tf.Tensor) -> tuple[dict[str, float], list[np.ndarray]]:
        ppo.actor_critic.both.set_weights(weights)
        for variable, value in zip(ppo.optimizer.variables, slots, strict=True):
            variable.assign(value)
        ppo._generator.state.assign(stream)
        metrics = ppo.learn_from_rollout(rollout._replace(values=values), total_steps=16)
        return metrics, ppo.actor_critic.both.get_weights()

    recorded, recorded_weights = learn(rollout.values)
    wrong, wrong_weights = learn(tf.fill(tf.shape(rollout.values), 1e6))

    assert recorded == wrong
    for a, b in zip(recorded_weights, wrong_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights, recorded_weights, strict=True))


def test_batch_size_must_tile_the_rollout():
    with pytest.raises(
        ValueError, match=r"batch_size 100 does not divide the rollout of n_steps \* num_envs = 256"
    ):
        PPOConfig(num_envs=8, n_steps=32, batch_size=100)


def test_learning_rate_and_clip_decay_linearly_with_the_run_steps():
    config = PPOConfig(
        num_envs=2, n_steps=8, batch_size=16, n_epochs=1, hidden_sizes=(8,), linear_decay_steps=64
    )
    env = gym.make(CARTPOLE)
    ppo = PPO(config, env.observation_space, env.action_space)
    runner = EnvRunner.make(CARTPOLE, 2, seed=0)
    fractions = []
    for _ in range(3):
        fractions.append(ppo.decay_fraction(runner.total_steps))
        ppo.train_iteration(runner)
        assert ppo.learning_rate == pytest.approx(config.learning_rate * fractions[-1], rel=1e-6)
    assert fractions == pytest.approx([1.0, 0.75, 0.5])
    assert runner.total_steps == 48, "in-graph steps are counted on the trainer's runner"


def test_plateau_reductions_compose_with_the_linear_decay(tmp_path):
    # A learning rate this small leaves the greedy policy as it was, so evaluations stop improving
    # and every one of them (patience 1) halves the rate, while the linear decay keeps running.
    config = {
        "num_envs": 2,
        "n_steps": 16,
        "batch_size": 32,
        "n_epochs": 1,
        "hidden_sizes": [8],
        "learning_rate": 1e-6,
        "linear_decay_steps": 640,
        "lr_plateau_patience": 1,
        "min_learning_rate": 0.0,
        "max_steps": 320,
        "eval_interval": 64,
        "eval_episodes": 1,
        "summary_interval": 32,
        "target_reward": None,
    }
    result = train("ppo", CARTPOLE, tmp_path, config, progress_bar=False)
    evaluations = [(row["step"], row["eval_return"]) for row in result.history.evaluations()]
    plateau_steps = [
        step for index, (step, value) in enumerate(evaluations) if index and value <= evaluations[0][1]
    ]
    plateaus = len(plateau_steps)
    assert plateaus >= 2, evaluations
    assert all(value <= evaluations[0][1] for _, value in evaluations), "no later evaluation improved"
    scalars = tensorboard_scalars(tmp_path)
    rates = dict(scalars["train/learning_rate"])
    assert rates.keys() == set(range(32, 321, 32))
    for step, rate in rates.items():
        # Set at the start of the iteration that ended at `step`, after the plateaus before it.
        decay = 1 - (step - 32) / 640
        halvings = sum(1 for plateau_step in plateau_steps if plateau_step < step)
        assert rate == pytest.approx(1e-6 * decay * 0.5**halvings, rel=1e-5), step
        assert dict(scalars["train/learning_rate_scale"])[step] == pytest.approx(0.5**halvings)

    ppo = build_algorithm(read_run_info(tmp_path))
    ppo.restore(CheckpointStore(tmp_path).path("latest"))
    assert ppo.learning_rate_scale == pytest.approx(0.5**plateaus)
    ppo.apply_decay(320)
    assert ppo.learning_rate == pytest.approx(1e-6 * 0.5 * 0.5**plateaus, rel=1e-5)


@pytest.mark.slow
def test_shipped_config_solves_cartpole(tmp_path):
    """Greedy AverageReturn >= 475 over 20 episodes, with the defaults `gymserve train` ships."""
    result = train("ppo", CARTPOLE, tmp_path / "run", progress_bar=False)
    assert result.stop_reason == "target_reward"
    assert result.state.best_evaluation_return >= 475
    assert result.total_steps <= 50_000
    trained = load_trained_policy(tmp_path / "run")
    assert evaluate(trained.policy, CARTPOLE, 20, "greedy", seed=12345).average_return >= 475

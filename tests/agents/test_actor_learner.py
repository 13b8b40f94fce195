"""Training as a library: Actor + Learner + triggers in a user's loop, against `train`.

The reference for the user loop is `gymserve train` itself: with the same seed and config, the
loop of the TF-Agents tutorial (one actor step, one learner iteration) must give the same history
rows and weights, and resume from its checkpoint as `train` does.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest

from gymserve.agents import Actor, Learner, load_trained_policy, make_algorithm, train, triggers
from gymserve.agents.algorithm import UnsupportedInUserLoopError
from gymserve.agents.training.actor_learner import collect_metrics
from gymserve.agents.training.checkpoints import CheckpointStore

PENDULUM = "Pendulum-v1"
CARTPOLE = "gymserve/CartPole-v1"
SAC = {
    "max_steps": 1000,
    "seed": 5,
    "learning_starts": 200,
    "batch_size": 32,
    "actor_hidden_sizes": [16],
    "critic_hidden_sizes": [16],
    "eval_interval": 400,
    "eval_episodes": 1,
    "checkpoint_interval": 400,
}
DQN = {"max_steps": 300, "seed": 1, "learning_starts": 100, "batch_size": 16, "hidden_sizes": [16]}


def rows_without_wall_time(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open() as file:
        return [
            {name: value for name, value in row.items() if name != "wall_time"}
            for row in csv.DictReader(file)
        ]


def latest_weights(run_dir: Path) -> list[np.ndarray]:
    return load_trained_policy(run_dir, "latest").policy.network.get_weights()


def user_loop(
    run_dir: Path, until: int, config: dict, name: str = "sac", env_id: str = PENDULUM, steps_per_run: int = 1
) -> Learner:
    """The tutorial's loop with `gymserve train`'s evaluations and checkpoints, run to step `until`."""
    algorithm = make_algorithm(name, env_id, config)
    actor = Actor(env_id, algorithm.collect_policy, steps_per_run=steps_per_run, observers=[algorithm.store])
    learner = Learner(
        algorithm, run_dir, actor=actor, triggers=[triggers.EvaluationTrigger(), triggers.CheckpointTrigger()]
    )
    while learner.state.total_steps < until:
        actor.run()
        learner.run(iterations=1)
    learner.finish()
    return learner


@pytest.mark.slow
def test_the_user_loop_matches_train_and_resumes_exactly(tmp_path):
    train("sac", PENDULUM, tmp_path / "train", SAC, progress_bar=False)
    user_loop(tmp_path / "loop", SAC["max_steps"], SAC)
    expected = rows_without_wall_time(tmp_path / "train")
    assert len([row for row in expected if row["eval_return"]]) == 3  # 400, 800 and the final 1000
    assert rows_without_wall_time(tmp_path / "loop") == expected
    for loop, trained in zip(
        latest_weights(tmp_path / "loop"), latest_weights(tmp_path / "train"), strict=True
    ):
        np.testing.assert_array_equal(loop, trained)

    # Stopped at a checkpoint (step 800), a new loop on the same directory goes on from there.
    first = user_loop(tmp_path / "resumed", 800, SAC)
    assert CheckpointStore(tmp_path / "resumed").trainer_state("latest")["total_steps"] == 800
    resumed = user_loop(tmp_path / "resumed", SAC["max_steps"], SAC)
    assert (first.started_at_step, resumed.started_at_step) == (0, 800)
    assert rows_without_wall_time(tmp_path / "resumed") == expected
    for loop, trained in zip(
        latest_weights(tmp_path / "resumed"), latest_weights(tmp_path / "train"), strict=True
    ):
        np.testing.assert_array_equal(loop, trained)


@pytest.mark.parametrize("steps_per_run", [1, 16])
def test_a_dqn_user_loop_learns_every_train_freq_steps_as_train_does(tmp_path, steps_per_run):
    """DQN learns one round every train_freq (here 64) steps; its evaluations (every 100 steps)
    come at the end of the iteration that crosses them (128, 256), and it stops at 320."""
    config = {**DQN, "eval_interval": 100, "eval_episodes": 1, "checkpoint_interval": 100}
    result = train("dqn", CARTPOLE, tmp_path / "train", config, progress_bar=False)
    assert (result.total_steps, result.gradient_steps) == (320, 4 * 128)
    user_loop(tmp_path / "loop", DQN["max_steps"], config, "dqn", CARTPOLE, steps_per_run)
    expected = rows_without_wall_time(tmp_path / "train")
    assert [row["step"] for row in expected if row["eval_return"]] == ["128", "256", "320"]
    assert rows_without_wall_time(tmp_path / "loop") == expected
    for loop, trained in zip(
        latest_weights(tmp_path / "loop"), latest_weights(tmp_path / "train"), strict=True
    ):
        np.testing.assert_array_equal(loop, trained)


@pytest.mark.parametrize("runs", [{"steps_per_run": 3}, {"steps_per_run": 128}, {"episodes_per_run": 1}])
def test_an_actor_that_cannot_run_on_trains_schedule_is_refused_naming_train_freq(tmp_path, runs):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(CARTPOLE, algorithm.collect_policy, observers=[algorithm.store], **runs)
    with pytest.raises(ValueError, match=r"train_freq=64 .*divides train_freq"):
        Learner(algorithm, tmp_path / "run", actor=actor)
    assert actor.runner is None and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_ported_minitaur_tutorial_exports_on_schedule_policies_that_load(capsys):
    """The SAC Minitaur section of docs/coming_from_tf_agents.md, run alone: exports at 1,000 and
    2,000 steps, each loading with TensorFlow and acting in the env's action bounds."""
    from test_docs_tf_agents import PAGE, python_blocks

    from gymserve.policies import load

    section = PAGE.read_text(encoding="utf-8").split("## SAC on Minitaur")[1]
    namespace: dict = {}
    for number, block in enumerate(python_blocks(section), start=1):
        exec(compile(block, f"SAC Minitaur block {number}", "exec"), namespace)
    repository = Path(namespace["saved_model_dir"])
    assert sorted(path.name for path in repository.iterdir() if path.name.isdigit()) == ["1000", "2000"]
    for version in (1000, 2000):
        metadata = json.loads((repository / str(version) / "policy.json").read_text())
        assert (metadata["train_step"], metadata["algorithm"]) == (version, "sac")
        policy = load(repository / str(version), backend="tensorflow")
        actions = policy.action(np.zeros((3, 28), np.float32)).action
        assert actions.shape == (3, 8) and np.all(np.abs(actions) <= 1.0)
    assert len(namespace["returns"]) == 3  # before training, at 1,000 and at 2,000 steps
    assert namespace["agent_learner"].state.total_steps == 2000
    assert "step = 2000: loss = " in capsys.readouterr().out


@pytest.mark.slow
def test_a_learner_with_ray_actors_trains_and_checkpoints(tmp_path):
    ray = pytest.importorskip("ray")
    from gymserve.agents.distributed import DistributedConfig

    algorithm = make_algorithm("dqn", CARTPOLE, {**DQN, "max_steps": 600, "num_envs": 2})
    ray.init(num_cpus=1, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        learner = Learner(
            algorithm,
            tmp_path,
            distributed=DistributedConfig(actors=1),
            triggers=[triggers.CheckpointTrigger(300)],
        )
        losses = []
        while learner.state.total_steps < 600:
            losses.append(learner.run(iterations=1).loss)
        learner.finish(evaluate=False)
    finally:
        ray.shutdown()
    assert any(loss is not None and np.isfinite(loss) for loss in losses)
    assert CheckpointStore(tmp_path).trainer_state("latest")["total_steps"] >= 600
    assert learner.history.episodes > 0


def test_an_off_policy_algorithm_trains_on_a_batch_the_user_samples(tmp_path):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    with pytest.raises(ValueError, match="fewer than learning_starts"):
        algorithm.sample_experience()
    actor = Actor(CARTPOLE, algorithm.collect_policy, steps_per_run=100, observers=[algorithm.store])
    actor.run()
    before = [weight.copy() for weight in algorithm.policy_network().get_weights()]
    metrics = algorithm.train(algorithm.sample_experience())
    assert "dqn/loss" in metrics and np.isfinite(metrics["dqn/loss"])
    after = algorithm.policy_network().get_weights()
    assert any(not np.array_equal(old, new) for old, new in zip(before, after, strict=True))


def test_an_actor_runs_steps_or_episodes_and_feeds_its_metrics():
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    seen = []
    metrics = collect_metrics(5)
    actor = Actor(CARTPOLE, algorithm.policy(), episodes_per_run=2, observers=[seen.append], metrics=metrics)
    actor.run()
    assert len(seen) == actor.total_steps >= 2  # one transition per step of its single env
    assert metrics[0].result() != 0.0 and metrics[1].result() * 2 <= actor.total_steps


def test_on_policy_algorithms_are_refused_in_a_user_loop_with_the_way_out_named(tmp_path):
    algorithm = make_algorithm("ppo", CARTPOLE, {"max_steps": 256})
    for call in (lambda: algorithm.collect_policy, lambda: algorithm.train({}), algorithm.sample_experience):
        with pytest.raises(UnsupportedInUserLoopError, match=r"collects=True"):
            call()
    assert not (tmp_path / "run").exists()


def test_a_learner_needs_exactly_one_source_and_a_made_algorithm(tmp_path):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(CARTPOLE, algorithm.collect_policy, steps_per_run=1, observers=[algorithm.store])
    for sources in ({}, {"actor": actor, "collects": True}):
        with pytest.raises(ValueError, match="exactly one source of experience"):
            Learner(algorithm, tmp_path / "run", **sources)
    forgetful = Actor(CARTPOLE, algorithm.collect_policy, steps_per_run=1)
    with pytest.raises(ValueError, match=r"observers=\[algorithm.store"):
        Learner(algorithm, tmp_path / "run", actor=forgetful)
    with pytest.raises(ValueError, match=r"algorithm\.collect_policy"):
        Learner(algorithm, tmp_path / "run", actor=Actor(CARTPOLE, algorithm.policy(), steps_per_run=1))
    from gymserve.agents.training.runs import RunInfo, build_algorithm

    unmade = build_algorithm(RunInfo("dqn", CARTPOLE, algorithm.config, {}))
    with pytest.raises(ValueError, match="make_algorithm"):
        Learner(unmade, tmp_path / "run", collects=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({}, ValueError, "either steps_per_run steps or episodes_per_run episodes"),
        ({"steps_per_run": 1, "episodes_per_run": 1}, ValueError, "either steps_per_run"),
        ({"steps_per_run": 0}, ValueError, "positive integer, got 0"),
        (
            {"steps_per_run": 1, "env": 42},
            TypeError,
            "an env id, a gymnasium Env, a list of them or a SyncVectorEnv",
        ),
        ({"steps_per_run": 1, "policy": "greedy"}, TypeError, "collect_policy or a gymserve policy"),
    ],
)
def test_bad_actor_arguments_say_what_is_expected(arguments, error, message):
    from gymserve.policies import RandomPolicy

    env = gym.make(CARTPOLE)
    defaults = {"env": CARTPOLE, "policy": RandomPolicy(env.observation_space, env.action_space)}
    with pytest.raises(error, match=message):
        Actor(**(defaults | arguments))


def test_interval_triggers_fire_where_the_step_count_crosses_their_interval():
    fired = []
    learner = SimpleNamespace(state=SimpleNamespace(total_steps=150), config=None)
    trigger = triggers.IntervalTrigger(100, lambda: fired.append(learner.state.total_steps))
    trigger.attach(learner)  # counted from where the learner starts: 150
    for step in (160, 199, 200, 230, 420, 430, 500):
        learner.state.total_steps = step
        trigger(learner)
    assert fired == [200, 420, 500]


def test_scheduled_triggers_take_the_config_interval_when_given_none():
    learner = SimpleNamespace(
        state=SimpleNamespace(total_steps=0),
        config=SimpleNamespace(eval_interval=7, checkpoint_interval=9, summary_interval=11),
        evaluation_listeners=[],
    )
    for trigger, interval in (
        (triggers.EvaluationTrigger(), 7),
        (triggers.CheckpointTrigger(), 9),
        (triggers.StepPerSecondLogTrigger(), 11),
    ):
        trigger.attach(learner)
        assert trigger.interval == interval


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: triggers.IntervalTrigger(0, print), ValueError, "interval must be a positive integer"),
        (lambda: triggers.IntervalTrigger(1.5, print), ValueError, "interval must be a positive integer"),
        (lambda: triggers.IntervalTrigger(10, "print"), TypeError, "must be callable"),
        (lambda: triggers.CheckpointTrigger(-1), ValueError, "interval must be a positive integer"),
        (lambda: triggers.PolicySavedModelTrigger("exports/x", interval=0), ValueError, "interval"),
        (lambda: triggers.PolicySavedModelTrigger("exports/x", 10, keep=0), ValueError, "keep must be"),
    ],
)
def test_bad_trigger_arguments_are_refused_when_made(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_an_export_trigger_without_a_destination_names_what_it_needs(tmp_path):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    with pytest.raises(ValueError, match=r"export_to='REPOSITORY/NAME'.*interval=STEPS"):
        Learner(algorithm, tmp_path, collects=True, triggers=[triggers.PolicySavedModelTrigger()])


def test_trainer_json_of_earlier_versions_still_loads():
    from gymserve.agents.training.actor_learner.state import TrainerState

    earlier = {
        "total_steps": 800,
        "wall_time": 12.5,
        "next_evaluation": 1200,  # the schedules are the triggers' now
        "next_checkpoint": 1600,
        "evaluation_return": -150.0,
        "evaluation_step": 800,
        "best_evaluation_return": -150.0,
        "best_evaluation_step": 800,
        "evaluations_without_improvement": 0,
        "evaluations_since_learning_rate_change": 0,
    }
    state = TrainerState.from_checkpoint(earlier)
    assert (state.total_steps, state.evaluation_return, state.best_evaluation_step) == (800, -150.0, 800)


@pytest.mark.parametrize("kind", ["list", "vector", "env"])
def test_an_actor_steps_a_list_a_sync_vector_env_or_one_env(kind):
    from gymserve.policies import RandomPolicy

    envs = [gym.make(CARTPOLE) for _ in range(1 if kind == "env" else 2)]
    source = {
        "list": envs,
        "vector": gym.vector.SyncVectorEnv([lambda env=env: env for env in envs]),
        "env": envs[0],
    }
    policy = RandomPolicy(envs[0].observation_space, envs[0].action_space, seed=0)
    batches = []
    actor = Actor(source[kind], policy, steps_per_run=3, observers=[batches.append])
    actor.run()
    assert actor.total_steps == 3 * len(envs)
    assert [len(transition.actions) for transition in batches] == [len(envs)] * 3


class CountingEnv(gym.Env):
    """A five-step env that records how it was made (in MADE) and refuses to step once closed."""

    observation_space = gym.spaces.Box(-1.0, 10.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, training: bool = False):
        self.training, self.closed, self.t = training, False, 0
        MADE.append(self)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = int(self.np_random.integers(3))
        return np.array([self.t], np.float32), {}

    def step(self, action):
        if self.closed:
            raise RuntimeError("stepped after close")
        self.t += 1
        return np.array([self.t], np.float32), 1.0, self.t >= 5, False, {}

    def close(self):
        self.closed = True


MADE: list[CountingEnv] = []


@pytest.fixture
def counting_env_id():
    env_id = "tests/Counting-v0"
    gym.register(env_id, entry_point=CountingEnv, kwargs={"training": False})
    MADE.clear()
    yield env_id
    gym.registry.pop(env_id)


def zero_policy():
    """Action 0 everywhere, as a gymserve policy answers."""
    return SimpleNamespace(action=lambda batch: SimpleNamespace(action=np.zeros(len(batch), int)))


def test_only_a_collect_actor_makes_its_envs_with_the_training_options(counting_env_id):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    for policy, training in ((algorithm.collect_policy, True), (zero_policy(), False)):
        MADE.clear()
        actor = Actor(counting_env_id, policy, steps_per_run=1, num_envs=1)
        actor.start(0)
        actor.close()
        assert [env.training for env in MADE] == [training]
    MADE.clear()
    actor = Actor(counting_env_id, zero_policy(), steps_per_run=1, training=True)
    actor.start(0)
    actor.close()
    assert [env.training for env in MADE] == [True]


def test_a_num_envs_mismatch_is_refused_before_any_env_is_made(tmp_path, counting_env_id):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(
        counting_env_id, algorithm.collect_policy, steps_per_run=1, num_envs=2, observers=[algorithm.store]
    )
    with pytest.raises(ValueError, match="num_envs=1"):
        Learner(algorithm, tmp_path / "run", actor=actor)
    assert MADE == []


def test_a_learner_that_fails_to_start_closes_the_envs_it_started(tmp_path, monkeypatch):
    from gymserve.agents.training.actor_learner.collection import LocalCollection

    closed = []
    monkeypatch.setattr(LocalCollection, "close", lambda self: closed.append(self.runner))
    monkeypatch.setattr(Learner, "_start_session", lambda self, progress_bar: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        Learner(make_algorithm("dqn", CARTPOLE, DQN), tmp_path / "run", collects=True)
    assert len(closed) == 1


def test_a_learner_that_fails_to_start_hands_the_actor_back_unstarted(tmp_path, monkeypatch):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(CARTPOLE, algorithm.collect_policy, steps_per_run=1, observers=[algorithm.store])
    with monkeypatch.context() as patched:
        patched.setattr(Learner, "_start_session", lambda self, progress_bar: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            Learner(algorithm, tmp_path, actor=actor)
    assert actor.runner is None
    learner = Learner(algorithm, tmp_path, actor=actor)  # another Learner takes it, as a new actor
    actor.run()
    learner.run()
    assert actor.total_steps == 1
    learner.close()
    actor.close()


def test_more_than_one_iteration_a_call_is_refused_with_an_actor(tmp_path):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(CARTPOLE, algorithm.collect_policy, steps_per_run=1, observers=[algorithm.store])
    learner = Learner(algorithm, tmp_path, actor=actor)
    with pytest.raises(ValueError, match=r"once after each actor\.run\(\)"):
        learner.run(iterations=2)
    learner.close()
    actor.close()


def test_restarting_an_actor_on_given_envs_resets_them_without_closing_them(counting_env_id):
    envs = [gym.make(counting_env_id) for _ in range(2)]
    seen = []
    actor = Actor(envs, zero_policy(), steps_per_run=4, observers=[lambda t: seen.append(t.observations)])
    runs = []
    for _ in range(2):
        actor.start(7)
        actor.run()
        runs.append(np.stack(seen))
        seen.clear()
    assert not any(env.unwrapped.closed for env in envs)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_a_checkpoint_requested_between_iterations_is_written_after_the_next(tmp_path):
    learner = Learner(make_algorithm("dqn", CARTPOLE, DQN), tmp_path, collects=True)
    learner.request_checkpoint("latest")
    learner.run(iterations=1)
    assert CheckpointStore(tmp_path).trainer_state("latest")["total_steps"] == learner.state.total_steps == 64
    learner.close()


def test_the_user_loop_refusal_names_every_off_policy_algorithm_registered(monkeypatch):
    from gymserve.agents.training.registry import REGISTRY, AlgorithmEntry

    monkeypatch.setitem(REGISTRY, "myq", AlgorithmEntry("my.module:MyQ", ("Discrete",), "off-policy", "mine"))
    algorithm = make_algorithm("ppo", CARTPOLE, {"max_steps": 256})
    with pytest.raises(UnsupportedInUserLoopError, match=r"algorithms, dqn, sac, td3, ddpg, myq, train"):
        algorithm.collect_policy  # noqa: B018


def test_an_actor_writes_its_metrics_to_its_summary_dir(tmp_path):
    from tensorboard_scalars import tensorboard_scalars

    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(
        CARTPOLE,
        algorithm.policy(),
        episodes_per_run=1,
        metrics=collect_metrics(2),
        summary_dir=tmp_path / "tensorboard",
    )
    actor.run()
    actor.close()
    scalars = tensorboard_scalars(tmp_path)
    assert set(scalars) == {"Metrics/AverageReturn", "Metrics/AverageEpisodeLength"}
    [(step, length)] = scalars["Metrics/AverageEpisodeLength"]
    assert step == actor.total_steps == length


def test_the_steps_per_second_trigger_logs_the_rate(caplog):
    learner = SimpleNamespace(state=SimpleNamespace(total_steps=0))
    trigger = triggers.StepPerSecondLogTrigger(interval=100)
    trigger.attach(learner)
    learner.state.total_steps = 150
    with caplog.at_level("INFO", logger=triggers.__name__):
        trigger(learner)
    assert re.fullmatch(r"step 150: \d+\.\d steps/s", caplog.messages[-1])


def test_finish_records_the_actor_steps_since_the_last_iteration(tmp_path):
    algorithm = make_algorithm("dqn", CARTPOLE, DQN)
    actor = Actor(CARTPOLE, algorithm.collect_policy, steps_per_run=1, observers=[algorithm.store])
    learner = Learner(algorithm, tmp_path, actor=actor)
    for _ in range(70):  # one iteration of train_freq=64 steps, and 6 more
        actor.run()
        learner.run(iterations=1)
    assert learner.state.total_steps == 64
    learner.finish(evaluate=False)
    assert CheckpointStore(tmp_path).trainer_state("latest")["total_steps"] == 70

"""`gymserve demo`: the pretrained policies served over gRPC, played through the server, measured.

    result = run_demo()                 # serve, play greedy and stochastic episodes, stop
    print(format_table(result.rows))

The server runs in this process on a loopback port (a free one by default). Every pretrained
policy whose environment this installation can make (registered, its extra installed) is played
by a `RemotePolicy`, so each action crosses gRPC, and its latency is timed on the client side
around the call. Episode i of either mode starts from the same seeded state. The filmed episode
is played on top of the table's ones and is cut at `EnvSettings.filmed_steps`, because rendering
a frame costs more than a step (a Minitaur frame about 50 ms, ten Minitaur steps).

Without any pretrained policy, a CartPole policy is first trained with PPO's shipped config and
exported to a temporary directory, which takes a few seconds of training.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from gymserve.cli.common import VIDEO_SUFFIXES, CommandError, import_quietly
from gymserve.common.extras import MissingExtraError
from gymserve.policies.base import ActionMode
from gymserve.policies.episodes import Evaluation, run_episode, write_video
from gymserve.pretrained import PretrainedPolicy, pretrained_policies
from gymserve.serving.client.policy_client import PolicyClient
from gymserve.serving.client.remote_policy import RemotePolicy
from gymserve.serving.server.config import ServerConfig, UnservablePolicyError
from gymserve.serving.server.policy_server import PolicyServer

Progress = Callable[[str], None]

DESCRIPTION = (
    "Start a policy server in this process on a loopback port, play greedy and stochastic episodes of "
    "every pretrained policy through it, print a table of returns, episode lengths and client-side action "
    "latencies, film one greedy episode, and stop the server. Without pretrained policies, a CartPole "
    "policy is trained first."
)

MODES = (ActionMode.GREEDY, ActionMode.STOCHASTIC)
FALLBACK_ALGORITHM = "ppo"  # its shipped config solves CartPole in about ten thousand steps
FALLBACK_ENV = "gymserve/CartPole-v1"
FALLBACK_NAME = "cartpole"


@dataclass(frozen=True)
class EnvSettings:
    """How the demo plays one environment."""

    episodes: int  # per mode, unless the caller asks for another number
    filmed_steps: int  # length cap of the filmed episode
    video: str | None = None  # file the demo films this environment to by default; None: only on request


ENV_SETTINGS: dict[str, EnvSettings] = {
    "gymserve/CartPole-v1": EnvSettings(episodes=5, filmed_steps=500),
    "gymserve/Minitaur-v0": EnvSettings(episodes=2, filmed_steps=500, video="minitaur.mp4"),
    "gymserve/AtariPong-v0": EnvSettings(episodes=1, filmed_steps=2000),  # a whole game: about 1,700 steps
}
OTHER_ENV_SETTINGS = EnvSettings(episodes=3, filmed_steps=300)


class DemoError(Exception):
    """A pretrained policy the server failed to load: the demo would show a broken installation."""


@dataclass(frozen=True)
class DemoRow:
    """The episodes of one policy in one action mode, played through the server."""

    policy: str
    env_id: str
    mode: ActionMode
    evaluation: Evaluation  # the returns and lengths of the episodes
    action_seconds: np.ndarray  # client-side time of every action call

    @property
    def episodes(self) -> int:
        return len(self.evaluation.returns)

    @property
    def std_return(self) -> float:
        return float(np.std(self.evaluation.returns))

    def latency_ms(self, percentile: float) -> float:
        return float(np.percentile(self.action_seconds, percentile) * 1000.0)


@dataclass(frozen=True)
class DemoResult:
    """The table's rows, the video written (if any) and where the server listened."""

    rows: list[DemoRow]
    video: Path | None
    address: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--episodes",
        type=int,
        help="episodes per policy and mode (default: 5 for CartPole, 2 for Minitaur, 1 for Pong)",
    )
    parser.add_argument(
        "--video",
        metavar="FILE",
        help="film a greedy episode to FILE, .mp4 or .gif (default: minitaur.mp4 when there is a pretrained "
        "Minitaur policy, else no video)",
    )
    parser.add_argument("--no-video", action="store_true", help="film nothing")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: 0, a free one)")


def run(args: argparse.Namespace) -> None:
    from gymserve.policies import PolicyLoadError

    import_quietly("pybullet", "demo", optional=True)
    try:
        result = run_demo(args.episodes, video=args.video, film=not args.no_video, port=args.port)
    except (ValueError, DemoError, PolicyLoadError) as error:
        raise CommandError(str(error)) from None
    print()
    print(format_table(result.rows))
    if result.video is not None:
        print(f"video written to {result.video}")


def settings_for(env_id: str) -> EnvSettings:
    return ENV_SETTINGS.get(env_id, OTHER_ENV_SETTINGS)


def run_demo(
    episodes: int | None = None,
    *,
    video: str | Path | None = None,
    film: bool = True,
    port: int = 0,
    seed: int = 0,
    repository: Path | None = None,
    progress: Progress | None = None,
) -> DemoResult:
    """Serve the pretrained policies (of `repository`, default the package's), play them, stop the server.

    `episodes` per mode defaults to each environment's `EnvSettings.episodes`. With `film`, one
    greedy episode is filmed to `video`, or to the default file of the first environment that
    has one; a `video` name films the first policy whose environment has a default file, else
    the first policy played. `progress` receives one line per step of the way (default: print).
    """
    progress = progress or _print_now
    if episodes is not None and episodes < 1:
        raise ValueError(f"episodes must be at least 1, got {episodes}")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be from 0 (a free one) to 65535, got {port}")
    if video is not None and Path(video).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video file must end in .mp4 or .gif, got {Path(video).name!r}")
    with tempfile.TemporaryDirectory(prefix="gymserve-demo-") as workdir:
        policies = _playable(pretrained_policies(repository), progress)
        if not policies:
            policies = [train_fallback_policy(Path(workdir), progress)]
        filmed = _filmed(policies, video) if film else None
        with _serve(policies, port, progress) as server, PolicyClient(server.address) as client:
            rows = []
            for policy in policies:
                count = episodes or settings_for(policy.env_id).episodes
                rows.extend(_play(client, policy, mode, count, seed, progress) for mode in MODES)
            frames, fps = _film(client, filmed[0], seed, progress) if filmed else ([], 0.0)
            progress(f"stopping the server at {server.address}")
    # Written once the server is down: the video encoder is a forked process, and forking beside
    # running gRPC threads makes gRPC complain.
    video_path = write_video(frames, filmed[1], fps) if filmed else None
    return DemoResult(rows, video_path, server.address)


def format_table(rows: list[DemoRow]) -> str:
    """The rows as an aligned text table: returns as mean ± std, latencies in milliseconds."""
    header = ("policy", "env", "mode", "episodes", "return", "length", "p50 ms", "p99 ms")
    lines = [header] + [
        (
            row.policy,
            row.env_id,
            row.mode.value,
            str(row.episodes),
            f"{row.evaluation.average_return:.2f} ± {row.std_return:.2f}",
            f"{row.evaluation.average_episode_length:.1f}",
            f"{row.latency_ms(50):.3f}",
            f"{row.latency_ms(99):.3f}",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def train_fallback_policy(workdir: Path, progress: Progress) -> PretrainedPolicy:
    """Train CartPole with the fallback algorithm's shipped config and export it under `workdir`."""
    from gymserve.agents import load_trained_policy, train
    from gymserve.policies import TrainingInfo, export_policy

    progress(
        f"no pretrained policy: training {FALLBACK_ENV} with {FALLBACK_ALGORITHM} "
        f"(shipped config) in {workdir}"
    )
    result = train(FALLBACK_ALGORITHM, FALLBACK_ENV, workdir / "run", progress_bar=True)
    if result.interrupt_signal is not None:  # a run in a temporary folder: nothing to resume
        raise KeyboardInterrupt
    progress(
        f"trained for {result.total_steps} steps in {result.wall_time:.1f} s "
        f"({result.stop_reason}, greedy AverageReturn {result.state.evaluation_return:.2f})"
    )
    trained = load_trained_policy(result.run_dir)
    info = TrainingInfo(
        env_id=trained.env_id,
        algorithm=trained.algorithm,
        train_step=trained.train_step,
        evaluation=trained.evaluation,
    )
    export_dir = workdir / FALLBACK_NAME
    metadata = export_policy(trained.policy, export_dir, ("onnx",), info)
    progress(f"exported the best checkpoint (step {trained.train_step}) to {export_dir}")
    return PretrainedPolicy(FALLBACK_NAME, export_dir, metadata)


def _load_failures(policies: list[PretrainedPolicy]) -> list[str]:
    """`NAME version 1: reason` for each pretrained export (one version each) that does not load."""
    from gymserve.policies import PolicyLoadError, load

    failures = []
    for policy in policies:
        try:
            load(policy.path)
        except PolicyLoadError as error:
            failures.append(f"{policy.name} version 1: {error}")
    return failures


def _print_now(line: str) -> None:
    print(line, flush=True)


def _playable(policies: list[PretrainedPolicy], progress: Progress) -> list[PretrainedPolicy]:
    """The policies whose environment Gymnasium can make here; the others are reported and skipped."""
    playable = []
    for policy in policies:
        reason = _unplayable_reason(policy.env_id)
        if reason is None:
            playable.append(policy)
        else:
            progress(f"skipping {policy.name}: {reason}")
    return playable


def _unplayable_reason(env_id: str | None) -> str | None:
    """Why `env_id` cannot be played in this installation (unknown, or its extra is missing)."""
    if env_id not in gym.registry:
        return f"its environment {env_id!r} is not registered"
    try:
        gym.make(env_id).close()
    except MissingExtraError as error:
        return str(error)
    return None


def _filmed(
    policies: list[PretrainedPolicy], video: str | Path | None
) -> tuple[PretrainedPolicy, Path] | None:
    """The policy to film and the file to film it to, or None when nothing is to be filmed."""
    for policy in policies:
        default = settings_for(policy.env_id).video
        if default is not None:
            return policy, Path(video or default)
    return (policies[0], Path(video)) if video is not None else None


@contextmanager
def _serve(policies: list[PretrainedPolicy], port: int, progress: Progress) -> Iterator[PolicyServer]:
    config = ServerConfig(
        address=f"127.0.0.1:{port}", policies={policy.name: policy.path for policy in policies}
    )
    try:
        server = PolicyServer(config)
    except UnservablePolicyError:  # start-up refuses it; name each policy that cannot load, and why
        raise DemoError(
            f"the server could not load every pretrained policy: {'; '.join(_load_failures(policies))}"
        ) from None
    with server:
        for policy in policies:
            progress(
                f"serving {policy.name} ({policy.metadata.algorithm or 'policy'} on {policy.env_id}) "
                f"at {server.address}"
            )
        yield server


def _play(
    client: PolicyClient,
    policy: PretrainedPolicy,
    mode: ActionMode,
    episodes: int,
    seed: int,
    progress: Progress,
) -> DemoRow:
    returns, lengths, action_seconds = [], [], []
    env = gym.make(policy.env_id)
    try:
        with RemotePolicy(client, policy.name) as remote:
            for index in range(episodes):
                episode = run_episode(env, remote, mode, seed=seed + index)
                returns.append(episode.total_return)
                lengths.append(episode.length)
                action_seconds.extend(episode.action_seconds)
                progress(
                    f"{policy.name} {mode.value} episode {index + 1}/{episodes}: "
                    f"return {episode.total_return:.2f}, length {episode.length}"
                )
    finally:
        env.close()
    return DemoRow(
        policy.name,
        policy.env_id,
        mode,
        Evaluation(np.array(returns), np.array(lengths)),
        np.array(action_seconds),
    )


def _film(
    client: PolicyClient, policy: PretrainedPolicy, seed: int, progress: Progress
) -> tuple[list[np.ndarray], float]:
    """The frames of one greedy episode cut at the environment's `filmed_steps`, and their rate."""
    steps = settings_for(policy.env_id).filmed_steps
    time_limit = gym.spec(policy.env_id).max_episode_steps
    steps = min(steps, time_limit) if time_limit else steps
    progress(f"filming {policy.name}: one greedy episode of at most {steps} steps")
    env = gym.make(policy.env_id, render_mode="rgb_array", max_episode_steps=steps)
    try:
        with RemotePolicy(client, policy.name) as remote:
            episode = run_episode(env, remote, ActionMode.GREEDY, seed=seed, record_frames=True)
    finally:
        env.close()
    progress(f"filmed {episode.length} steps, return {episode.total_return:.2f}")
    return episode.frames, env.metadata.get("render_fps", 30)

"""`gymserve play` of a CNN policy on Pong, as a user runs it: filmed in process, and against a
`gymserve serve` of the same export, which must play the same game from uint8 frames."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import pytest
from image_policies import image_policy
from serving_support import GYMSERVE, read_events_until, skip_unless_ci

from gymserve.cli import main
from gymserve.policies import ActorPolicy, export_policy, load
from gymserve.serving.client import policy_client
from gymserve.serving.client.protos import policy_service_pb2 as pb

PONG = "gymserve/AtariPong-v0"
STEPS = 120
SEED = 3


@pytest.fixture(scope="module", autouse=True)
def _atari_installed() -> None:
    missing = [module for module in ("ale_py", "cv2") if importlib.util.find_spec(module) is None]
    if missing:
        skip_unless_ci(f'{", ".join(missing)} not installed (pip install "gymserve[atari]")')


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small CNN over Pong's frame stacks, exported as `gymserve train` + `export` would."""
    out_dir = tmp_path_factory.mktemp("exports") / "pong"
    export_policy(undecided_policy(), out_dir, metadata={"env_id": PONG, "algorithm": "dqn"})
    return out_dir


def undecided_policy() -> ActorPolicy:
    """An untrained CNN, whose greedy action hardly depends on Pong's screens, with its two best
    actions' biases evened out over random play, so that the screens decide between them."""
    env = gym.make(PONG)
    policy = image_policy(env.observation_space, env.action_space)
    observation, _ = env.reset(seed=0)
    observations = []
    for action in np.random.default_rng(0).integers(env.action_space.n, size=STEPS):
        observations.append(observation)
        observation, *_ = env.step(action)
    q_values = policy.network(np.stack(observations)).numpy()
    best, second = np.argsort(q_values.mean(axis=0))[:-3:-1]
    layer = policy.network.get_layer("q_values")
    kernel, bias = layer.get_weights()
    bias[second] += np.median(q_values[:, best] - q_values[:, second])
    layer.set_weights([kernel, bias])
    return policy


@pytest.fixture(scope="module")
def address(export: Path) -> Iterator[str]:
    server = subprocess.Popen(
        [*GYMSERVE, "serve", "--address", "127.0.0.1:0", "--policy", f"pong={export}"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield read_events_until(server.stderr, "server_started")[-1]["address"]
    finally:
        server.kill()
        server.wait()


@pytest.fixture(scope="module")
def local_run(export: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """What `play --policy EXPORT --video DIR` prints, and DIR."""
    videos = tmp_path_factory.mktemp("local")
    argv = ["play", "--env", PONG, "--policy", str(export), "--seed", str(SEED), "--max-steps", str(STEPS)]
    return _play([*argv, "--video", str(videos)]), videos


def _play(argv: list[str]) -> str:
    """The episode line `gymserve play ARGV` prints (run in this process)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return re.search(r"^episode 1: .*$", out.getvalue(), re.M).group(0)


def test_the_policy_plays_more_than_one_action_in_the_game(export: Path):
    """Else equal games below would not show that the server's actions were the local ones."""
    env, policy = gym.make(PONG), load(export)
    observation, _ = env.reset(seed=SEED)
    actions = []
    for _ in range(STEPS):
        actions.append(int(policy.action(observation).action))
        observation, *_ = env.step(actions[-1])
    assert len(set(actions)) >= 2, actions


def test_video_films_the_games_rgb_screens_at_its_frame_rate(local_run: tuple[str, Path]):
    line, videos = local_run
    assert line.endswith(f"length {STEPS}")
    video = videos / "episode-1.mp4"
    frames = np.stack(imageio.mimread(video, memtest=False))
    env = gym.make(PONG, render_mode="rgb_array")
    env.reset(seed=SEED)
    screen = env.render()
    assert frames.shape == (STEPS + 1, *screen.shape)  # the reset screen, then one per step
    assert np.abs(frames[0].astype(int) - screen).mean() < 3  # the reset screen, through the codec
    assert len({frame.tobytes() for frame in frames}) > STEPS // 2  # the game moves
    assert iio.immeta(video)["fps"] == env.metadata["render_fps"]


def test_remote_play_sends_uint8_frames_and_plays_the_local_game(
    address: str,
    local_run: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
):
    dtypes = set()
    build = policy_client.act_request

    def recording_act_request(*args, **kwargs):
        request = build(*args, **kwargs)
        dtypes.add(request.observations.dtype)
        return request

    monkeypatch.setattr(policy_client, "act_request", recording_act_request)
    line = _play(
        ["play", "--env", PONG, "--remote", address, "--policy", "pong", "--seed", str(SEED),
         "--max-steps", str(STEPS), "--video", str(tmp_path)]
    )  # fmt: skip
    assert "fork" not in capfd.readouterr().err  # filming beside the gRPC client does not upset gRPC
    local_line, local_videos = local_run
    assert line == local_line
    assert dtypes == {pb.DATA_TYPE_UINT8}
    remote_frames = imageio.mimread(tmp_path / "episode-1.mp4", memtest=False)
    local_frames = imageio.mimread(local_videos / "episode-1.mp4", memtest=False)
    np.testing.assert_array_equal(np.stack(remote_frames), np.stack(local_frames))

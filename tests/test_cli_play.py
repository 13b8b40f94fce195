"""`gymserve play`: --max-steps, a video of every episode, PNG frames, --render, paths checked first."""

import re

import gymnasium as gym
import imageio.v2 as imageio
import imageio.v3 as iio
import pytest

from gymserve.cli import main, play_outputs

CARTPOLE = "gymserve/CartPole-v1"
RANDOM = ["play", "--env", CARTPOLE, "--policy", "random"]


def _lengths(output):
    return [int(length) for length in re.findall(r"^episode \d+: return \S+, length (\d+)$", output, re.M)]


def test_max_steps_ends_every_episode_there(capsys):
    assert main([*RANDOM, "--episodes", "3", "--max-steps", "4"]) == 0
    assert _lengths(capsys.readouterr().out) == [4, 4, 4]


def test_video_films_every_episode_into_a_folder_at_the_envs_frame_rate(tmp_path, capsys):
    folder = tmp_path / "videos"
    assert main([*RANDOM, "--episodes", "3", "--seed", "1", "--max-steps", "6", "--video", str(folder)]) == 0
    lengths = _lengths(capsys.readouterr().out)
    assert sorted(path.name for path in folder.iterdir()) == [
        "episode-1.mp4",
        "episode-2.mp4",
        "episode-3.mp4",
    ]
    render_fps = gym.make(CARTPOLE).metadata["render_fps"]
    for index, length in enumerate(lengths, 1):
        video = folder / f"episode-{index}.mp4"
        assert len(imageio.mimread(video)) == length + 1  # the reset frame, then one per step
        assert iio.immeta(video)["fps"] == render_fps


def test_a_video_file_with_several_episodes_numbers_them(tmp_path, capsys):
    video = tmp_path / "clip.gif"
    assert main([*RANDOM, "--episodes", "2", "--max-steps", "3", "--video", str(video)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip-1.gif", "clip-2.gif"]


def test_the_video_help_names_numbered_files_of_either_kind(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "10000")
    with pytest.raises(SystemExit):
        main(["play", "--help"])
    video_help = next(
        line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("--video")
    )
    assert "FILE-N.mp4 or FILE-N.gif" in video_help


def test_frame_dir_writes_every_frame_of_every_episode_as_png(tmp_path, capsys):
    assert (
        main([*RANDOM, "--episodes", "2", "--max-steps", "3", "--frame-dir", str(tmp_path / "frames")]) == 0
    )
    for episode in ("episode-1", "episode-2"):
        frames = sorted((tmp_path / "frames" / episode).iterdir())
        assert [frame.name for frame in frames] == [f"frame-{number:05d}.png" for number in range(4)]
        image = imageio.imread(frames[0])
        assert image.ndim == 3 and image.shape[2] in (3, 4)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--video", "out.avi"], "a video file must end in .mp4 or .gif"),
        (["--video", "{file}/videos"], "is a file, not a folder"),
        (["--frame-dir", "{file}/frames"], "is a file, not a folder"),
    ],
)
def test_output_paths_are_checked_before_any_episode_is_played(flags, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("")
    flags = [flag.format(file=tmp_path / "file") for flag in flags]
    assert main([*RANDOM, *flags]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "episode 1" not in captured.out


def test_render_without_a_display_says_so_and_what_to_use_instead(capsys, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main([*RANDOM, "--render"]) == 2
    error = capsys.readouterr().err
    assert "--render needs a display" in error and "--video DIR" in error


def test_render_without_a_gui_toolkit_says_so(capsys, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr("matplotlib.pyplot.get_backend", lambda: "agg")
    assert main([*RANDOM, "--render"]) == 2
    assert "--render found no GUI toolkit for its window" in capsys.readouterr().err


def test_render_shows_every_frame_of_every_episode_while_filming(tmp_path, capsys, monkeypatch):
    shown = []

    class Window:
        def __init__(self, title, fps):
            shown.append((title, fps))

        def show(self, frame):
            shown.append(frame.shape)

        def close(self):
            shown.append("closed")

    monkeypatch.setattr(play_outputs, "check_display", lambda: None)
    monkeypatch.setattr(play_outputs, "FrameWindow", Window)
    argv = [*RANDOM, "--render", "--episodes", "2", "--max-steps", "3", "--video", str(tmp_path)]
    assert main(argv) == 0
    render_fps = gym.make(CARTPOLE).metadata["render_fps"]
    frame = imageio.mimread(tmp_path / "episode-1.mp4")[0].shape
    assert shown == [(CARTPOLE, render_fps), *[frame] * 8, "closed"]  # 2 x (reset + 3 steps)

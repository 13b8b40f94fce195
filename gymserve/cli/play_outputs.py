"""Where `gymserve play` shows or keeps its episodes: a window, a video per episode, PNG frames.

The paths and the display are checked before any environment is made, so a mistake costs no played
episode. The window shows the env's `rgb_array` frames as they are drawn (at its render_fps), so
every environment that films can be watched, gymserve's own included, which have no `human` mode.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gymserve.cli.common import VIDEO_SUFFIXES, CommandError

if TYPE_CHECKING:
    import gymnasium as gym
    import numpy as np

    from gymserve.policies.episodes import Episode

NON_INTERACTIVE_BACKENDS = frozenset({"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"})


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--video",
        metavar="DIR|FILE",
        help="film every episode: into DIR/episode-N.mp4, or into FILE.mp4 or FILE.gif for one episode "
        "(FILE-N.mp4 or FILE-N.gif, as FILE ends, for several); at the env's render_fps",
    )
    parser.add_argument(
        "--frame-dir", metavar="DIR", help="write every frame as DIR/episode-N/frame-NNNNN.png"
    )
    parser.add_argument(
        "--render", action="store_true", help="show the episodes in a window (needs a display)"
    )


@dataclass(frozen=True)
class EpisodeOutputs:
    """The checked output options of a `play` command."""

    video: Path | None
    video_is_file: bool
    frame_dir: Path | None
    render: bool
    episodes: int

    @property
    def records_frames(self) -> bool:
        return self.video is not None or self.frame_dir is not None

    @property
    def render_mode(self) -> str | None:
        return "rgb_array" if self.records_frames or self.render else None

    def check_env(self, env: gym.Env) -> None:
        """Refuse an environment that cannot draw frames, before an episode is played."""
        if self.render_mode is not None and self.render_mode not in env.metadata.get("render_modes", ()):
            raise CommandError(f"{env.spec.id} cannot draw rgb_array frames, which {self._flag} needs")

    def window(self, env: gym.Env) -> FrameWindow | None:
        """The window --render shows frames in, None without --render."""
        return FrameWindow(env.spec.id, env.metadata.get("render_fps") or 30) if self.render else None

    @property
    def _flag(self) -> str:
        return "--render" if self.render else "--video" if self.video else "--frame-dir"

    def write(self, index: int, episode: Episode, env: gym.Env) -> list[Path]:
        """Write episode `index`'s (1-based) video and frames; the paths written."""
        import imageio.v2 as imageio

        from gymserve.policies.episodes import write_video

        written = []
        if self.video is not None:
            fps = env.metadata.get("render_fps") or 30
            written.append(write_video(episode.frames, self._video_path(index), fps))
        if self.frame_dir is not None:
            folder = self.frame_dir / f"episode-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            for number, frame in enumerate(episode.frames):
                imageio.imwrite(folder / f"frame-{number:05d}.png", frame)
            written.append(folder)
        return written

    def _video_path(self, index: int) -> Path:
        assert self.video is not None
        if not self.video_is_file:
            self.video.mkdir(parents=True, exist_ok=True)
            return self.video / f"episode-{index}.mp4"
        if self.episodes == 1:
            return self.video
        return self.video.with_name(f"{self.video.stem}-{index}{self.video.suffix}")


def episode_outputs(args: argparse.Namespace) -> EpisodeOutputs:
    """The output options, or a CommandError for a path that cannot be written or a missing display."""
    from gymserve.agents.training.preflight import OutputPathError, check_creatable_folder

    video = Path(args.video) if args.video else None
    frame_dir = Path(args.frame_dir) if args.frame_dir else None
    if args.render:
        check_display()
    video_is_file = video is not None and bool(video.suffix) and not video.is_dir()
    try:
        if video_is_file:
            if video.suffix.lower() not in VIDEO_SUFFIXES:
                raise CommandError(
                    f"--video {video}: a video file must end in .mp4 or .gif (or give a folder)"
                )
            check_creatable_folder(video.parent, "--video's folder")
        elif video is not None:
            check_creatable_folder(video, "--video")
        if frame_dir is not None:
            check_creatable_folder(frame_dir, "--frame-dir")
    except OutputPathError as error:
        raise CommandError(str(error)) from None
    return EpisodeOutputs(video, video_is_file, frame_dir, args.render, args.episodes)


def check_display() -> None:
    """A window needs a display (on Linux, X or Wayland) and a matplotlib GUI backend to draw it."""
    instead = "film the episodes with --video DIR or --frame-dir DIR instead"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise CommandError(
            f"--render needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set; {instead}"
        )
    import matplotlib.pyplot as plt

    if plt.get_backend().lower() in NON_INTERACTIVE_BACKENDS:
        raise CommandError(
            f"--render found no GUI toolkit for its window (matplotlib's backend is {plt.get_backend()}; "
            f"install tkinter or PyQt); {instead}"
        )


class FrameWindow:
    """A matplotlib window showing frames at `fps`, as they come."""

    def __init__(self, title: str, fps: float):
        import matplotlib.pyplot as plt

        self.plt = plt
        self.period = 1.0 / fps
        self.figure, self.axes = plt.subplots()
        self.figure.canvas.manager.set_window_title(title)
        self.axes.set_axis_off()
        self.image = None

    def show(self, frame: np.ndarray) -> None:
        if self.image is None:
            self.image = self.axes.imshow(frame)
        else:
            self.image.set_data(frame)
        self.plt.pause(self.period)  # draws, and handles the window's events meanwhile

    def close(self) -> None:
        self.plt.close(self.figure)

"""Learning curves as PNGs: one run's training returns, their running mean and greedy evaluations,
or several runs' mean returns and evaluations on one figure to compare them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gymserve.agents.training.history import HISTORY_FILE, History
from gymserve.agents.training.runs import RunInfo, read_run_info
from gymserve.common.files import staged

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CURVE_FILE = "learning_curve.png"
COMPARISON_FILE = "learning_curves.png"


def plot_learning_curve(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw `run_dir`'s history to `out` (default RUN_DIR/learning_curve.png) and return the path."""
    run_dir = Path(run_dir)
    info, episodes, evaluations = _run_curves(run_dir)
    out = Path(out) if out is not None else run_dir / CURVE_FILE
    with _returns_figure(out, f"{info.algorithm} on {info.env_id}") as axes:
        steps = [row["step"] for row in episodes]
        axes.plot(
            steps,
            [row["episode_return"] for row in episodes],
            color="tab:blue",
            alpha=0.25,
            lw=0.8,
            label="episode return",
        )
        axes.plot(
            steps, [row["mean_return"] for row in episodes], color="tab:blue", lw=1.8, label="mean return"
        )
        axes.plot(
            [row["step"] for row in evaluations],
            [row["eval_return"] for row in evaluations],
            "o-",
            color="tab:orange",
            lw=1.5,
            ms=4,
            label="greedy evaluation (AverageReturn)",
        )
        if info.config.target_reward is not None:
            axes.axhline(info.config.target_reward, color="gray", ls="--", lw=1, label="target reward")
    return out


def plot_comparison(run_dirs: list[str | Path], labels: list[str], out: str | Path) -> Path:
    """Draw the mean return (line) and greedy evaluations (dots) of each run, one colour per run,
    labelled with `labels` (one per run), to `out`; return the path."""
    if len(labels) != len(run_dirs):
        raise ValueError(
            f"{len(labels)} label(s) for {len(run_dirs)} runs: give one --label per run, or none"
        )
    runs = [_run_curves(Path(run_dir)) for run_dir in run_dirs]
    out = Path(out)
    with _returns_figure(out, " / ".join(sorted({info.env_id for info, _, _ in runs}))) as axes:
        for index, ((_, episodes, evaluations), label) in enumerate(zip(runs, labels, strict=True)):
            color = f"C{index % 10}"
            axes.plot(
                [row["step"] for row in episodes],
                [row["mean_return"] for row in episodes],
                color=color,
                lw=1.8,
                label=f"{label}: mean return",
            )
            axes.plot(
                [row["step"] for row in evaluations],
                [row["eval_return"] for row in evaluations],
                "o--",
                color=color,
                lw=1,
                ms=4,
                label=f"{label}: greedy evaluation",
            )
    return out


@contextlib.contextmanager
def _returns_figure(out: Path, title: str) -> Iterator[Axes]:
    """Axes of return against environment steps to draw on; written to `out` as a PNG on exit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        yield axes
        axes.set_xlabel("environment steps")
        axes.set_ylabel("return")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize="small")
        write_png(figure, out)
    finally:
        plt.close(figure)


def _run_curves(run_dir: Path) -> tuple[RunInfo, list[dict[str, Any]], list[dict[str, Any]]]:
    """A run's info, its rows of ended training episodes and its rows of evaluations."""
    info = read_run_info(run_dir)
    history_path = run_dir / HISTORY_FILE
    if not history_path.exists():
        raise FileNotFoundError(f"{run_dir} has no {HISTORY_FILE} yet; it is written at the first evaluation")
    history = History.read(history_path)
    episodes = [row for row in history.rows if row["episode_return"] is not None]
    return info, episodes, history.evaluations()


def write_png(figure: Figure, out: Path) -> None:
    """Lay out `figure` and write it to `out` as a PNG, staged so a reader never sees half of it."""
    figure.tight_layout()
    with staged(out) as staging:
        figure.savefig(staging, format="png")

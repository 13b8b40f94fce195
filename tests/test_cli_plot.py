"""`gymserve plot RUN RUN ...`: several runs on one figure, one colour and one label per run."""

import pytest

from gymserve.agents.off_policy.dqn import DQNConfig
from gymserve.agents.training import plots
from gymserve.agents.training.history import HISTORY_FILE, History
from gymserve.agents.training.runs import RunInfo
from gymserve.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def _run(directory, returns, evaluations):
    """A run directory with the given episode returns (one every 10 steps) and evaluations."""
    directory.mkdir()
    (directory / "run.json").write_text(RunInfo("dqn", "gymserve/CartPole-v1", DQNConfig()).to_json())
    history = History(mean_return_window=2)
    for index, episode_return in enumerate(returns, 1):
        history.add_episode(10 * index, float(index), episode_return, 10)
    for step, average_return in evaluations:
        history.add_evaluation(step, 0.0, average_return, 10.0)
    history.write(directory / HISTORY_FILE)
    return str(directory)


@pytest.fixture
def figures(monkeypatch):
    """The figures plot writes, kept for a look at their lines."""
    written = []
    write_png = plots.write_png

    def keep(figure, out):
        written.append(
            [
                (line.get_label(), list(line.get_xdata()), list(line.get_ydata()))
                for line in figure.axes[0].lines
            ]
        )
        write_png(figure, out)

    monkeypatch.setattr(plots, "write_png", keep)
    return written


def test_runs_are_compared_on_one_figure_with_their_labels(tmp_path, capsys, figures):
    first = _run(tmp_path / "a", [10.0, 20.0, 30.0], [(20, 25.0), (30, 40.0)])
    second = _run(tmp_path / "b", [5.0, 5.0], [(20, 9.0)])
    out = tmp_path / "both.png"
    argv = ["plot", first, second, "--label", "lr 1e-3", "--label", "lr 1e-4", "--out", str(out)]
    assert main(argv) == 0
    assert out.read_bytes()[:8] == PNG
    assert f"learning curves written to {out}" in capsys.readouterr().out
    (lines,) = figures
    assert lines == [
        ("lr 1e-3: mean return", [10, 20, 30], [10.0, 15.0, 25.0]),
        ("lr 1e-3: greedy evaluation", [20, 30], [25.0, 40.0]),
        ("lr 1e-4: mean return", [10, 20], [5.0, 5.0]),
        ("lr 1e-4: greedy evaluation", [20], [9.0]),
    ]


def test_runs_are_labelled_by_their_folder_names_by_default(tmp_path, capsys, figures, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = [_run(tmp_path / name, [1.0], [(10, 2.0)]) for name in ("seed-0", "seed-1")]
    assert main(["plot", *runs]) == 0
    assert (tmp_path / plots.COMPARISON_FILE).read_bytes()[:8] == PNG
    assert [label for label, _, _ in figures[0]][::2] == ["seed-0: mean return", "seed-1: mean return"]


def test_a_label_count_that_does_not_match_the_runs_is_refused(tmp_path, capsys):
    runs = [_run(tmp_path / name, [1.0], [(10, 2.0)]) for name in ("a", "b")]
    assert main(["plot", *runs, "--label", "only one"]) == 2
    assert "1 --label for 2 RUN_DIRs: give one per run" in capsys.readouterr().err


def test_one_run_is_drawn_with_its_episode_returns(tmp_path, capsys, figures):
    run = _run(tmp_path / "a", [10.0, 20.0], [(20, 25.0)])
    assert main(["plot", run]) == 0
    assert (tmp_path / "a" / plots.CURVE_FILE).read_bytes()[:8] == PNG
    assert figures[0] == [
        ("episode return", [10, 20], [10.0, 20.0]),
        ("mean return", [10, 20], [10.0, 15.0]),
        ("greedy evaluation (AverageReturn)", [20], [25.0]),
    ]

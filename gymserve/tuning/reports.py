"""A study's reports, rewritten after every `tune` call from all the study's trials:

- best_config.json: what the best complete trial learned with: the tuned fields, then the other
  fields its config set otherwise than the shipped one (from `tune --config`), but not the study's
  seed, budget, stop rules and evaluation settings (`STUDY_SETTINGS`), so
  `gymserve train ALGO --env ENV --config best_config.json` trains that config to the shipped
  stop rules (CartPole's 475). With `keep_study_settings` it is the trial's whole config in the
  format of the shipped configs (the shipped file's fields, then every field the trial set
  otherwise): a retrain then repeats the trial exactly;
- trials.csv: one row per trial: number, state, value, last reported step, duration, failure
  reason, run directory and host, then its parameters;
- optimization_history.png: each trial's value (pruned ones at their last report) and the best so far;
- param_importances.png: PED-ANOVA importance of each parameter for the value (from two complete
  trials on; numpy only, where fANOVA would need scikit-learn).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gymserve.agents.training.config import (
    EXPORT_FIELDS,
    STOPPING_FIELDS,
    TrainingConfig,
    read_config_file,
    resolve_config,
    shipped_config_path,
)
from gymserve.agents.training.plots import write_png
from gymserve.common.files import write_text_atomically
from gymserve.tuning.objective import Objective

if TYPE_CHECKING:
    import optuna
    from matplotlib.figure import Figure

BEST_CONFIG_FILE = "best_config.json"
TRIALS_FILE = "trials.csv"
HISTORY_PLOT_FILE = "optimization_history.png"
IMPORTANCES_PLOT_FILE = "param_importances.png"
# What a study sets to compare trials, not how they learn: left out of best_config.json by default.
STUDY_SETTINGS = (
    STOPPING_FIELDS
    | EXPORT_FIELDS
    | {
        "seed",
        "eval_interval",
        "eval_episodes",
        "checkpoint_interval",
        "summary_interval",
    }
)
TRIAL_COLUMNS = ("number", "state", "value", "last_step", "duration_s", "failure", "run_dir", "host")


def write_reports(
    study: optuna.Study,
    out: Path,
    algorithm: str,
    env_id: str,
    config_class: type[TrainingConfig],
    objective: Objective,
    keep_study_settings: bool = False,
) -> list[Path]:
    """Write the reports the study has enough trials for into `out`; the paths written."""
    trials = study.get_trials(deepcopy=False)
    written = [write_trials_table(trials, out / TRIALS_FILE)]
    complete = [trial for trial in trials if trial.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        tuned = list(best.params)
        config = best.user_attrs["config"]
        written.append(
            write_best_config(config, tuned, algorithm, env_id, config_class, out, keep_study_settings)
        )
        written.append(plot_history(trials, objective, out / HISTORY_PLOT_FILE))
    importances = _importances(study) if len(complete) >= 2 else None
    if importances:
        written.append(plot_importances(importances, out / IMPORTANCES_PLOT_FILE))
    return written


def write_best_config(
    config: dict[str, Any],
    tuned: list[str],
    algorithm: str,
    env_id: str,
    config_class: type[TrainingConfig],
    out: Path,
    keep_study_settings: bool = False,
) -> Path:
    """best_config.json from a trial's whole `config` and the names of its `tuned` fields."""
    shipped = resolve_config(config_class, algorithm, env_id).config.model_dump(mode="json")
    changed = {name: value for name, value in config.items() if value != shipped[name]}
    if keep_study_settings:
        shipped_path = shipped_config_path(algorithm, env_id)
        values = read_config_file(shipped_path) if shipped_path.exists() else {}
        values.update(changed)
    else:
        values = {name: config[name] for name in tuned}
        values.update({name: value for name, value in changed.items() if name not in STUDY_SETTINGS})
    path = out / BEST_CONFIG_FILE
    write_text_atomically(path, json.dumps(values, indent=2) + "\n")
    return path


def write_trials_table(trials: list[optuna.trial.FrozenTrial], path: Path) -> Path:
    parameters = sorted({name for trial in trials for name in trial.params})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((*TRIAL_COLUMNS, *parameters))
    for trial in trials:
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        attributes = trial.user_attrs
        row = (
            trial.number,
            trial.state.name,
            trial.value,
            trial.last_step,
            None if duration is None else round(duration, 1),
            attributes.get("failure"),
            attributes.get("run_dir"),
            attributes.get("host"),
            *(trial.params.get(name) for name in parameters),
        )
        writer.writerow("" if value is None else value for value in row)
    write_text_atomically(path, buffer.getvalue())
    return path


def plot_history(trials: list[optuna.trial.FrozenTrial], objective: Objective, path: Path) -> Path:
    figure, axes = _figure()
    for state, marker, color in (("COMPLETE", "o", "tab:blue"), ("PRUNED", "x", "tab:red")):
        shown = [trial for trial in trials if trial.state.name == state and trial.value is not None]
        axes.scatter(
            [trial.number for trial in shown],
            [trial.value for trial in shown],
            marker=marker,
            color=color,
            label=f"{state.lower()} ({len(shown)})",
        )
    complete = [trial for trial in trials if trial.state.name == "COMPLETE"]
    best_so_far, best = [], None
    pick = max if objective.direction == "maximize" else min
    for trial in complete:
        best = trial.value if best is None else pick(best, trial.value)
        best_so_far.append(best)
    axes.step(
        [trial.number for trial in complete], best_so_far, where="post", color="tab:orange", label="best"
    )
    axes.set_xlabel("trial")
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.set_ylabel(objective.describe())
    axes.set_title("optimisation history")
    axes.legend(loc="best", fontsize="small")
    return _save(figure, path)


def plot_importances(importances: dict[str, float], path: Path) -> Path:
    names = list(importances)[::-1]  # most important on top
    figure, axes = _figure()
    axes.barh(names, [importances[name] for name in names], color="tab:blue")
    axes.set_xlabel("importance for the objective (PED-ANOVA, sums to 1)")
    axes.set_title("parameter importances")
    return _save(figure, path)


def _importances(study: optuna.Study) -> dict[str, float] | None:
    """Parameter importances, or None when the complete trials do not vary any parameter."""
    import optuna

    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    try:
        with warnings.catch_warnings():  # PED-ANOVA warns when too few trials to tell parameters apart
            warnings.simplefilter("ignore", UserWarning)
            return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):
        return None


def _figure() -> tuple[Figure, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    axes.grid(alpha=0.3)
    return figure, axes


def _save(figure: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        write_png(figure, path)
    finally:
        plt.close(figure)
    return path

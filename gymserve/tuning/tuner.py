"""`tune`: an Optuna study over one algorithm's config on one environment.

    result = tune("a2c", "gymserve/CartPole-v1", "tuning/a2c", trials=24, jobs=2)

Everything is checked before the first trial: the algorithm, the env, the base config (shipped
defaults < `config_file` < seed, budget and target reward), the search space (search_space.py) and
the storage (storage.py). Then `jobs` threads each take trials until this call has run `trials`:
ask the study for values, start the trial's process (trial_process.py) with the base config and
those values, record its heartbeat while it trains, and mark it failed if the process dies without
telling the study the outcome. Several `tune` calls, on one machine or several, can work on one
study at once; calling again with the same storage and study name adds trials to it.

OUT/
    study.db                    the SQLite study (unless a storage URL is given)
    trials/0007/                run directory of trial 7 (run.json, history.csv, checkpoints/, ...)
    trials/0007/trial.log       what the trial process printed
    best_config.json, trials.csv, optimization_history.png, param_importances.png   (reports.py)

Ctrl-C (SIGINT) stops the trial processes and marks their trials failed; finished trials stay in
the study, the reports are written, and `interrupted` is set on the result.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gymserve.agents.training.config import TrainingConfig, resolve_config, validate_config
from gymserve.agents.training.preflight import OutputPathError, check_creatable_folder
from gymserve.agents.training.registry import algorithm_class
from gymserve.agents.training.runs import environment_spaces
from gymserve.common.extras import require
from gymserve.tuning.errors import TuningError
from gymserve.tuning.objective import Objective
from gymserve.tuning.reports import write_reports
from gymserve.tuning.search_space import SearchSpace
from gymserve.tuning.storage import HEARTBEAT_SECONDS, default_storage_url, open_storage
from gymserve.tuning.trial_process import EVALUATIONS_AVERAGED, PRUNERS, TrialSpec

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

TRIALS_DIRECTORY = "trials"
TRIAL_LOG = "trial.log"


@dataclass(frozen=True)
class TuningResult:
    """What a `tune` call did and where the study's reports are."""

    study_name: str
    storage_url: str
    objective: Objective
    trials_run: int  # by this call
    states: dict[str, int]  # trials of the whole study by state: COMPLETE, PRUNED, FAIL, RUNNING, ...
    best_trial: int | None
    best_value: float | None
    # of the best trial, when the objective is the return: the fewest evaluations one of its runs
    # averaged (fewer than last_evaluations when its budget made fewer)
    best_evaluations_averaged: int | None
    reports: list[Path]
    interrupted: bool


def tune(
    algorithm: str,
    env_id: str,
    out: str | Path,
    trials: int,
    *,
    jobs: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
    max_steps: int | None = None,
    target_reward: float | None = None,
    last_evaluations: int = 3,
    seeds_per_trial: int = 1,
    search_space: str | Path | None = None,
    config_file: str | Path | None = None,
    pruner: str = "median",
    warmup_trials: int = 5,
    seed: int = 0,
    progress_bar: bool = True,
    keep_study_settings: bool = False,
) -> TuningResult:
    """Run `trials` more trials of the study; the objective is documented in objective.py."""
    optuna = _import_optuna()
    for name, value, least in (
        ("trials", trials, 1),
        ("jobs", jobs, 1),
        ("warmup_trials", warmup_trials, 0),
        ("seeds_per_trial", seeds_per_trial, 1),
    ):
        if value < least:
            raise TuningError(f"{name} must be at least {least}, got {value}")
    if last_evaluations < 1:
        raise TuningError(f"last_evaluations must be at least 1, got {last_evaluations}")
    if pruner not in PRUNERS:
        raise TuningError(f"unknown pruner {pruner!r}; expected one of: {', '.join(PRUNERS)}")
    try:
        check_creatable_folder(Path(out), "study folder")
    except OutputPathError as error:
        raise TuningError(str(error)) from None
    config_class = algorithm_class(algorithm).config_class
    environment_spaces(env_id)  # an unknown env fails here, not in every trial
    overrides: dict[str, Any] = {"seed": seed, "target_reward": target_reward}
    if max_steps is not None:
        overrides["max_steps"] = max_steps
    base = resolve_config(config_class, algorithm, env_id, config_file, overrides).config
    space = SearchSpace.read(search_space) if search_space is not None else SearchSpace.shipped(algorithm)
    space.check(config_class)
    objective = Objective(
        target_reward=target_reward, last_evaluations=last_evaluations, seeds=seeds_per_trial
    )
    shortfall = objective.shortfall(base.max_steps, base.eval_interval)
    if shortfall is not None:
        logger.warning("%s", shortfall)

    out = Path(out).resolve()
    if storage is None:
        out.mkdir(parents=True, exist_ok=True)
    storage_url = storage or default_storage_url(out)
    study_name = study_name or f"{algorithm}-{env_id.rsplit('/', 1)[-1]}"
    rdb_storage = open_storage(storage_url)
    study = _open_study(optuna, rdb_storage, storage_url, study_name, algorithm, env_id, objective, base)
    out.mkdir(parents=True, exist_ok=True)

    runner = _TrialRunner(study, rdb_storage, storage_url, algorithm, env_id, out, base, space, objective)
    spec_settings = {"pruner": pruner, "warmup_trials": warmup_trials}
    interrupted = runner.run(trials, jobs, spec_settings, progress_bar)
    states = Counter(trial.state.name for trial in study.get_trials(deepcopy=False))
    best = _best_trial(study)
    return TuningResult(
        study_name=study_name,
        storage_url=storage_url,
        objective=objective,
        trials_run=runner.started,
        states=dict(states),
        best_trial=best.number if best else None,
        best_value=best.value if best else None,
        best_evaluations_averaged=best.user_attrs.get(EVALUATIONS_AVERAGED) if best else None,
        reports=write_reports(study, out, algorithm, env_id, config_class, objective, keep_study_settings),
        interrupted=interrupted,
    )


def _import_optuna() -> Any:
    optuna = require("optuna", "gymserve tune")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _open_study(
    optuna: Any,
    storage: optuna.storages.RDBStorage,
    storage_url: str,
    study_name: str,
    algorithm: str,
    env_id: str,
    objective: Objective,
    base: TrainingConfig,
) -> optuna.Study:
    """Create or load the study, refusing one that tunes something else; fail trials left stale."""
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=objective.direction,
        load_if_exists=True,
    )
    settings = {
        "algorithm": algorithm,
        "env_id": env_id,
        "objective": objective.model_dump(),
        "max_steps": base.max_steps,
    }
    stored = study.user_attrs.get("gymserve")
    if stored is None:
        study.set_user_attr("gymserve", settings)
    elif stored != settings:
        differences = "; ".join(
            f"{name}: {stored.get(name)!r} -> {value!r}"
            for name, value in settings.items()
            if stored.get(name) != value
        )
        raise TuningError(
            f"study {study_name!r} in {storage_url} tunes other settings ({differences}); "
            "resume it with its own settings or give another --study"
        )
    optuna.storages.fail_stale_trials(study)
    return study


def _best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


class _TrialRunner:
    """Worker threads that each run trial processes one after another."""

    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.RDBStorage,
        storage_url: str,
        algorithm: str,
        env_id: str,
        out: Path,
        base: TrainingConfig,
        space: SearchSpace,
        objective: Objective,
    ):
        self.study = study
        self.storage = storage
        self.study_id = self.storage.get_study_id_from_name(study.study_name)
        self.storage_url = storage_url
        self.algorithm = algorithm
        self.env_id = env_id
        self.out = out
        self.base = base
        self.space = space
        self.objective = objective
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.processes: dict[int, subprocess.Popen] = {}
        self.remaining = 0
        self.started = 0
        self.working = 0  # worker threads not finished yet
        self.bar: Any = None

    def run(self, trials: int, jobs: int, spec_settings: dict[str, Any], progress_bar: bool) -> bool:
        """Run `trials` trials on `jobs` threads; True if Ctrl-C stopped them."""
        from tqdm import tqdm

        self.remaining = trials
        self.spec_settings = spec_settings
        self.bar = tqdm(
            total=trials,
            unit="trial",
            desc=f"tune {self.algorithm}",
            file=sys.stderr,
            disable=not progress_bar,
        )
        self.working = min(jobs, trials)
        for _ in range(self.working):
            threading.Thread(target=self._work, daemon=True).start()
        try:
            self._wait_for_workers()
            return False
        except KeyboardInterrupt:
            self._stop()
            self._wait_for_workers()
            return True
        finally:
            self.bar.close()

    def _wait_for_workers(self) -> None:
        # Polls with sleep: a Thread.join that Ctrl-C interrupts may return early when joined again.
        while True:
            with self.lock:
                if self.working == 0:
                    return
            time.sleep(0.2)

    def _stop(self) -> None:
        with self.lock:
            self.stopping.set()
            for process in self.processes.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

    def _take(self) -> bool:
        with self.lock:
            if self.stopping.is_set() or self.remaining == 0:
                return False
            self.remaining -= 1
            self.started += 1
            return True

    def _work(self) -> None:
        try:
            while self._take():
                self._run_trial()
                self._show_progress()
        finally:
            with self.lock:
                self.working -= 1

    def _run_trial(self) -> None:
        with self.lock:
            trial = self.study.ask()
            values = self.space.suggest(trial)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
        self.storage.record_heartbeat(trial_id)
        run_dir = self.out / TRIALS_DIRECTORY / f"{trial.number:04d}"
        try:
            config = validate_config(
                type(self.base), {**self.base.model_dump(), **values}, source=f"trial {trial.number}"
            )
            run_dir.mkdir(parents=True)
        except (ValueError, FileExistsError) as error:
            self._fail(trial, f"{error}")
            return
        trial.set_user_attr("config", config.model_dump(mode="json"))
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("host", socket.gethostname())
        spec = TrialSpec(
            storage_url=self.storage_url,
            study_name=self.study.study_name,
            trial_id=trial_id,
            algorithm=self.algorithm,
            env_id=self.env_id,
            run_dir=str(run_dir),
            config=config.model_dump(mode="json"),
            objective=self.objective,
            **self.spec_settings,
        )
        returncode = self._run_process(trial, trial_id, spec, run_dir)
        if self.storage.get_trial(trial_id).state.name == "RUNNING":
            self._fail(trial, self._failure_reason(returncode, run_dir / TRIAL_LOG))

    def _run_process(self, trial: optuna.Trial, trial_id: int, spec: TrialSpec, run_dir: Path) -> int:
        environment = {**os.environ}
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with open(run_dir / TRIAL_LOG, "wb") as log, self.lock:
            if self.stopping.is_set():
                return -signal.SIGTERM
            process = subprocess.Popen(
                [sys.executable, "-m", "gymserve.tuning"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
            )
            self.processes[trial_id] = process
        trial.set_user_attr("pid", process.pid)
        try:
            process.stdin.write(spec.model_dump_json().encode())
            process.stdin.close()
        except BrokenPipeError:  # it died at once; its log says why
            pass
        try:
            while True:
                try:
                    return process.wait(timeout=HEARTBEAT_SECONDS)
                except subprocess.TimeoutExpired:
                    self.storage.record_heartbeat(trial_id)
        finally:
            with self.lock:
                del self.processes[trial_id]

    def _failure_reason(self, returncode: int, log: Path) -> str:
        if self.stopping.is_set():
            return "interrupted"
        if returncode < 0:
            return f"trial process killed by {signal.Signals(-returncode).name}"
        lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        last = f": {lines[-1]}" if lines else ""
        return f"trial process exited with status {returncode}{last} (see {log})"

    def _fail(self, trial: optuna.Trial, reason: str) -> None:
        import optuna

        trial.set_user_attr("failure", reason)
        with self.lock:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        self.bar.write(f"trial {trial.number} failed: {reason}", file=sys.stderr)

    def _show_progress(self) -> None:
        with self.lock:
            self.bar.update(1)
            best = _best_trial(self.study)
            if best is not None:
                self.bar.set_postfix(best=f"{best.value:.4g}", trial=best.number, refresh=False)
            self.bar.refresh()

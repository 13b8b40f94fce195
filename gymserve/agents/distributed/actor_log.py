"""actors.csv in the run directory: where each actor runs, its restarts, its speed and staleness.

One row per actor when it starts or restarts after its process died (`event` "started" or
"restarted", with its node and process id), and one per actor every `summary_interval`
environment steps ("report") with its collection speed (env steps per second of collecting),
the mean weight staleness of the batches it shipped (learner updates between the weights it
acted with and the batch's arrival) and the learner's updates per second. `step` and
`wall_time` continue across resumes like history.csv; a resumed run drops rows written after
its checkpoint.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from gymserve.common.files import write_text_atomically

ACTORS_FILE = "actors.csv"
FIELDS = (
    "step",
    "wall_time",
    "actor",
    "event",
    "node_id",
    "pid",
    "restarts",
    "steps_per_second",
    "weight_staleness",
    "learner_updates_per_second",
)


class ActorLog:
    """The rows of actors.csv, rewritten whole (atomically) on every change."""

    def __init__(self, run_dir: Path, resumed_step: int):
        self.path = run_dir / ACTORS_FILE
        self.rows: list[dict[str, str]] = []
        if self.path.exists():
            with open(self.path, newline="") as file:
                self.rows = [row for row in csv.DictReader(file) if int(row["step"]) <= resumed_step]

    def add(self, **values: object) -> None:
        unknown = set(values) - set(FIELDS)
        if unknown:
            raise ValueError(f"actors.csv has no columns {sorted(unknown)}; its columns are {list(FIELDS)}")
        self.rows.append({name: "" if values.get(name) is None else str(values[name]) for name in FIELDS})

    def write(self) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomically(self.path, buffer.getvalue())


def read_actor_log(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of a run's actors.csv (empty for a run without actors)."""
    path = Path(run_dir) / ACTORS_FILE
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))

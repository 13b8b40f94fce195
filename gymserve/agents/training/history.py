"""The learning curve of a run: one CSV row per training episode and per greedy evaluation.

Episode rows fill `episode_return`, `episode_length`, `mean_return` (over the last
`mean_return_window` episodes) and `best_mean_return`; evaluation rows fill `eval_return` and
`eval_episode_length`. Every row has the environment `step` and the training `wall_time` in
seconds (evaluations included), both continuing across resumes.
"""

from __future__ import annotations

import csv
import io
from collections import deque
from pathlib import Path

from gymserve.common.files import write_text_atomically

HISTORY_FILE = "history.csv"
FIELDS = (
    "step",
    "wall_time",
    "episode_return",
    "episode_length",
    "mean_return",
    "best_mean_return",
    "eval_return",
    "eval_episode_length",
)


class History:
    """Rows of the learning curve, kept in memory and written whole (atomically) to a CSV."""

    def __init__(self, mean_return_window: int = 100):
        self.rows: list[dict[str, float | int | None]] = []
        self._recent_returns: deque[float] = deque(maxlen=mean_return_window)
        self.best_mean_return: float | None = None

    @property
    def mean_return(self) -> float | None:
        """The mean return of the latest training episodes, None before the first one ends."""
        return sum(self._recent_returns) / len(self._recent_returns) if self._recent_returns else None

    @property
    def episodes(self) -> int:
        return sum(1 for row in self.rows if row["episode_return"] is not None)

    def add_episode(self, step: int, wall_time: float, episode_return: float, episode_length: int) -> None:
        self._recent_returns.append(episode_return)
        mean = self.mean_return
        if self.best_mean_return is None or mean > self.best_mean_return:
            self.best_mean_return = mean
        self._append(
            step=step,
            wall_time=wall_time,
            episode_return=episode_return,
            episode_length=episode_length,
            mean_return=mean,
            best_mean_return=self.best_mean_return,
        )

    def add_evaluation(
        self, step: int, wall_time: float, average_return: float, average_length: float
    ) -> None:
        self._append(
            step=step, wall_time=wall_time, eval_return=average_return, eval_episode_length=average_length
        )

    def evaluations(self) -> list[dict[str, float | int | None]]:
        return [row for row in self.rows if row["eval_return"] is not None]

    def write(self, path: Path) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(
            {name: "" if value is None else value for name, value in row.items()} for row in self.rows
        )
        write_text_atomically(path, buffer.getvalue())

    @classmethod
    def read(cls, path: Path, mean_return_window: int = 100) -> History:
        """The history in `path`, ready to be continued."""
        history = cls(mean_return_window)
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            if tuple(reader.fieldnames or ()) != FIELDS:
                raise ValueError(f"{path} has columns {reader.fieldnames}; expected {list(FIELDS)}")
            for row in reader:
                values = {name: _number(row[name]) for name in FIELDS}
                if values["episode_return"] is not None:
                    history._recent_returns.append(values["episode_return"])
                    history.best_mean_return = values["best_mean_return"]
                history.rows.append(values)
        return history

    def _append(self, **values: float | int | None) -> None:
        self.rows.append({name: values.get(name) for name in FIELDS})


def _number(text: str) -> float | int | None:
    if text == "":
        return None
    number = float(text)
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number

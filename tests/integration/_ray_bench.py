"""Environments for the Ray runner and gate tests, importable by the Ray workers (their PYTHONPATH
has this folder and tests/unit/evals): the toy's one-answer question with the expected answer
set per task, and a factory of
it that kills the process it runs in for its first ``times`` calls (counted in files under
``marker_dir``, each created exclusively, so a retry on a new worker, or a run beside it, sees
the count)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from _toy import SecretEnv as AnswerEnv  # the workers' PYTHONPATH has tests/unit/evals too


@dataclass(frozen=True)
class Expect:
    """``make_env``: an AnswerEnv expecting ``answer`` (the seed is not used)."""

    answer: str

    def __call__(self, _seed: int) -> AnswerEnv:
        return AnswerEnv(self.answer)


@dataclass(frozen=True)
class DiesFirst:
    """``make_env`` that kills its process on its first ``times`` calls, then is ``Expect(answer)``."""

    marker_dir: str
    times: int
    answer: str = "42"

    def __call__(self, _seed: int) -> AnswerEnv:
        os.makedirs(self.marker_dir, exist_ok=True)
        for n in range(self.times):  # claim a death; runs side by side never claim the same one
            try:
                os.close(os.open(os.path.join(self.marker_dir, f"death-{n}"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                continue
            os._exit(1)
        return AnswerEnv(self.answer)


def deaths(marker_dir: str) -> int:
    return len(os.listdir(marker_dir)) if os.path.isdir(marker_dir) else 0

"""Run modes, enforced by the memory store itself."""

from __future__ import annotations

from enum import StrEnum


class RunMode(StrEnum):
    """How a run may touch memory.

    - ``LEARNING_TRAIN``: reads and writes.
    - ``LEARNING_VALIDATION``: reads; writes only staging data (replay results, quarantine).
    - ``EVAL_TEST``: reads only; any write raises ``ReadOnlyModeError`` and no byte changes.
    """

    LEARNING_TRAIN = "learning_train"
    LEARNING_VALIDATION = "learning_validation"
    EVAL_TEST = "eval_test"

    @property
    def can_write(self) -> bool:
        return self is RunMode.LEARNING_TRAIN

    @property
    def can_stage(self) -> bool:
        return self is not RunMode.EVAL_TEST

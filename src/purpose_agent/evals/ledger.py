"""An append-only JSONL ledger of finished benchmark units, for checkpoint and resume.

A unit is one run: (condition, seed, block, phase, task). A line is written (and flushed,
fsynced) only after the unit finished, so an interrupted benchmark restarts at the first
unit with no line. A torn last line (killed mid-write) is ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Phase = Literal["train", "test", "gate"]


@dataclass(frozen=True)
class UnitKey:
    condition: str
    seed: int
    block: int
    phase: Phase
    task: str

    def as_str(self) -> str:
        return f"{self.condition}|{self.seed}|{self.block}|{self.phase}|{self.task}"


class Ledger:
    """Finished units of one benchmark, in ``path`` (created on first write)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._done: dict[str, dict[str, Any]] = {}
        self._repair()
        for rec in self._read():
            self._done[UnitKey(**rec["key"]).as_str()] = rec

    def _repair(self) -> None:
        """End a torn last line, so the next record starts on a line of its own."""
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb+") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.write(b"\n")

    def _read(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn line from an interrupted write
                if isinstance(rec, dict) and isinstance(rec.get("key"), dict):
                    yield rec

    def done(self, key: UnitKey) -> bool:
        return key.as_str() in self._done

    def get(self, key: UnitKey) -> dict[str, Any] | None:
        return self._done.get(key.as_str())

    def record(self, key: UnitKey, result: dict[str, Any]) -> dict[str, Any]:
        rec = {"key": asdict(key), **result}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self._done[key.as_str()] = rec
        return rec

    def records(self) -> list[dict[str, Any]]:
        return list(self._done.values())

    def __len__(self) -> int:
        return len(self._done)

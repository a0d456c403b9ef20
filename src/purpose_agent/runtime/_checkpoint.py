"""Checkpoint files of human-in-the-loop runs: one JSON file per run, rewritten atomically.

A checkpoint holds the whole ``Run`` (steps with their states, Φ history, loop-detection sets,
memories in the prompt, usage), so a run killed at any moment resumes after its last completed
step. The file is written to a temporary name, flushed to disk and renamed over the old one:
a crash leaves the previous checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

from purpose_agent.core.types import Action, State, Step
from purpose_agent.errors import PurposeAgentError
from purpose_agent.loop._run import Run
from purpose_agent.models.base import Usage

FORMAT = 1
SUFFIX = ".checkpoint.json"


class CheckpointError(PurposeAgentError):
    """A checkpoint file cannot be read or written; the message names the file and the fix."""


# ----------------------------------------------------------------------------- encoding
def _state(s: State) -> dict[str, Any]:
    return {"data": dict(s.data), "summary": s.summary}


def _usage(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "processed_prompt_tokens": u.processed_prompt_tokens,
        "calls": u.calls,
    }


def _step(s: Step) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(s):
        value = getattr(s, f.name)
        if isinstance(value, State):
            value = _state(value)
        elif isinstance(value, Action):
            value = {"name": value.name, "params": dict(value.params), "thought": value.thought}
        elif isinstance(value, Usage):
            value = _usage(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def encode_run(run: Run) -> dict[str, Any]:
    """The run as JSON-ready data (the trace handle becomes its path, the clock its elapsed time)."""
    out: dict[str, Any] = {}
    for f in fields(run):
        value = getattr(run, f.name)
        if f.name == "trace":
            value = str(value.path) if value is not None else None
        elif f.name == "started":
            value = time.perf_counter() - value  # elapsed seconds
        elif f.name == "steps":
            value = [_step(s) for s in value]
        elif isinstance(value, State):
            value = _state(value)
        elif isinstance(value, Usage):
            value = _usage(value)
        elif isinstance(value, set | frozenset):
            value = sorted(list(v) if isinstance(v, tuple) else v for v in value)
        elif f.name == "history":
            value = [list(h) for h in value]
        out[f.name] = value
    return out


# ----------------------------------------------------------------------------- decoding
def _to_state(d: dict[str, Any]) -> State:
    return State(dict(d["data"]), str(d["summary"]))


def _to_step(d: dict[str, Any]) -> Step:
    kwargs = dict(d)
    kwargs["action"] = Action(d["action"]["name"], dict(d["action"]["params"]), d["action"]["thought"])
    kwargs["state_before"] = _to_state(d["state_before"])
    kwargs["state_after"] = _to_state(d["state_after"])
    kwargs["usage"] = Usage(**d["usage"])
    kwargs["anomalies"] = tuple(d["anomalies"])
    return Step(**kwargs)


def decode_run(d: dict[str, Any]) -> tuple[Run, str | None]:
    """The run (without its trace handle) and the path of its trace file."""
    kwargs = {k: v for k, v in d.items() if k not in ("trace", "started")}
    kwargs["initial_state"] = _to_state(d["initial_state"])
    kwargs["state"] = _to_state(d["state"])
    kwargs["steps"] = [_to_step(s) for s in d["steps"]]
    kwargs["usage"] = Usage(**d["usage"])
    kwargs["history"] = [(str(h), float(p)) for h, p in d["history"]]
    kwargs["seen"] = {(str(a), str(b)) for a, b in d["seen"]}
    kwargs["tried"] = {(str(a), str(b)) for a, b in d["tried"]}
    offered = d.get("offered_tools")
    kwargs["offered_tools"] = frozenset(offered) if offered is not None else None
    known = {f.name for f in fields(Run)}
    run = Run(**{k: v for k, v in kwargs.items() if k in known})
    run.started = time.perf_counter() - float(d.get("started", 0.0))
    return run, d.get("trace")


# ----------------------------------------------------------------------------- files
class CheckpointDir:
    """The checkpoint directory: ``<run_id>.checkpoint.json`` per run, status running or done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise CheckpointError(
                f"checkpoint_dir {str(self.path)!r} is a file; pass a directory (it is created if missing)"
            )

    def file(self, run_id: str) -> Path:
        return self.path / f"{run_id}{SUFFIX}"

    def save(self, run: Run, status: str, meta: dict[str, Any]) -> Path:
        """Write the checkpoint of ``run`` atomically; a state that is not JSON is a clear error."""
        target = self.file(run.run_id)
        record = {"format": FORMAT, "status": status, "updated": time.time(), **meta, "run": encode_run(run)}
        try:
            text = json.dumps(record, ensure_ascii=False, allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(
                f"cannot checkpoint run {run.run_id} to {str(target)!r}: its state is not JSON data ({exc}); "
                "keep State.data to JSON values (str, numbers, bools, None, lists, dicts)"
            ) from exc
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            raise CheckpointError(f"cannot write the checkpoint file {str(target)!r}: {exc}") from exc
        return target

    def load(self, file: Path) -> dict[str, Any]:
        """A checkpoint record; a file that is not one raises ``CheckpointError`` naming it."""
        fix = (
            "delete it (or move it away), or pass resume=False to start the run over "
            "(the bad file is then renamed *.corrupt)"
        )
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint file {str(file)!r} is corrupt ({exc}); {fix}") from exc
        if (
            not isinstance(record, dict)
            or record.get("format") != FORMAT
            or not isinstance(record.get("run"), dict)
        ):
            raise CheckpointError(f"checkpoint file {str(file)!r} is not a checkpoint of this format; {fix}")
        try:
            decode_run(record["run"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(
                f"checkpoint file {str(file)!r} is corrupt (bad run record: {exc!r}); {fix}"
            ) from exc
        return record

    def files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(self.path.glob(f"*{SUFFIX}"))

    def unfinished(self, purpose: str | None = None) -> list[tuple[Path, dict[str, Any]]]:
        """Running checkpoints (for ``purpose`` when given), newest first. Raises on a corrupt file."""
        found = []
        for file in self.files():
            record = self.load(file)
            if record.get("status") != "running":
                continue
            if purpose is not None and record["run"].get("purpose") != purpose:
                continue
            found.append((file, record))
        found.sort(key=lambda fr: -float(fr[1].get("updated", 0.0)))
        return found

    def set_aside_corrupt(self) -> list[Path]:
        """Rename every unreadable checkpoint file to ``*.corrupt``; returns the new names."""
        moved = []
        for file in self.files():
            try:
                self.load(file)
            except CheckpointError:
                new = file.with_name(file.name + ".corrupt")
                os.replace(file, new)
                moved.append(new)
        return moved

    def mark(self, file: Path, status: str) -> None:
        record = self.load(file)
        record["status"] = status
        record["updated"] = time.time()
        tmp = file.with_name(file.name + ".tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, file)

"""A coding environment with ground truth: submitted code runs against unit tests in a
subprocess (isolated mode, a fresh temporary directory, a timeout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from purpose_agent.core.environment import ActionSpec, Environment
from purpose_agent.core.types import Action, State


@dataclass(frozen=True)
class CodingTask:
    """A function to write and the assertions that check it (each a Python expression)."""

    id: str
    prompt: str
    entry_point: str
    tests: tuple[str, ...]
    signature: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def purpose(self) -> str:
        sig = f" with signature `{self.signature}`" if self.signature else ""
        return f"Write a Python function `{self.entry_point}`{sig}: {self.prompt}"


_RUNNER = textwrap.dedent(
    """
    import json, sys
    results = []
    ns = {}
    try:
        exec(compile(open("solution.py").read(), "solution.py", "exec"), ns)
    except BaseException as exc:
        print(json.dumps({"load_error": f"{type(exc).__name__}: {exc}"[:500]}))
        sys.exit(0)
    for expr in json.load(open("tests.json")):
        try:
            ok = bool(eval(expr, dict(ns)))
            results.append({"test": expr, "ok": ok, "error": None if ok else "assertion false"})
        except BaseException as exc:
            results.append({"test": expr, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
    print(json.dumps({"results": results}))
    """
)

WRITE_CODE = ActionSpec(
    "submit_code",
    "Replace the whole solution with this Python source and run the unit tests.",
    {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "the complete, fully implemented function (imports included), no placeholders",
            }
        },
        "required": ["code"],
    },
)


def run_tests(code: str, tests: Sequence[str], timeout: float = 10.0) -> dict[str, object]:
    """Run ``tests`` against ``code`` in a subprocess; returns passed/total/failures."""
    with tempfile.TemporaryDirectory(prefix="pa-code-") as tmp:
        Path(tmp, "solution.py").write_text(code)
        Path(tmp, "tests.json").write_text(json.dumps(list(tests)))
        Path(tmp, "runner.py").write_text(_RUNNER)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0"}
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "runner.py"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"passed": 0, "total": len(tests), "failures": [f"timeout after {timeout:.0f}s"]}
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        err = (proc.stderr or proc.stdout).strip()[-400:]
        return {"passed": 0, "total": len(tests), "failures": [f"runner crashed: {err}"]}
    if "load_error" in report:
        return {"passed": 0, "total": len(tests), "failures": [f"code does not load: {report['load_error']}"]}
    results = report["results"]
    failures = [f"{r['test']} -> {r['error']}" for r in results if not r["ok"]]
    return {"passed": sum(1 for r in results if r["ok"]), "total": len(results), "failures": failures}


class CodingEnvironment(Environment):
    """State: the current solution and its test report. Ground truth: the share of tests passed."""

    def __init__(self, task: CodingTask, timeout: float = 10.0) -> None:
        self.task = task
        self.timeout = timeout

    def reset(self) -> State:
        return State(
            {"code": "", "passed": 0, "total": len(self.task.tests), "failures": []},
            "No solution submitted yet.",
        )

    def actions(self, state: State) -> Sequence[ActionSpec]:
        return [WRITE_CODE]

    def execute(self, action: Action, state: State) -> State:
        if action.name != WRITE_CODE.name:
            return state
        code = str(action.params.get("code", ""))
        report = run_tests(code, self.task.tests, self.timeout)
        passed, total = int(report["passed"]), int(report["total"])  # type: ignore[call-overload]
        failures = list(report["failures"])  # type: ignore[call-overload]
        shown = "\n".join(f"  FAIL {f}" for f in failures[:4])
        summary = f"Current solution:\n```python\n{code}\n```\nTests: {passed}/{total} passed." + (
            f"\n{shown}" if shown else ""
        )
        return State({"code": code, "passed": passed, "total": total, "failures": failures}, summary)

    def outcome(self, state: State) -> float | None:
        total = int(state.data.get("total") or 0)
        return float(state.data.get("passed", 0)) / total if total else None

"""A coding environment with ground truth: submitted code runs against unit tests, the code in one
sandbox and the tests in another (see ``run_tests``), with rlimits and a timeout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purpose_agent.core.environment import ActionSpec, Environment
from purpose_agent.core.types import Action, State
from purpose_agent.tools import _sandbox
from purpose_agent.tools._sandbox import Isolation, Mode


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


#: what a code that does not parse because it is all on one line is told (small models write
#: "def f(n): if n < 2: return n else: ..." inside a JSON string)
ONE_LINE_HINT = (
    "Python needs a line break after each ':' and between statements. Write several lines, "
    'blocks indented by 4 spaces (in the JSON string: "def f(n):\\n    if n < 2:\\n        return n")'
)


def _one_line_syntax_error(code: str, failures: Sequence[object]) -> bool:
    return "\n" not in code.strip() and any("SyntaxError" in str(f) for f in failures)


def run_tests(
    code: str, tests: Sequence[str], timeout: float = 10.0, *, isolation: Isolation = "auto"
) -> dict[str, object]:
    """Run ``tests`` against ``code``; returns passed/total/failures (and the isolation layers).

    The solution runs in one sandbox (bubblewrap by default: no network, no files outside its
    folder, rlimits) and the tests in another; only plain values cross, so nothing the solution
    does (patched builtins, exit calls, printed lines, signals) can make a test pass. Raises
    ``SandboxUnavailableError`` when bubblewrap is missing. Only bubblewrap keeps the verdict out
    of the solution's reach: with ``isolation="unshare"`` or ``"none"``, asked for by name, the
    solution can reach this machine's files (and, with ``"none"``, the network and the judge).
    The tests themselves are trusted code: they run sandboxed too, but decide their own verdict."""
    tests = [str(t) for t in tests]
    mode = _sandbox.resolve_isolation(isolation, sys.executable)
    with tempfile.TemporaryDirectory(prefix="pa-code-") as root:
        return _TestRun(mode, root, timeout).run(code, tests)


_LAYERS = ["subprocess", "rlimits", "isolated-mode", "scrubbed-env", "tempdir", "process-group-kill"]
_HARNESS = Path(__file__).with_name("_harness.py")
_CAP = 4 * 1024 * 1024


class _TestRun:
    """One check of one solution: a candidate process and a judge process, piped to each other."""

    def __init__(self, mode: Mode, root: str, timeout: float) -> None:
        self.mode, self.root, self.timeout = mode, root, timeout
        cpu = max(1, int(timeout) + 1)
        self.candidate_limits = _sandbox.Limits(cpu, memory_mb=512, file_size_mb=16, max_processes=32)
        self.judge_limits = _sandbox.Limits(cpu, memory_mb=512, file_size_mb=16, max_processes=16)
        self.judge_stderr = os.path.join(root, "judge.stderr")
        self.layers = [
            *_LAYERS,
            *_sandbox.command_prefix(mode, sys.executable, root, network=False, tmpfs_mb=8)[1],
        ]
        self.group = _pids_cgroup()
        if self.group is not None:
            self.layers.append("pids-cgroup")

    def _dir(self, name: str, files: dict[str, str]) -> str:
        path = os.path.join(self.root, name)
        os.mkdir(path)
        for fname, text in files.items():
            Path(path, fname).write_text(text, encoding="utf-8")
        return path

    def _spawn(
        self, workdir: str, limits: _sandbox.Limits, args: list[str], **io: Any
    ) -> subprocess.Popen[bytes]:
        prefix, _, mounted = _sandbox.command_prefix(
            self.mode, sys.executable, workdir, network=False, tmpfs_mb=limits.tmpfs_mb
        )
        script = os.path.join(_sandbox.SANDBOX_DIR if mounted else workdir, "harness.py")
        join = self.group.join_self if self.group is not None else None
        return subprocess.Popen(
            [*prefix, sys.executable, "-I", script, *args],
            cwd=workdir,
            env=_sandbox.base_env(workdir),
            preexec_fn=_sandbox.rlimit_preexec(limits, join),
            start_new_session=True,
            **io,
        )

    def run(self, code: str, tests: list[str]) -> dict[str, object]:
        harness = _HARNESS.read_text(encoding="utf-8")
        cand_dir = self._dir("candidate", {"harness.py": harness, "solution.py": code})
        judge_dir = self._dir("judge", {"harness.py": harness, "tests.json": json.dumps(tests)})
        verdict = os.path.join(self.root, "verdict")
        to_judge_r, to_judge_w = os.pipe()
        to_cand_r, to_cand_w = os.pipe()
        open_fds = [to_judge_r, to_judge_w, to_cand_r, to_cand_w]
        procs: list[subprocess.Popen[bytes]] = []
        timed_out = False
        try:
            with open(verdict, "wb") as out, open(self.judge_stderr, "wb") as err:
                procs.append(
                    self._spawn(
                        cand_dir,
                        self.candidate_limits,
                        ["serve"],
                        stdin=to_cand_r,
                        stdout=to_judge_w,
                        stderr=subprocess.DEVNULL,  # where the solution's prints go
                    )
                )
                procs.append(
                    self._spawn(
                        judge_dir,
                        self.judge_limits,
                        ["judge", str(to_judge_r), str(to_cand_w)],
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=err,
                        pass_fds=(to_judge_r, to_cand_w),
                    )
                )
                _close_all(open_fds)  # the children hold their ends: EOF reaches each when the other ends
                try:
                    procs[1].wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
        except OSError as exc:
            return {"passed": 0, "total": len(tests), "failures": [f"could not start the sandbox: {exc}"]}
        finally:
            _close_all(open_fds)
            self._stop(procs)
        with open(verdict, "rb") as fh:
            lines = fh.read(_CAP).decode("utf-8", "replace").splitlines()
        return self._report(lines, tests, timed_out)

    def _stop(self, procs: list[subprocess.Popen[bytes]]) -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self.group is not None:
            _sandbox.destroy_cgroup(self.group)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()

    def _report(self, lines: list[str], tests: list[str], timed_out: bool) -> dict[str, object]:
        loaded, load_error = False, None
        results: dict[int, tuple[bool, str]] = {}
        for line in lines:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            if "load_error" in msg:
                load_error = str(msg["load_error"])[:500]
            elif msg.get("loaded") is True:
                loaded = True
            elif type(msg.get("i")) is int and 0 <= msg["i"] < len(tests) and type(msg.get("ok")) is bool:
                results[msg["i"]] = (msg["ok"], str(msg.get("error") or "failed")[:400])
        total = len(tests)
        base: dict[str, object] = {"total": total, "isolation": self.layers}
        if load_error is not None:
            return {**base, "passed": 0, "failures": [f"code does not load: {load_error}"]}
        if not loaded:
            why = f"timeout after {self.timeout:.0f}s" if timed_out else self._harness_crash()
            return {**base, "passed": 0, "failures": [why]}
        stopped = f"timeout after {self.timeout:.0f}s" if timed_out else "not run: the test harness stopped"
        failures = [
            f"{test} -> {results[i][1] if i in results else stopped}"
            for i, test in enumerate(tests)
            if not (i in results and results[i][0])
        ]
        return {**base, "passed": sum(1 for ok, _ in results.values() if ok), "failures": failures}

    def _harness_crash(self) -> str:
        try:
            with open(self.judge_stderr, "rb") as fh:
                tail = fh.read(_CAP).decode("utf-8", "replace").strip()[-400:]
        except OSError:
            tail = ""
        return "the test harness did not start" + (f": {tail}" if tail else "")


def _close_all(fds: list[int]) -> None:
    while fds:
        with contextlib.suppress(OSError):
            os.close(fds.pop())


def _pids_cgroup() -> _sandbox.PidsCgroup | None:
    root = _sandbox.pids_cgroup_root()
    if root is None:
        return None
    try:
        return _sandbox.PidsCgroup(root, 64)
    except OSError:
        return None


class CodingEnvironment(Environment):
    """State: the current solution and its test report. Ground truth: the share of tests passed."""

    def __init__(self, task: CodingTask, timeout: float = 10.0, *, isolation: Isolation = "auto") -> None:
        self.task = task
        self.timeout = timeout
        #: the sandbox the solutions run in; SandboxUnavailableError here, not mid-run, when missing
        self.isolation: Mode = _sandbox.resolve_isolation(isolation, sys.executable)

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
        report = run_tests(code, self.task.tests, self.timeout, isolation=self.isolation)
        passed, total = int(report["passed"]), int(report["total"])  # type: ignore[call-overload]
        failures = list(report["failures"])  # type: ignore[call-overload]
        shown = "\n".join(f"  FAIL {f}" for f in failures[:4])
        if _one_line_syntax_error(code, failures):
            shown += f"\n  HINT {ONE_LINE_HINT}"
        summary = f"Current solution:\n```python\n{code}\n```\nTests: {passed}/{total} passed." + (
            f"\n{shown}" if shown else ""
        )
        return State({"code": code, "passed": passed, "total": total, "failures": failures}, summary)

    def outcome(self, state: State) -> float | None:
        total = int(state.data.get("total") or 0)
        return float(state.data.get("passed", 0)) / total if total else None

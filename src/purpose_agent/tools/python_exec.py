"""``PythonExecTool``: run model-written Python in a limited, isolated subprocess.

Every run gets a fresh temporary directory, ``python -I``, a scrubbed environment, rlimits and a
wall-clock timeout that kills the whole process group. The default, ``isolation="auto"``, adds
bubblewrap's filesystem, PID and network isolation, and refuses to build the tool (naming
bubblewrap and how to install it) where bubblewrap cannot run: weaker isolation (``"unshare"``:
no network only; ``"none"``: rlimits only) is used only when asked for by name. The description the
model reads states the isolation the tool really has; ``meta["isolation"]`` lists every layer.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

from purpose_agent.errors import ToolError
from purpose_agent.tools import _sandbox
from purpose_agent.tools._sandbox import Isolation
from purpose_agent.tools.base import BaseTool, ToolResult

_BASE_LAYERS = ["subprocess", "rlimits", "isolated-mode", "scrubbed-env", "tempdir", "process-group-kill"]
_SIGNAL_HINTS: dict[signal.Signals, str] = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGKILL: "killed (memory, CPU or process limit)",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGSEGV: "segmentation fault (often the memory limit)",
}


def echo_last_expression(code: str) -> str:
    """Like a REPL: when the last statement is a bare expression (not a print call), print the
    repr of its value unless it is None; when it is ``name = value``, print the name and value. Code that does not parse is returned unchanged (the run
    then reports the SyntaxError)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    last = tree.body[-1] if tree.body else None
    if (
        isinstance(last, ast.Assign)
        and len(last.targets) == 1
        and isinstance(last.targets[0], ast.Name)
        and last.col_offset == 0
    ):
        # a final "name = value": show the value it got
        name = last.targets[0].id
        return code.rstrip("\n") + f"\nprint({name + ' ='!r}, repr({name}))\n"
    if not isinstance(last, ast.Expr):
        return code
    value = last.value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print":
        return code
    segment = ast.get_source_segment(code, value)
    lines = code.splitlines()
    if segment is None or last.col_offset != 0:
        return code
    # keep every line where it was, so tracebacks point at the model's own line numbers
    echo = f"if (_pa_value := ({segment})) is not None: print(repr(_pa_value))"
    return "\n".join([*lines[: last.lineno - 1], echo, *lines[last.end_lineno or last.lineno :]]) + "\n"


#: what a run says when it ran the code with real line breaks (see ``real_line_breaks``)
LINE_BREAKS_NOTE = "(the code had a literal \\n for each line break; it was run with real line breaks)"


def real_line_breaks(code: str) -> str | None:
    """``code`` with each literal ``\\n`` (and ``\\t``) made a real line break (tab), when
    the code does not parse as written and does after that; else None. A small model often
    double-escapes the newlines of the code in its JSON, which Python reads as one line with a
    stray line-continuation character. Code that parses is never changed."""
    if "\\n" not in code:
        return None
    try:
        ast.parse(code)
        return None
    except (SyntaxError, ValueError):
        pass
    fixed = code.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\t", "\t")
    try:
        ast.parse(fixed)
    except (SyntaxError, ValueError):
        return None
    return fixed


def _read_head(path: str, cap: int) -> tuple[bytes, bool]:
    """The first ``cap`` bytes of a file, and whether there was more."""
    with open(path, "rb") as fh:
        data = fh.read(cap + 1)
    return data[:cap], len(data) > cap


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def _kill_cgroup(group: _sandbox.PidsCgroup) -> None:
    """Kill every process of the run (also ones that escaped the process group), drop the cgroup."""
    for _ in range(50):
        left = await asyncio.to_thread(group.kill_all)
        if not left and await asyncio.to_thread(group.remove):
            return
        await asyncio.sleep(0.02)


class PythonExecTool(BaseTool):
    """Runs Python code and returns its stdout; a non-zero exit, a limit or a timeout is an error.

    Raises ``SandboxUnavailableError`` (a ToolError) when the isolation asked for, by default
    bubblewrap, cannot run here; ``isolation="none"`` opts out of isolation explicitly."""

    _self_timed = True

    def __init__(
        self,
        timeout: float = 10.0,
        memory_mb: int = 256,
        *,
        cpu_seconds: int | None = None,
        file_size_mb: int = 16,
        max_processes: int = 32,
        max_output_chars: int = 8000,
        allow_network: bool = False,
        isolation: Isolation = "auto",
        python: str | None = None,
        name: str = "python",
        echo_last: bool = True,
    ) -> None:
        if timeout <= 0 or memory_mb < 32 or max_processes < 1:
            raise ToolError("PythonExecTool needs timeout > 0, memory_mb >= 32 and max_processes >= 1")
        self.python = python or sys.executable
        #: the isolation every run gets (bwrap, unshare or none): never weaker than asked for
        self.mode = _sandbox.resolve_isolation(isolation, self.python)
        self.name = name
        self.echo_last = echo_last
        self.timeout = timeout
        self.limits = _sandbox.Limits(
            cpu_seconds=cpu_seconds or max(1, int(timeout) + 1),
            memory_mb=memory_mb,
            file_size_mb=file_size_mb,
            max_processes=max_processes,
        )
        self.max_output_chars = max_output_chars
        self.allow_network = allow_network
        self.isolation: Isolation = isolation
        where = "in a sandbox" if self.mode == "bwrap" else "on this machine"
        self.description = (
            f"Run a short Python 3 program {where} and return what it prints. Use print() for the "
            f"answer. Limits: {timeout:g} s, {memory_mb} MB, "
            f"{_sandbox.isolation_summary(self.mode, allow_network)}."
        )
        self.parameters = {
            "type": "object",
            "properties": {"code": {"type": "string", "description": "complete Python source to run"}},
            "required": ["code"],
            "additionalProperties": False,
        }

    def _plan(self, workdir: str) -> tuple[list[str], list[str], str | None]:
        """The command prefix, the isolation layers and the cwd (None: inside the sandbox) for one run."""
        prefix, extra, mounted = _sandbox.command_prefix(
            self.mode, self.python, workdir, network=self.allow_network, tmpfs_mb=self.limits.tmpfs_mb
        )
        return prefix, [*_BASE_LAYERS, *extra], None if mounted else workdir

    def _make_cgroup(self) -> _sandbox.PidsCgroup | None:
        root = _sandbox.pids_cgroup_root()
        if root is None:
            return None
        try:
            return _sandbox.PidsCgroup(root, self.limits.max_processes)
        except OSError:
            return None

    def isolation_layers(self) -> list[str]:
        """The isolation layers every run of this tool gets (pids-cgroup aside, added per run)."""
        with tempfile.TemporaryDirectory(prefix="pa-pyexec-") as tmp:
            return self._plan(tmp)[1]

    async def _arun(self, **kwargs: Any) -> ToolResult:
        code: str = kwargs["code"]
        fixed = real_line_breaks(code)
        code = fixed if fixed is not None else code
        workdir = tempfile.mkdtemp(prefix="pa-pyexec-")
        outdir = tempfile.mkdtemp(prefix="pa-pyexec-out-")
        try:
            with open(os.path.join(workdir, "main.py"), "w", encoding="utf-8") as fh:
                fh.write(echo_last_expression(code) if self.echo_last else code)
            prefix, layers, cwd = self._plan(workdir)
            script = os.path.join(_sandbox.SANDBOX_DIR if cwd is None else workdir, "main.py")
            result = await self._execute([*prefix, self.python, "-I", script], cwd, workdir, outdir, layers)
            if fixed is None:
                return result
            meta = {**result.meta, "line_breaks_repaired": True}
            if result.ok:
                return dataclasses.replace(result, output=f"{LINE_BREAKS_NOTE}\n{result.output}", meta=meta)
            return dataclasses.replace(result, error=f"{LINE_BREAKS_NOTE}\n{result.error}", meta=meta)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            await asyncio.to_thread(shutil.rmtree, outdir, True)

    async def _execute(
        self, cmd: list[str], cwd: str | None, workdir: str, outdir: str, layers: list[str]
    ) -> ToolResult:
        start = time.perf_counter()
        group = await asyncio.to_thread(self._make_cgroup)
        if group is not None:
            layers = [*layers, "pids-cgroup"]
        out_path, err_path = os.path.join(outdir, "stdout"), os.path.join(outdir, "stderr")
        try:
            with open(out_path, "wb") as out_fh, open(err_path, "wb") as err_fh:
                proc = await asyncio.create_subprocess_exec(
                    *cmd,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out_fh,
                    stderr=err_fh,
                    cwd=cwd or workdir,
                    env=_sandbox.base_env(workdir),
                    preexec_fn=_sandbox.rlimit_preexec(self.limits, group.join_self if group else None),
                    start_new_session=True,
                )
        except OSError as exc:
            if group is not None:
                await asyncio.to_thread(group.remove)
            return ToolResult.failure(f"could not start the sandbox: {exc}", kind="unavailable")
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), self.timeout)
        except TimeoutError:
            timed_out = True
        finally:
            _kill_group(proc.pid)  # also reaps background children left behind
            if group is not None:
                await _kill_cgroup(group)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        cap = self.max_output_chars * 4
        out, out_cut = await asyncio.to_thread(_read_head, out_path, cap)
        err, _ = await asyncio.to_thread(_read_head, err_path, cap)
        stdout = out.decode("utf-8", "replace")[: self.max_output_chars]
        stderr = err.decode("utf-8", "replace")
        meta: dict[str, Any] = {
            "isolation": layers,
            "returncode": proc.returncode,
            "stderr": stderr[-4000:],
            "duration_s": round(time.perf_counter() - start, 4),
            "truncated": out_cut or len(out) > self.max_output_chars,
        }
        if timed_out:
            msg = f"timed out after {self.timeout:g} s (wall clock); the process group was killed"
            return ToolResult.failure(msg, stdout, kind="timeout", **meta)
        rc = proc.returncode or 0
        if rc == 0:
            shown = stdout if stdout.strip() else "(the program printed nothing: print the values you need)"
            return ToolResult.success(shown, stdout, **meta)
        return ToolResult.failure(self._describe_failure(rc, stderr, "bwrap" in layers), stdout, **meta)

    @staticmethod
    def _describe_failure(rc: int, stderr: str, via_bwrap: bool) -> str:
        sig = -rc if rc < 0 else (rc - 128 if via_bwrap and rc > 128 else 0)
        tail = stderr.strip()[-1500:]
        if sig:
            try:
                signum = signal.Signals(sig)
                name, hint = signum.name, _SIGNAL_HINTS.get(signum, "")
            except ValueError:
                name, hint = f"signal {sig}", ""
            text = f"the program was killed by {name}" + (f": {hint}" if hint else "")
            return text + (f"\n{tail}" if tail else "")
        return f"the program exited with code {rc}" + (f":\n{tail}" if tail else "")

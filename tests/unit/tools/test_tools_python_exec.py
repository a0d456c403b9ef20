"""PythonExecTool escape tests. Each test's docstring names the isolation it relies on.

Bubblewrap is expected on Linux CI (``apt-get install -y bubblewrap``); the tests that rely on
it fail loudly, not skip, when it is missing or cannot run.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from purpose_agent.tools import PythonExecTool, _sandbox


def _bwrap_tool(**kwargs: object) -> PythonExecTool:
    tool = PythonExecTool(isolation="bwrap", **kwargs)  # type: ignore[arg-type]
    assert _sandbox.bwrap_works(tool.python), (
        "bubblewrap is expected but missing or not working here: apt-get install -y bubblewrap"
    )
    return tool


def test_runs_code_and_reports_isolation() -> None:
    """Baseline: stdout comes back; meta lists the isolation layers actually applied."""
    r = _bwrap_tool(timeout=10).run(code="print(sum(range(10)))")
    assert r.ok, r.error
    assert r.output == "45\n"
    for layer in ("subprocess", "rlimits", "isolated-mode", "scrubbed-env", "bwrap", "no-network"):
        assert layer in r.meta["isolation"]


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Relies on: scrubbed-env (bwrap --clearenv; env= for the subprocess)."""
    monkeypatch.setenv("PA_SECRET_TOKEN", "hunter2")
    r = _bwrap_tool().run(code="import os; print(sorted(os.environ))")
    assert r.ok and "PA_SECRET_TOKEN" not in r.output and "hunter2" not in r.output


def test_write_outside_its_directory_is_blocked(tmp_path: Path) -> None:
    """Relies on: bwrap (read-only root, only /sandbox and a private /tmp writable)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "pwned.txt"
    code = f"open({str(target)!r}, 'w').write('pwned')\nprint('wrote')"
    r = _bwrap_tool().run(code=code)
    assert not r.ok
    assert "No such file or directory" in r.error or "Read-only file system" in r.error
    assert not target.exists()
    r2 = _bwrap_tool().run(code="open('/etc/pwned', 'w').write('x')")
    assert not r2.ok and ("Read-only file system" in r2.error or "No such file" in r2.error)
    assert not Path("/etc/pwned").exists()


def test_reading_a_file_planted_outside_is_blocked(tmp_path: Path) -> None:
    """Relies on: bwrap (only /usr, the interpreter's prefix and the work dir are mounted)."""
    secret = f"TOP-SECRET-{uuid.uuid4()}"
    planted = tmp_path / "secret.txt"
    planted.write_text(secret)
    r = _bwrap_tool().run(code=f"print(open({str(planted)!r}).read())")
    assert not r.ok
    assert "No such file or directory" in r.error
    assert secret not in r.output and secret not in r.error


def test_fork_bomb_is_contained() -> None:
    """Relies on: pids cgroup (as root) or RLIMIT_NPROC (non-root), plus pid namespace and group kill."""
    tool = _bwrap_tool(timeout=5, max_processes=16)
    start = time.perf_counter()
    r = tool.run(code="import os\nwhile True:\n    os.fork()")
    elapsed = time.perf_counter() - start
    assert not r.ok
    assert "Resource temporarily unavailable" in r.error or "timed out" in r.error
    assert elapsed < 5 + 5
    assert "pids-cgroup" in r.meta["isolation"] or os.getuid() != 0


def test_memory_bomb_is_stopped() -> None:
    """Relies on: RLIMIT_AS (address-space limit)."""
    r = _bwrap_tool(memory_mb=128).run(
        code="chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))"
    )
    assert not r.ok
    assert "MemoryError" in r.error or "killed" in r.error


def test_infinite_loop_times_out() -> None:
    """Relies on: the wall-clock timeout that kills the process group (RLIMIT_CPU as backstop)."""
    start = time.perf_counter()
    r = _bwrap_tool(timeout=1).run(code="while True:\n    pass")
    assert not r.ok and r.meta["kind"] == "timeout"
    assert "timed out after 1 s" in r.error
    assert time.perf_counter() - start < 6


def _listener() -> socket.socket:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.2)
    return srv


def _connect_code(port: int) -> str:
    return f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 3)\nprint('connected')"


def _assert_no_connection(srv: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        srv.accept()


def test_network_connection_is_blocked_by_bwrap() -> None:
    """Relies on: bwrap --unshare-net (a new network namespace without the host's listeners)."""
    with _listener() as srv:
        r = _bwrap_tool().run(code=_connect_code(srv.getsockname()[1]))
        assert not r.ok
        assert "Connection refused" in r.error or "Network is unreachable" in r.error
        assert "connected" not in r.output
        _assert_no_connection(srv)


def test_network_connection_is_blocked_by_unshare_fallback() -> None:
    """Relies on: unshare --user --map-root-user --net (the fallback when bwrap is unavailable)."""
    tool = PythonExecTool(isolation="unshare")
    assert _sandbox.unshare_works(tool.python), "unshare --user --net is expected to work on this machine"
    with _listener() as srv:
        r = tool.run(code=_connect_code(srv.getsockname()[1]))
        assert not r.ok and "Network is unreachable" in r.error
        assert "no-network" in r.meta["isolation"] and "bwrap" not in r.meta["isolation"]
        _assert_no_connection(srv)


def test_no_isolation_is_reported_honestly() -> None:
    """Relies on nothing but rlimits; meta must not claim network isolation."""
    r = PythonExecTool(isolation="none").run(code="print('hi')")
    assert r.ok and "no-network" not in r.meta["isolation"] and "bwrap" not in r.meta["isolation"]


def test_fresh_directory_and_cleanup() -> None:
    """Relies on: a fresh temporary directory per run, removed afterwards."""
    tool = _bwrap_tool()
    r1 = tool.run(code="open('note.txt', 'w').write('x'); import os; print(sorted(os.listdir('.')))")
    assert r1.ok and r1.output.strip() == "['main.py', 'note.txt']"
    r2 = tool.run(code="import os; print(sorted(os.listdir('.')))")
    assert r2.output.strip() == "['main.py']"


def test_errors_and_output_limits() -> None:
    """A failing program returns its traceback tail; huge output is truncated."""
    tool = _bwrap_tool(max_output_chars=100, file_size_mb=1)
    r = tool.run(code="raise ValueError('bad input')")
    assert not r.ok and "exited with code 1" in r.error and "ValueError: bad input" in r.error
    big = tool.run(code="print('x' * 10000)")
    assert big.ok and len(big.output) == 100 and big.meta["truncated"]
    huge = tool.run(code="import sys\nwhile True:\n    sys.stdout.write('y' * 65536)")
    assert not huge.ok and ("SIGXFSZ" in huge.error or "File too large" in huge.error)

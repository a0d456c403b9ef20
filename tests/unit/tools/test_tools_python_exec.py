"""PythonExecTool escape tests. Each test's docstring names the isolation it relies on.

Bubblewrap is expected on Linux CI (``apt-get install -y bubblewrap``); the tests that rely on
it fail loudly, not skip, when it is missing or cannot run. The default path (``"auto"``) is
tested as a user gets it, and with bubblewrap and unshare made unavailable.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from purpose_agent.errors import ToolError
from purpose_agent.tools import PythonExecTool, _sandbox
from purpose_agent.tools._sandbox import SandboxUnavailableError


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
    """Relies on nothing but rlimits; meta and the description must not claim isolation."""
    tool = PythonExecTool(isolation="none")
    r = tool.run(code="print('hi')")
    assert r.ok and "no-network" not in r.meta["isolation"] and "bwrap" not in r.meta["isolation"]
    assert "NOT isolated" in tool.description and "no network" not in tool.description


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


def test_default_isolation_is_bubblewrap_and_blocks_escapes(tmp_path: Path) -> None:
    """The default path (isolation="auto", nothing forced): bwrap, and the description says so."""
    tool = PythonExecTool()
    assert tool.mode == "bwrap"
    assert "no network, no files outside its folder" in tool.description
    target = tmp_path / "pwned.txt"
    r = tool.run(code=f"open({str(target)!r}, 'w').write('x')")
    assert not r.ok and not target.exists()
    for layer in ("bwrap", "no-network", "read-only-fs"):
        assert layer in r.meta["isolation"]
    with _listener() as srv:
        r = tool.run(code=_connect_code(srv.getsockname()[1]))
        assert not r.ok and "connected" not in r.output
        _assert_no_connection(srv)


@pytest.fixture
def no_sandbox_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine without bwrap and unshare: an empty PATH, and the cached probes forgotten."""
    monkeypatch.setenv("PATH", str(tmp_path))
    _sandbox.bwrap_works.cache_clear()
    _sandbox.unshare_works.cache_clear()
    yield
    _sandbox.bwrap_works.cache_clear()
    _sandbox.unshare_works.cache_clear()


def test_without_bubblewrap_auto_refuses_with_the_fix(no_sandbox_tools: None) -> None:
    for isolation in ("auto", "bwrap"):
        with pytest.raises(SandboxUnavailableError) as caught:
            PythonExecTool(isolation=isolation)
        message = str(caught.value)
        assert "bubblewrap" in message and "apt-get install bubblewrap" in message
        assert "isolation='none'" in message
    with pytest.raises(SandboxUnavailableError, match="unshare"):
        PythonExecTool(isolation="unshare")


def test_without_bubblewrap_none_runs_and_its_description_is_honest(no_sandbox_tools: None) -> None:
    tool = PythonExecTool(isolation="none")
    assert tool.mode == "none"
    assert "NOT isolated" in tool.description and "no network" not in tool.description
    assert "no files outside" not in tool.description and "sandbox" not in tool.description
    r = tool.run(code="print(6 * 7)")
    assert r.ok and r.output == "42\n"
    assert "bwrap" not in r.meta["isolation"] and "no-network" not in r.meta["isolation"]
    assert tool.isolation_layers() == [layer for layer in r.meta["isolation"] if layer != "pids-cgroup"]


def test_unshare_description_admits_the_files_are_reachable() -> None:
    """Relies on: unshare working here (as in the fallback test above)."""
    tool = PythonExecTool(isolation="unshare")
    assert "no network" in tool.description and "NOT filesystem-isolated" in tool.description


def test_unknown_isolation_is_a_clear_error() -> None:
    with pytest.raises(ToolError, match="unknown isolation 'docker'"):
        PythonExecTool(isolation="docker")  # type: ignore[arg-type]

"""Never oversubscribe the cores: another process with a model loaded on them makes a server start
wait (a queue, the default), fail, or warn; starts of several processes take turns under a lock
file. The other processes are found in /proc (a real child process with a .gguf mapped)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from purpose_agent.errors import ConfigurationError
from purpose_agent.models import _llama_guard as guard
from purpose_agent.models import llama_server as ls
from purpose_agent.models.llama_server import (
    CoresBusyError,
    LlamaServer,
    LlamaServerBackend,
    ModelProcess,
    ServerConfig,
    model_processes,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and flock: Linux")


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "m.gguf"
    p.write_bytes(b"GGUF")
    return p


@pytest.fixture
def binary(tmp_path: Path) -> Path:
    """A server binary that must never run in these tests (the guard comes first)."""
    p = tmp_path / "fake-llama-server"
    p.write_text(f"#!/bin/sh\ntouch {tmp_path / 'launched'}\nexit 1\n")
    p.chmod(0o755)
    return p


@pytest.fixture(autouse=True)
def two_cores_and_a_private_lock(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(guard, "available_cores", lambda: 2)
    monkeypatch.setattr(guard, "_lock_path", lambda: tmp_path / "start.lock")
    monkeypatch.setattr(guard, "BUSY_POLL_S", 0.01)
    monkeypatch.setattr(ls.os, "sched_getaffinity", lambda pid: {0, 1})


def _others(monkeypatch: pytest.MonkeyPatch, *seen: list[ModelProcess]) -> list[int]:
    """model_processes answers each list of ``seen`` in turn, then the last one forever."""
    calls: list[int] = []

    def fake(exclude: object = ()) -> list[ModelProcess]:
        calls.append(1)
        return seen[min(len(calls), len(seen)) - 1]

    monkeypatch.setattr(guard, "model_processes", fake)
    return calls


BENCH = ModelProcess(4242, "llama-server --model qwen.gguf --threads 2", 2, True, frozenset({0, 1}))


def _server(model_file: Path, binary: Path, **kw: object) -> LlamaServer:
    return LlamaServer(ServerConfig(model_file, threads=1), binary=binary, **kw)  # type: ignore[arg-type]


def test_a_busy_machine_fails_at_once_with_when_busy_error(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, binary: Path, tmp_path: Path
) -> None:
    _others(monkeypatch, [BENCH])
    server = _server(model_file, binary, when_busy="error")
    with pytest.raises(CoresBusyError) as info:
        server.start()
    msg = str(info.value)
    assert "pid 4242 (2 threads)" in msg and "llama-server --model qwen.gguf" in msg
    assert "oversubscribe" in msg and "Fix: stop it first" in msg and "when_busy='wait'" in msg
    assert isinstance(info.value, ConfigurationError)
    assert server.proc is None and not (tmp_path / "launched").exists()  # checked before launching


def test_the_default_waits_for_the_other_process_to_finish_then_starts(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, binary: Path
) -> None:
    calls = _others(monkeypatch, [BENCH], [BENCH], [BENCH], [])
    server = _server(model_file, binary)
    assert server.when_busy == "wait"
    with pytest.warns(RuntimeWarning, match=r"pid 4242.*waiting up to 1800 s") as record:
        server._check_cores()
    assert len(calls) == 4 and len(record) == 1  # warned once, looked again until it was gone


def test_waiting_gives_up_after_busy_timeout(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, binary: Path, tmp_path: Path
) -> None:
    _others(monkeypatch, [BENCH])
    server = _server(model_file, binary, busy_timeout=0.1)
    with pytest.warns(RuntimeWarning), pytest.raises(CoresBusyError, match=r"waited 0 s.*busy_timeout"):
        server.start()
    assert not (tmp_path / "launched").exists()


def test_when_busy_warn_only_warns(monkeypatch: pytest.MonkeyPatch, model_file: Path, binary: Path) -> None:
    calls = _others(monkeypatch, [BENCH])
    with pytest.warns(RuntimeWarning, match="starting anyway"):
        _server(model_file, binary, when_busy="warn")._check_cores()
    assert len(calls) == 1


def test_oversubscribe_skips_the_check(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, binary: Path
) -> None:
    calls = _others(monkeypatch, [BENCH])
    _server(model_file, binary, oversubscribe=True)._check_cores()
    assert calls == []


@pytest.mark.parametrize(
    "other",
    [
        ModelProcess(1, "llama-server --threads 1", 1, True, frozenset({0, 1})),  # 1 + our 1 <= 2 cores
        ModelProcess(2, "python -c 'import llama_cpp'", None, False, frozenset({0, 1})),  # no model loaded
        ModelProcess(3, "llama-bench", None, True, frozenset({2, 3})),  # on other cores
    ],
)
def test_processes_that_leave_room_do_not_block(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, binary: Path, other: ModelProcess
) -> None:
    _others(monkeypatch, [other])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _server(model_file, binary, when_busy="error")._check_cores()


def test_an_unknown_thread_count_counts_as_all_cores() -> None:
    assert ModelProcess(1, "python", None, True).threads_on(2) == 2
    assert ModelProcess(1, "llama-server -t 8", 8, True).threads_on(2) == 2
    assert ModelProcess(1, "llama-server -t 1", 1, True).threads_on(2) == 1
    assert guard._threads_from(["llama-server", "--threads=3"]) == 3
    assert guard._threads_from(["llama-server", "-t", "1", "--threads-batch", "2"]) == 1
    assert guard._threads_from(["python", "-t"]) is None
    assert guard._cpu_list("0-1,4") == frozenset({0, 1, 4})


def test_a_bad_when_busy_is_refused(model_file: Path, binary: Path) -> None:
    with pytest.raises(ConfigurationError, match="when_busy"):
        _server(model_file, binary, when_busy="sometimes")


def test_the_backend_passes_the_policy_on(model_file: Path, binary: Path) -> None:
    b = LlamaServerBackend(model_path=model_file, binary=binary, when_busy="error", busy_timeout=5)
    assert b.server.when_busy == "error" and b.server.busy_timeout == 5


# ------------------------------------------------------------------- the machine-wide lock
def test_starts_take_turns_under_the_lock(tmp_path: Path) -> None:
    # flock locks belong to an open file: a second open, even in this process, must wait
    with (
        guard.start_lock(1.0),
        pytest.raises(CoresBusyError, match=r"another process kept starting.*start\.lock"),
        guard.start_lock(0.1),
    ):
        pass  # pragma: no cover
    with guard.start_lock(0.1):  # released on exit
        pass


def test_a_queued_start_goes_when_the_lock_is_released() -> None:
    order: list[str] = []
    holding = threading.Event()

    def first() -> None:
        with guard.start_lock(1.0):
            holding.set()
            order.append("first in")
            threading.Event().wait(0.2)  # holds the lock a while
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    holding.wait(5)
    with guard.start_lock(5.0):
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]


# ------------------------------------------------------------------- finding the processes
MAPPER = """
import mmap, sys
with open(sys.argv[1], "rb") as f:
    m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)  # as llama.cpp maps a model
    print("mapped", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def run(*args: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(MAPPER), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "mapped"
        return p

    yield run
    for p in procs:
        p.kill()
        p.communicate()


def test_a_process_with_a_gguf_mapped_is_found_with_its_threads(
    spawn: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    model = tmp_path / "tiny.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 4096)
    plain = tmp_path / "notes.bin"
    plain.write_bytes(b"\0" * 4096)
    loaded = spawn(str(model), "--threads", "1")
    other = spawn(str(plain))
    found = {p.pid: p for p in model_processes()}
    assert loaded.pid in found and other.pid not in found
    proc = found[loaded.pid]
    assert proc.loaded and proc.threads == 1 and proc.command.startswith(sys.executable)
    assert proc.cpus  # from /proc/<pid>/status
    assert loaded.pid not in {p.pid for p in model_processes(exclude=[loaded.pid])}

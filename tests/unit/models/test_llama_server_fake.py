"""LlamaServerBackend against a fake llama-server: a small Python HTTP server that takes the real
binary's command line and speaks its SSE protocol (no model). Streaming, pooled connections,
cancelled and failed sequences beside others, per-request KV-prefix usage, the clear errors,
and no orphan server after the parent is killed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from purpose_agent.errors import ModelFileError
from purpose_agent.models import _llama_guard
from purpose_agent.models import llama_server as ls
from purpose_agent.models.base import Message, TokenChunk, stream_tokens
from purpose_agent.models.llama_server import (
    ContextOverflowError,
    LlamaServer,
    LlamaServerBackend,
    LlamaServerError,
    ServerBinaryNotFoundError,
    ServerConfig,
)

# The fake: the same flags as llama-server; the last user message picks the behaviour.
#   "SLOW"     one token every 20 ms, up to 2000, until the client goes away (counted)
#   "MIDERR"   one token, then an error event
#   "OVERFLOW" HTTP 400 exceed_context_size_error, as llama-server sends it
#   "DIE"      one token, then the process exits
#   "CACHED=n" n prompt tokens reported as reused from the slot's KV cache
#   "DROP=n"   the first n requests with this text: the connection closed without a response
#   "CUT"      one token, then the connection closed mid-body (the server lives on)
#   "SEED"     "echo seed <the request's seed>"
#   otherwise  "echo <words>" one word per event; with a schema, {"answer": "<words>"}
# A model file starting with b"BAD" fails to load; --fake-load-s N takes N s to load. GET /stats: connections seen, disconnects.
FAKE_SERVER = r"""#!/usr/bin/env python3
import json, os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

args = sys.argv[1:]
def flag(name, default=None):
    return args[args.index(name) + 1] if name in args else default

model = flag("--model")
with open(model, "rb") as f:
    if f.read(3) == b"BAD":
        print("llama_model_load: error loading model: invalid magic", flush=True)
        print("srv load_model: failed to load model, '%s'" % model, flush=True)
        sys.exit(1)
host, port = flag("--host", "127.0.0.1"), int(flag("--port", "8080"))
time.sleep(float(flag("--fake-load-s", "0")))  # "loading the model"
stats = {"peers": [], "disconnects": 0, "requests": 0}
drops = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data):
        raw = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()

    def _event(self, obj):
        self._chunk("data: " + json.dumps(obj) + "\n\n")

    def _seen(self):
        with lock:
            stats["peers"].append(self.client_address[1])
            stats["requests"] += 1

    def do_GET(self):
        if self.path == "/health":
            return self._json(200, {"status": "ok"})
        if self.path == "/stats":
            with lock:
                return self._json(200, dict(stats, connections=len(set(stats["peers"]))))
        self._json(404, {"error": "not found"})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._seen()
        if self.path == "/tokenize":
            return self._json(200, {"tokens": list(range(len(req["content"].split())))})
        last = req["messages"][-1]["content"]
        prompt = sum(len(m["content"].split()) for m in req["messages"])
        if "OVERFLOW" in last:
            return self._json(400, {"error": {"code": 400, "type": "exceed_context_size_error",
                "message": "the request exceeds the available context size, try increasing it",
                "n_prompt_tokens": 9999, "n_ctx": 2048}})
        for w in last.split():
            if w.startswith("DROP="):
                with lock:
                    seen = drops[last] = drops.get(last, 0) + 1
                if seen <= int(w[5:]):
                    self.close_connection = True
                    return
        cached = 0
        for w in last.split():
            if w.startswith("CACHED="):
                cached = min(int(w[7:]), prompt)
        words = last.split()
        if "SEED" in last:
            words = ["seed", str(req.get("seed"))]
        if req.get("response_format"):
            pieces = ['{"answer": "', " ".join(words), '"}']
        else:
            pieces = ["echo"] + [" " + w for w in words]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if "SLOW" in last:
                for i in range(2000):
                    self._event({"choices": [{"delta": {"content": " %d" % i}, "finish_reason": None}]})
                    time.sleep(0.02)
            for i, piece in enumerate(pieces):
                self._event({"choices": [{"delta": {"content": piece}, "finish_reason": None}]})
                if i == 0 and "MIDERR" in last:
                    self._event({"error": {"code": 500, "message": "slot failed", "type": "server_error"}})
                    self._chunk("data: [DONE]\n\n"); self._chunk("")
                    return
                if i == 0 and "DIE" in last:
                    os._exit(3)
                if i == 0 and "CUT" in last:
                    self.close_connection = True
                    return
            self._event({"choices": [{"delta": {}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens": prompt, "completion_tokens": len(pieces)},
                         "timings": {"prompt_n": prompt - cached, "cache_n": cached,
                                     "predicted_n": len(pieces), "prompt_ms": 1.0, "predicted_ms": 2.0}})
            self._chunk("data: [DONE]\n\n")
            self._chunk("")
        except (BrokenPipeError, ConnectionResetError):
            with lock:
                stats["disconnects"] += 1
            self.close_connection = True


try:
    server = ThreadingHTTPServer((host, port), Handler)
except OSError as exc:
    print("couldn't bind HTTP server socket, hostname: %s, port: %d: %s" % (host, port, exc), flush=True)
    sys.exit(1)
server.daemon_threads = True
print("main: server is listening on http://%s:%d" % (host, port), flush=True)
server.serve_forever()
"""


@pytest.fixture(autouse=True)
def no_other_model_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real model process on this machine (a benchmark) must not make these starts queue."""
    monkeypatch.setattr(_llama_guard, "model_processes", lambda exclude=(): [])


@pytest.fixture(scope="module")
def fake_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # not named llama-server: other tests' scans of /proc must not take it for a model process
    path = tmp_path_factory.mktemp("bin") / "fake-llama-server"
    path.write_text(FAKE_SERVER.replace("/usr/bin/env python3", sys.executable, 1))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "fake.gguf"
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def backend(fake_binary: Path, model_file: Path) -> Iterator[LlamaServerBackend]:
    b = LlamaServerBackend(
        model_path=model_file, binary=fake_binary, threads=1, parallel=4, ctx_per_slot=2048, start_timeout=30
    )
    yield b
    b.close()


def _msgs(text: str) -> list[Message]:
    return [Message("system", "You are a fake."), Message("user", text)]


def _stats(b: LlamaServerBackend) -> dict[str, Any]:
    data = httpx.get(f"{b.server.url}/stats", timeout=5, trust_env=False).json()
    assert isinstance(data, dict)
    return data


# ------------------------------------------------------------------------------ streaming
def test_token_sinks_get_the_servers_stream_chunk_by_chunk_constrained_or_not(
    backend: LlamaServerBackend,
) -> None:
    chunks: list[TokenChunk] = []
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    with stream_tokens(chunks.append):
        c = backend.complete(_msgs("red green blue"), schema, max_tokens=16)
    assert c.ok and c.data == {"answer": "red green blue"}
    assert [ch.text for ch in chunks] == [
        '{"answer": "',
        "red green blue",
        '"}',
    ]  # as decoded, not at the end
    assert all(ch.model == "local-server:fake" for ch in chunks)
    chunks.clear()
    with stream_tokens(chunks.append):
        free = backend.complete(_msgs("one two"), max_tokens=16)
    assert [ch.text for ch in chunks] == ["echo", " one", " two"] and free.text == "echo one two"
    assert free.usage.completion_tokens == 3


def test_astream_yields_each_event_and_closing_it_early_frees_the_slot(backend: LlamaServerBackend) -> None:
    assert list(backend.stream(_msgs("a b c"))) == ["echo", " a", " b", " c"]

    async def first_three() -> list[str]:
        got: list[str] = []
        async with contextlib.aclosing(backend.astream(_msgs("SLOW"))) as chunks:
            async for chunk in chunks:
                got.append(chunk)
                if len(got) == 3:
                    break  # closing the stream closes its connection
        return got

    assert asyncio.run(first_three()) == [" 0", " 1", " 2"]
    assert _wait_for(lambda: _stats(backend)["disconnects"] == 1)


def _wait_for(cond: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)  # polling the fake server's counters
    return False


def test_concurrent_first_calls_wait_for_the_server_to_be_ready(fake_binary: Path, model_file: Path) -> None:
    b = LlamaServerBackend(
        model_path=model_file, binary=fake_binary, threads=1, extra_args=["--fake-load-s", "1.0"]
    )

    async def run() -> list[str]:
        first = asyncio.create_task(b.acomplete(_msgs("w0")))
        while not b.server.running:  # the process is up, its model still loading
            await asyncio.sleep(0.01)
        assert not b.server.ready
        out = [*await asyncio.gather(*(b.acomplete(_msgs(f"w{i}")) for i in range(1, 4))), await first]
        await b.aclose()
        return [c.text for c in out]

    try:
        assert asyncio.run(run()) == ["echo w1", "echo w2", "echo w3", "echo w0"]
    finally:
        b.close()


# ---------------------------------------------------------------------- pooled connections
def test_calls_on_one_loop_reuse_one_kept_alive_connection(backend: LlamaServerBackend) -> None:
    async def three_in_a_row() -> None:
        for word in ("x", "y", "z"):
            assert (await backend.acomplete(_msgs(word))).text == f"echo {word}"

    asyncio.run(three_in_a_row())
    stats = _stats(backend)
    assert stats["requests"] == 3 and stats["connections"] == 1
    assert backend._pool.created == 1


def test_concurrent_calls_share_the_pool_and_close_closes_it(backend: LlamaServerBackend) -> None:
    async def run() -> list[str]:
        out = await asyncio.gather(*(backend.acomplete(_msgs(f"w{i}")) for i in range(4)))
        out += [await backend.acomplete(_msgs("again"))]
        clients = backend._pool.clients()
        assert len(clients) == 1 and not clients[0].is_closed
        await backend.aclose()
        assert clients[0].is_closed and not backend.server.running
        return [c.text for c in out]

    assert asyncio.run(run()) == ["echo w0", "echo w1", "echo w2", "echo w3", "echo again"]


def test_a_request_the_server_dropped_unanswered_is_sent_again(backend: LlamaServerBackend) -> None:
    # what a kept-alive connection closed by the server (5 s idle) as a request went out looks like
    assert backend.complete(_msgs("DROP=2 a")).text == "echo DROP=2 a"
    assert _stats(backend)["requests"] == 3
    with pytest.raises(LlamaServerError, match="request to llama-server failed: RemoteProtocolError"):
        backend.complete(_msgs("DROP=9 b"))
    assert _stats(backend)["requests"] == 3 + 1 + ls.STALE_CONNECTION_RETRIES


def test_a_stream_cut_after_its_first_token_is_an_error_and_is_not_sent_again(
    backend: LlamaServerBackend,
) -> None:
    with pytest.raises(LlamaServerError, match="request to llama-server failed"):
        backend.complete(_msgs("CUT here"))
    assert _stats(backend)["requests"] == 1  # a retry would have repeated tokens already streamed
    assert backend.complete(_msgs("still serving")).text == "echo still serving"


def test_idle_pooled_connections_are_let_go_before_the_server_closes_them(
    backend: LlamaServerBackend,
) -> None:
    async def one() -> httpx.AsyncClient:
        await backend.acomplete(_msgs("x"))
        return await backend._pool.get()

    client = asyncio.run(one())
    pool = client._transport._pool  # type: ignore[attr-defined]
    assert pool._keepalive_expiry == ls.KEEPALIVE_EXPIRY < 5.0  # cpp-httplib's keep-alive timeout


def test_tokenize_reuses_one_sync_client_until_close(backend: LlamaServerBackend) -> None:
    assert backend.tokenize("a b c") == [0, 1, 2]
    assert backend.count_tokens("a b") == 2
    client = backend._sync
    assert client is not None and _stats(backend)["connections"] == 1
    backend.close()
    assert client.is_closed and backend._sync is None and not backend.server.running
    assert backend.tokenize("restarts the server") == [0, 1, 2]  # a new call starts it again


def test_sync_close_inside_a_running_loop_closes_that_loops_client(backend: LlamaServerBackend) -> None:
    async def run() -> None:
        await backend.acomplete(_msgs("hi"))
        (client,) = backend._pool.clients()
        backend.close()  # sync, from async code
        await asyncio.sleep(0.05)  # the close runs as a task on this loop
        assert client.is_closed

    asyncio.run(run())


# ------------------------------------------------------------- sequences beside each other
def test_forks_share_one_server_and_each_sends_its_own_seed(backend: LlamaServerBackend) -> None:
    a, b = backend.fork(), backend.fork()  # before the server started: they find its port
    a.reseed(11)
    b.reseed(22)

    async def run() -> list[str]:
        return [c.text for c in await asyncio.gather(*(m.acomplete(_msgs("SEED")) for m in (a, b, backend)))]

    assert asyncio.run(run()) == ["echo seed 11", "echo seed 22", "echo seed 0"]
    assert a.server is backend.server and a.is_fork and not backend.is_fork
    assert a.tokenize("x y") == [0, 1] and a._sync is None  # the fork uses its origin's client
    a.close()
    asyncio.run(b.aclose())
    assert backend.server.running  # closing a fork leaves the server to its origin
    assert backend.complete(_msgs("SEED")).text == "echo seed 0"
    backend.close()
    assert not backend.server.running


def test_a_cancelled_sequence_does_not_disturb_the_others(backend: LlamaServerBackend) -> None:
    async def run() -> tuple[list[str], list[str]]:
        alone = [(await backend.acomplete(_msgs(f"alone {i}"))).text for i in range(3)]
        slow = asyncio.create_task(backend.acomplete(_msgs("SLOW")))
        await asyncio.sleep(0.1)
        others = await asyncio.gather(*(backend.acomplete(_msgs(f"alone {i}")) for i in range(3)))
        assert not slow.done()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return alone, [c.text for c in others]

    alone, together = asyncio.run(run())
    assert together == alone
    assert _wait_for(lambda: _stats(backend)["disconnects"] == 1)  # the server saw the cancel
    assert backend.complete(_msgs("still serving")).text == "echo still serving"


def test_a_failed_sequence_raises_alone(backend: LlamaServerBackend) -> None:
    async def run() -> list[Any]:
        return await asyncio.gather(
            backend.acomplete(_msgs("one")),
            backend.acomplete(_msgs("MIDERR")),
            backend.acomplete(_msgs("three")),
            return_exceptions=True,
        )

    first, failed, third = asyncio.run(run())
    assert isinstance(failed, LlamaServerError) and "slot failed" in str(failed)
    assert first.text == "echo one" and third.text == "echo three"


def test_kv_prefix_reuse_is_reported_per_concurrent_request(backend: LlamaServerBackend) -> None:
    async def run() -> list[Any]:
        return await asyncio.gather(
            *(backend.acomplete(_msgs(f"CACHED={n} a b c")) for n in (0, 3, 6)),
        )

    usages = [c.usage for c in asyncio.run(run())]
    assert [u.prompt_tokens for u in usages] == [8, 8, 8]  # 4 system words + 4 user words
    assert [u.processed_prompt_tokens for u in usages] == [8, 5, 2]
    backend.complete(_msgs("CACHED=2 z"))
    assert backend.last_timings is not None and backend.last_timings.cache_n == 2


# --------------------------------------------------------------------------- clear errors
def test_a_request_larger_than_the_context_names_the_fix(backend: LlamaServerBackend) -> None:
    with pytest.raises(ContextOverflowError) as info:
        backend.complete(_msgs("OVERFLOW"), max_tokens=64)
    msg = str(info.value)
    assert "exceeds the available context size" in msg
    assert "ctx_per_slot=2048" in msg and "max_tokens=64" in msg and "ctx_per_slot=4096" in msg
    assert backend.complete(_msgs("fits")).text == "echo fits"


def test_a_server_that_dies_mid_request_says_so_and_the_next_call_restarts_it(
    backend: LlamaServerBackend,
) -> None:
    backend.start()
    first_pid = backend.server.pid
    with pytest.raises(LlamaServerError, match=r"(?s)exited with code 3.*a new call restarts it"):
        backend.complete(_msgs("DIE"))
    assert backend.complete(_msgs("back")).text == "echo back"
    assert backend.server.pid != first_pid


def test_a_model_file_that_does_not_load_names_the_fix(fake_binary: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"BAD")
    b = LlamaServerBackend(model_path=bad, binary=fake_binary, threads=1)
    with pytest.raises(
        ModelFileError, match=r"(?s)could not load the model .*broken\.gguf.*Fix.*invalid magic"
    ):
        b.complete(_msgs("hi"))
    assert not b.server.running


def test_a_binary_that_cannot_execute_names_the_fix(tmp_path: Path, model_file: Path) -> None:
    junk = tmp_path / "llama-server"
    junk.write_bytes(b"\x7fNOT-AN-ELF")
    junk.chmod(0o755)
    server = LlamaServer(ServerConfig(model_file, threads=1), binary=junk)
    with pytest.raises(ServerBinaryNotFoundError, match=r"cannot execute .*make install-server"):
        server.start()
    assert not server.running


# ----------------------------------------------------------------------------- no orphans
CHILD = """
import json, sys, threading
from purpose_agent.models.llama_server import LlamaServer, ServerConfig
from pathlib import Path
server = LlamaServer(ServerConfig(Path({model!r}), threads=1), binary={binary!r}, oversubscribe=True)
t = threading.Thread(target=server.start)  # started from a thread that then exits
t.start(); t.join()
print(json.dumps({{"pid": server.pid, "url": server.url}}), flush=True)
if {exit_normally!r}:
    sys.exit(0)  # without stop(): atexit must stop it
sys.stdin.read()  # block until killed
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state  # a zombie waiting for init to reap it is dead


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
@pytest.mark.parametrize("how", ["sigkill", "sigterm", "exit"])
def test_no_orphan_server_after_the_parent_dies(fake_binary: Path, model_file: Path, how: str) -> None:
    code = textwrap.dedent(
        CHILD.format(model=str(model_file), binary=str(fake_binary), exit_normally=how == "exit")
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    pid = None
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline())
        pid = info["pid"]
        if how != "exit":
            # still serving after the thread that started it ended
            assert httpx.get(f"{info['url']}/health", timeout=5, trust_env=False).status_code == 200
            os.kill(child.pid, signal.SIGKILL if how == "sigkill" else signal.SIGTERM)
        child.wait(timeout=15)
        assert _wait_for(lambda: _gone(pid)), f"fake llama-server pid {pid} outlived its parent ({how})"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if pid is not None and not _gone(pid):  # the test failed: do not leave the fake behind
            os.kill(pid, signal.SIGKILL)

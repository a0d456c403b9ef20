"""Real token streaming: the embedded llama.cpp model in-process and the llama.cpp server on
127.0.0.1. Streamed tokens joined equal the non-streamed reply; cancelling a streamed run stops
the model and leaves it usable."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import purpose_agent as pa
from purpose_agent.core import events as ev
from purpose_agent.models import catalog
from purpose_agent.models.base import Completion, Message, TokenChunk, stream_tokens
from purpose_agent.models.local import LocalBackend
from purpose_agent.models.openai_compat import OpenAICompatibleBackend

pytestmark = pytest.mark.integration

MODEL = "qwen2.5-coder-0.5b"
MSGS = [
    Message("system", "You answer in JSON."),
    Message("user", "Which country is Paris in? Answer as JSON with city and country."),
]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalBackend]:
    b = LocalBackend(MODEL, n_ctx=2048)
    yield b
    b.close()


async def _streamed(
    llm: pa.Backend, schema: dict[str, object] | None, max_tokens: int
) -> tuple[list[str], str]:
    chunks: list[TokenChunk] = []
    with stream_tokens(chunks.append):
        c = await llm.acomplete(MSGS, schema, max_tokens=max_tokens)
    return [ch.text for ch in chunks], c.text


def _equal_to_plain(llm: pa.Backend, schema: dict[str, object] | None, max_tokens: int) -> None:
    llm.complete(MSGS, schema, max_tokens=max_tokens)  # cold: a warm context may decode differently
    plain = llm.complete(MSGS, schema, max_tokens=max_tokens)
    chunks, text = asyncio.run(_streamed(llm, schema, max_tokens))
    assert len(chunks) > 3, chunks  # token by token, not one block
    assert "".join(chunks) == text == plain.text, (chunks, plain.text)


@pytest.mark.parametrize("schema", [SCHEMA, None], ids=["constrained", "free"])
def test_local_streamed_tokens_join_to_the_non_streamed_reply(
    local: LocalBackend, schema: dict[str, object] | None
) -> None:
    _equal_to_plain(local, schema, 40)


def test_local_stream_usage_matches_the_plain_call(local: LocalBackend) -> None:
    plain = local.complete(MSGS, SCHEMA, max_tokens=40)
    chunks: list[TokenChunk] = []

    async def go() -> Completion:
        with stream_tokens(chunks.append):
            return await local.acomplete(MSGS, SCHEMA, max_tokens=40)

    streamed = asyncio.run(go())
    assert streamed.usage.prompt_tokens == plain.usage.prompt_tokens > 0
    assert streamed.usage.completion_tokens == plain.usage.completion_tokens > 0
    assert streamed.data == plain.data == {"city": "Paris", "country": "France"}


def test_cancelling_a_local_streamed_run_stops_the_model_and_keeps_it_usable(
    local: LocalBackend, tmp_path: Path
) -> None:
    orch = pa.Orchestrator(local, pa.SimpleEnvironment(), trace_dir=tmp_path, actor_max_tokens=300)
    before = set(threading.enumerate())
    got: list[ev.Event] = []

    async def go() -> float:
        stream = pa.AsyncOrchestrator(orch).run_task_stream("Write a long story about a cat, then finish.")
        async for event in stream:
            got.append(event)
            if sum(e.kind == "token" and e.role == "actor" for e in got) >= 3:
                break
        t0 = time.monotonic()
        await stream.aclose()
        return time.monotonic() - t0

    waited = asyncio.run(go())
    assert waited < 5  # stopped at the next token, not after 300
    assert not [t for t in threading.enumerate() if t not in before and t.name.endswith("-stream")]
    trace = ev.read_trace(tmp_path / f"{got[0].run_id}.jsonl")
    assert trace[-1]["kind"] == "task_end" and trace[-1]["stop_reason"] == "cancelled"
    c = local.complete(MSGS, SCHEMA, max_tokens=40)  # the context is still usable
    assert c.data == {"city": "Paris", "country": "France"}


# ----------------------------------------------------------------------------- the server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = catalog.ensure_model_file(MODEL)
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w+")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--n_threads", "2", "--n_ctx", "2048", "--model_alias", "qwen-0.5b"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)  # polling a starting server (fixture, not a test assertion)
        else:
            raise RuntimeError("llama_cpp.server did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.parametrize("schema", [SCHEMA, None], ids=["constrained", "free"])
def test_server_streamed_tokens_join_to_the_non_streamed_reply(
    server_url: str, schema: dict[str, object] | None
) -> None:
    b = OpenAICompatibleBackend("qwen-0.5b", server_url, provider="llamacpp")
    try:
        _equal_to_plain(b, schema, 40)
    finally:
        b.close()


def test_run_task_stream_through_the_server(server_url: str, tmp_path: Path) -> None:
    b = OpenAICompatibleBackend("qwen-0.5b", server_url, provider="llamacpp")
    orch = pa.Orchestrator(b, pa.SimpleEnvironment(), trace_dir=tmp_path, actor_max_tokens=120)

    async def go() -> list[ev.Event]:
        events = [
            e
            async for e in pa.AsyncOrchestrator(orch).run_task_stream("Say hello, then finish.", max_steps=2)
        ]
        await b.aclose()
        return events

    events = asyncio.run(go())
    kinds = [e.kind for e in events]
    assert kinds[0] == "task_start" and kinds[-1] == "task_end" and "action" in kinds
    actor = [e for e in events if isinstance(e, ev.TokenStreamed) and e.role == "actor" and e.step == 1]
    assert len(actor) > 3
    action = next(e for e in events if isinstance(e, ev.ActionChosen))
    assert action.name in "".join(t.text for t in actor)  # the streamed reply is the action chosen

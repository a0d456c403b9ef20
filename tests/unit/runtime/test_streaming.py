"""AsyncOrchestrator.run_task_stream: typed events with real token streaming (SSE, NDJSON, and a
threaded llama.cpp-like engine), cancellation, mid-stream failures, pooled HTTP clients."""

from __future__ import annotations

import asyncio
import json
import threading
import types
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _stream_helpers import (
    DONE_REPLY,
    StreamServer,
    critic,
    done_reply,
    env,
    iter_lines,
    kinds,
    split,
    tokens,
)

import purpose_agent as pa
from purpose_agent.core import events as ev
from purpose_agent.errors import BackendError
from purpose_agent.models._http import RetryPolicy
from purpose_agent.models.base import Message, TokenChunk, stream_tokens
from purpose_agent.models.local import LocalBackend
from purpose_agent.models.ollama import OllamaBackend
from purpose_agent.models.openai_compat import OpenAICompatibleBackend


async def _noop(_d: float) -> None:
    return None


NO_WAIT = RetryPolicy(attempts=3, base_delay=0.01, sleep=_noop)


@pytest.fixture
def server() -> Iterator[StreamServer]:
    s = StreamServer(done_reply)
    yield s
    s.close()


def openai(server: StreamServer) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend("m", server.url + "/v1", "k", retry=NO_WAIT)


async def collect(stream: Any) -> list[Any]:
    return [e async for e in stream]


# ----------------------------------------------------------------------------- the stream
@pytest.mark.parametrize("kind", ["openai", "ollama"])
async def test_stream_has_typed_events_and_tokens_join_to_the_non_streamed_reply(
    kind: str, server: StreamServer
) -> None:
    llm = openai(server) if kind == "openai" else OllamaBackend("m", server.url, retry=NO_WAIT)
    orch = pa.Orchestrator(llm, env(), critic_llm=critic())
    stream = pa.AsyncOrchestrator(orch).run_task_stream("Answer 2 + 3.", max_steps=3)
    events = await collect(stream)
    ks = kinds(events)
    assert ks[0] == "task_start" and ks[-1] == "task_end"
    assert ks.index("token") < ks.index("action") < ks.index("observation") < ks.index("score")
    streamed = tokens(events)
    assert streamed == split(DONE_REPLY)  # chunk by chunk, in order, each once
    actor_tokens = [e for e in events if e.kind == "token" and e.role == "actor"]
    assert all(isinstance(e, ev.TokenStreamed) and e.model == llm.name for e in actor_tokens)
    # the same request without streaming gives the same text
    req = server.requests[-1]["json"]
    assert req["stream"] is True
    msgs = [Message(m["role"], m["content"]) for m in req["messages"]]
    plain = await llm.acomplete(msgs, {"type": "object"})
    assert "".join(streamed) == plain.text == DONE_REPLY
    assert stream.result is not None and stream.result.success and stream.error is None
    # usage from the stream's last chunk
    cost = next(e for e in events if e.kind == "cost" and e.role == "actor")
    assert cost.prompt_tokens == 30 and cost.completion_tokens == len(split(DONE_REPLY))
    # tokens are not in the trace; everything else is
    trace = [e["kind"] for e in iter_lines(stream.result.trace_path)]
    assert "token" not in trace and trace == [k for k in ks if k != "token"]
    await llm.aclose()


async def test_the_streamed_request_is_constrained_like_the_plain_one(server: StreamServer) -> None:
    llm = openai(server)
    orch = pa.Orchestrator(llm, env(), critic_llm=critic())
    await collect(pa.AsyncOrchestrator(orch).run_task_stream("Answer 2 + 3.", max_steps=2))
    body = server.requests[-1]["json"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["stream_options"] == {"include_usage": True}


async def test_tokens_false_leaves_tokens_out(server: StreamServer) -> None:
    orch = pa.Orchestrator(openai(server), env(), critic_llm=critic())
    events = await collect(pa.AsyncOrchestrator(orch).run_task_stream("Answer.", max_steps=2, tokens=False))
    assert "token" not in kinds(events) and kinds(events)[-1] == "task_end"


async def test_scripted_models_stream_one_chunk_per_reply() -> None:
    actor = pa.ScriptedModel([{"thought": "t", "action": "DONE", "params": {"answer": "5"}}])
    orch = pa.Orchestrator(actor, env(), critic_llm=critic())
    events = await collect(pa.AsyncOrchestrator(orch).run_task_stream("Answer.", max_steps=2))
    assert len(tokens(events)) == 1 and json.loads(tokens(events)[0])["action"] == "DONE"
    assert tokens(events, "critic", 0) and tokens(events, "critic", 1)  # the critic streams too


async def test_validation_runs_started_inside_a_run_do_not_leak_into_its_stream(server: StreamServer) -> None:
    orch = pa.Orchestrator(openai(server), env(), critic_llm=critic())
    nested: list[asyncio.Task[Any]] = []
    inner = pa.Orchestrator(
        pa.ScriptedModel([{"thought": "t", "action": "DONE", "params": {}}]), env(), critic_llm=critic()
    )

    def spawn(event: ev.Event) -> None:  # a run started from within the streamed run's task
        if isinstance(event, ev.Scored) and not nested:
            nested.append(asyncio.get_running_loop().create_task(inner.arun_task("inner", max_steps=1)))

    orch.bus.subscribe(spawn)
    stream = pa.AsyncOrchestrator(orch).run_task_stream("Answer.", max_steps=2)
    events = await collect(stream)
    inner_result = await nested[0]
    assert inner_result.run_id != stream.result.run_id  # type: ignore[union-attr]
    assert {e.run_id for e in events} == {stream.result.run_id}  # type: ignore[union-attr]


# ----------------------------------------------------------------------------- failures
async def test_mid_stream_drop_is_an_error_event_and_no_token_is_sent_twice(server: StreamServer) -> None:
    server.drop_after = 3
    llm = openai(server)
    orch = pa.Orchestrator(llm, env(), critic_llm=critic())
    stream = pa.AsyncOrchestrator(orch).run_task_stream("Answer.", max_steps=3)
    events = await collect(stream)
    assert tokens(events) == split(DONE_REPLY)[:3]  # what arrived, once: no replay by a retry
    assert len(server.requests) == 1
    err = next(e for e in events if e.kind == "error")
    assert "stream broke after" in err.message and "not retried" in err.message
    assert kinds(events)[-1] == "task_end" and events[-1].stop_reason.startswith("error")
    assert isinstance(stream.error, pa.PurposeAgentError) and stream.result is not None
    assert not stream.result.success


async def test_errors_before_the_first_token_are_retried(server: StreamServer) -> None:
    server.fail_first = 2
    llm = openai(server)
    chunks = [c async for c in llm.astream([Message("user", "hi")])]
    assert chunks == split(DONE_REPLY) and len(server.requests) == 3


async def test_stream_lines_raises_after_a_drop_instead_of_replaying(server: StreamServer) -> None:
    server.drop_after = 2
    got: list[str] = []
    with pytest.raises(BackendError, match="stream broke after"):
        async for c in openai(server).astream([Message("user", "hi")]):
            got.append(c)
    assert got == split(DONE_REPLY)[:2] and len(server.requests) == 1


# ----------------------------------------------------------------------------- cancellation
async def test_cancelling_the_iteration_stops_the_run_and_closes_the_trace(server: StreamServer) -> None:
    server.hold_after = 2
    llm = openai(server)
    orch = pa.Orchestrator(llm, env(), critic_llm=critic())
    stream = pa.AsyncOrchestrator(orch).run_task_stream("Answer.", max_steps=3)
    seen: list[Any] = []
    async for event in stream:
        seen.append(event)
        if event.kind == "token":
            break
    await stream.aclose()
    trace_path = Path(orch.trace_dir) / f"{seen[0].run_id}.jsonl"
    last = list(iter_lines(str(trace_path)))[-1]
    assert last["kind"] == "task_end" and last["stop_reason"] == "cancelled"
    assert not orch._run_listeners  # the run let go of the stream
    server.release.set()
    # the backend (its pooled client) is still usable
    assert (await llm.acomplete([Message("user", "again")])).text == DONE_REPLY
    await llm.aclose()


async def test_cancelling_the_consumer_task_cancels_the_run(server: StreamServer) -> None:
    server.hold_after = 1
    orch = pa.Orchestrator(openai(server), env(), critic_llm=critic())
    got_token = asyncio.Event()
    run_ids: list[str] = []

    async def consume() -> None:
        async with pa.AsyncOrchestrator(orch).run_task_stream("Answer.", max_steps=3) as events:
            async for event in events:
                run_ids.append(event.run_id)
                if event.kind == "token":
                    got_token.set()

    task = asyncio.create_task(consume())
    await got_token.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    last = list(iter_lines(str(Path(orch.trace_dir) / f"{run_ids[0]}.jsonl")))[-1]
    assert last["stop_reason"] == "cancelled"


class _FakeLlama:
    """Enough of ``llama_cpp.Llama`` for LocalBackend: an endless token generator."""

    def __init__(self, **_kw: Any) -> None:
        self.n_tokens = 0
        self._input_ids: list[int] = []
        self._model = types.SimpleNamespace(vocab=None)
        self.produced = 0

    def generate(self, tokens: list[int], **_kw: Any) -> Iterator[int]:
        self._input_ids = list(tokens)
        self.n_tokens = len(tokens)
        i = 0
        while True:
            i += 1
            yield i

    def create_chat_completion(
        self, *, max_tokens: int, stream: bool, **_kw: Any
    ) -> Iterator[dict[str, Any]]:
        assert stream
        for n, tok in enumerate(self.generate([1, 2, 3, 4, 5]), start=1):
            self.produced += 1
            self.n_tokens += 1
            last = n >= max_tokens
            yield {
                "choices": [{"delta": {"content": f"t{tok} "}, "finish_reason": "length" if last else None}]
            }
            if last:
                return


def _fake_local() -> tuple[LocalBackend, _FakeLlama]:
    fake = _FakeLlama()
    b = LocalBackend.__new__(LocalBackend)
    b.name, b.model_path, b.n_ctx, b.n_threads = "local:fake", Path("x"), 64, 1
    b.n_batch, b.seed, b.max_slots = 8, 0, 2
    b._slots, b._lock, b._vocab = OrderedDict(), threading.Lock(), None
    b._llama_cpp = types.SimpleNamespace(Llama=lambda **kw: fake, llama_vocab_is_eog=lambda vocab, tok: False)
    return b, fake


async def test_local_stream_usage_counts_and_text() -> None:
    b, _fake = _fake_local()
    got: list[TokenChunk] = []
    with stream_tokens(got.append):
        c = await b.acomplete([Message("user", "count")], max_tokens=4)
    assert [g.text for g in got] == ["t1 ", "t2 ", "t3 ", "t4 "] and c.text == "t1 t2 t3 t4"  # stripped
    assert c.usage.prompt_tokens == 5 and c.usage.completion_tokens == 4 and c.finish_reason == "length"


async def test_closing_a_local_stream_stops_the_worker_thread_and_keeps_the_context() -> None:
    b, fake = _fake_local()
    before = set(threading.enumerate())
    agen = b.astream([Message("user", "count forever")], max_tokens=10**9)
    first = await agen.__anext__()
    await agen.aclose()  # what cancelling the run does to the model call
    assert first == "t1 " and fake.produced < 10**9
    assert not [t for t in threading.enumerate() if t not in before]  # joined, none left running
    assert b._lock.acquire(blocking=False)  # the context is free again
    b._lock.release()
    assert [c async for c in b.astream([Message("user", "again")], max_tokens=2)] == ["t1 ", "t2 "]


# ----------------------------------------------------------------------------- pooling
async def test_one_pooled_client_per_backend_closed_with_it(server: StreamServer) -> None:
    llm = openai(server)
    for _ in range(3):
        await llm.acomplete([Message("user", "hi")])
    assert [c async for c in llm.astream([Message("user", "hi")])]
    assert llm._pool.created == 1 and len(set(server.ports[:3])) == 1  # one kept-alive connection
    (client,) = llm._pool.clients()
    await llm.aclose()
    assert client.is_closed and not llm._pool.clients()


def test_sync_calls_in_fresh_event_loops_close_their_clients(server: StreamServer) -> None:
    llm = OllamaBackend("m", server.url)
    opened: list[Any] = []
    factory = llm._pool._factory
    llm._pool._factory = lambda: opened.append(factory()) or opened[-1]
    for _ in range(2):
        assert llm.complete([Message("user", "hi")]).text == DONE_REPLY
    assert llm._pool.created == 2  # one per loop: a client never outlives its loop
    # each closed when asyncio.run shut its loop down
    assert len(opened) == 2 and all(c.is_closed for c in opened)
    llm.close()

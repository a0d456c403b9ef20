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

The parts: :mod:`._llama_errors` (the errors), :mod:`._llama_command` (binary lookup and command
line), :mod:`._llama_guard` (the cores: other model processes, the wait, the start lock),
:mod:`._llama_process` (``LlamaServer``, the child process); this module is the backend and the
import path of them all.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import threading
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from purpose_agent.errors import ModelFileError
from purpose_agent.models import catalog
from purpose_agent.models._http import ClientPool, RetryPolicy, loads_or_none
from purpose_agent.models._llama_command import BINARY_NAME as BINARY_NAME
from purpose_agent.models._llama_command import (
    SERVER_ENV,
    ServerConfig,
    build_command,
    find_server_binary,
)
from purpose_agent.models._llama_command import binary_candidates as binary_candidates
from purpose_agent.models._llama_errors import (
    ContextOverflowError,
    CoresBusyError,
    LlamaServerError,
    PortInUseError,
    ServerBinaryNotFoundError,
)
from purpose_agent.models._llama_guard import BUSY_POLL_S as BUSY_POLL_S
from purpose_agent.models._llama_guard import ModelProcess, WhenBusy, available_cores, model_processes
from purpose_agent.models._llama_guard import other_model_processes as other_model_processes
from purpose_agent.models._llama_process import PR_SET_PDEATHSIG as PR_SET_PDEATHSIG
from purpose_agent.models._llama_process import LlamaServer
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
        #: the backend this one is a fork of (``fork``), which owns the server; None: this one does
        self._forked_from: LlamaServerBackend | None = None
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
        self.base_url = self.server.base_url  # a fork, or a server restarted on another port

    def reseed(self, seed: int) -> None:
        """The seed sent with every following request."""
        self.seed = seed

    def fork(self) -> LlamaServerBackend:
        """A handle on this backend's server (the same process, slots and kept-alive
        connections) with its own seed and timings, for one of several runs at once: a run that
        reseeds its fork never changes the seed of another run's requests. Closing a fork
        leaves the server running; it stops with this backend."""
        twin = copy.copy(self)
        twin.last_timings = None
        twin._forked_from = self  # keeps this backend (and so its server) alive while the fork is
        return twin

    @property
    def is_fork(self) -> bool:
        return self._forked_from is not None

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
        if self._forked_from is not None:
            return self._forked_from._client()
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
        """Close the HTTP clients and stop the server (a later call starts it again); on a
        fork, nothing (the server and its clients belong to the backend it came from)."""
        if self.is_fork:
            return
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
        if self.is_fork:
            return
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

"""The model protocol: one async completion method, a streaming variant, sync wrappers.

A backend implements ``_generate`` (raw text for messages, optionally constrained by a JSON
schema). ``BaseBackend.acomplete`` adds what every backend needs on top: schema sanitising
(docs/MODELS.md), robust parsing, one repair retry on a bad or truncated reply, usage and
latency on every call.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import copy
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from purpose_agent.core.types import Usage as Usage
from purpose_agent.errors import BackendError
from purpose_agent.models.parsing import parse_structured, strip_think

Role = Literal["system", "user", "assistant", "tool"]
T = TypeVar("T")
_B = TypeVar("_B", bound="BaseBackend")


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


def system(text: str) -> Message:
    return Message("system", text)


def user(text: str) -> Message:
    return Message("user", text)


def assistant(text: str) -> Message:
    return Message("assistant", text)


ZERO_USAGE = Usage(calls=0)


@dataclass(frozen=True, slots=True)
class RawCompletion:
    """What a backend's ``_generate`` returns: text as the model wrote it."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    data: dict[str, Any] | None = None  # test models may answer with data directly


@dataclass(frozen=True, slots=True)
class Completion:
    """The result of ``acomplete``: text, parsed data when a schema was given, usage."""

    text: str
    usage: Usage
    model: str = ""
    data: dict[str, Any] | None = None
    finish_reason: str | None = None
    latency_s: float = 0.0
    parse_error: str | None = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.parse_error is None


@dataclass(frozen=True, slots=True)
class TokenChunk:
    """A piece of a reply, passed to the token sink as the backend streams it. ``attempt`` is 2
    for the repair retry of a reply that did not parse (a new reply, not a repeat)."""

    text: str
    model: str = ""
    attempt: int = 1


TokenSink = Callable[[TokenChunk], None]
_TOKEN_SINK: contextvars.ContextVar[TokenSink | None] = contextvars.ContextVar(
    "purpose_agent_token_sink", default=None
)


@contextmanager
def stream_tokens(sink: TokenSink | None) -> Iterator[None]:
    """Within this block (this task and the tasks it starts), every ``acomplete`` of a
    ``BaseBackend`` streams its reply, constrained as usual, and hands each chunk to ``sink``
    as it arrives. The completion returned is the same; its text is the chunks joined."""
    token = _TOKEN_SINK.set(sink)
    try:
        yield
    finally:
        _TOKEN_SINK.reset(token)


@asynccontextmanager
async def closing_stream(stream: AsyncIterator[Any]) -> AsyncIterator[None]:
    """Close an async generator when the block ends: leaving an ``async for`` early does not,
    and an unclosed stream keeps its HTTP response or worker thread until garbage collection."""
    try:
        yield
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


def current_token_sink() -> TokenSink | None:
    return _TOKEN_SINK.get()


@runtime_checkable
class Backend(Protocol):
    """What the loop needs from a model."""

    name: str

    async def acomplete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None = None,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion: ...

    def astream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> AsyncIterator[str]: ...

    def complete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None = None,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion: ...


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine from sync code, also when an event loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=worker, daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------- schema sanitising
def sanitize_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Make a JSON schema safe for grammar-constrained decoding (docs/MODELS.md).

    - ``maxLength`` is dropped (a large one makes llama.cpp's grammar build fail and segfault);
      length is capped with ``max_tokens`` instead.
    - integer ``minimum``/``maximum`` (ignored by the grammar) become an ``enum`` when the range
      is small, so scores 0..10 are enforced.
    """
    out = copy.deepcopy(dict(schema))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            node.pop("maxLength", None)
            node.pop("minLength", None)
            node.pop("pattern", None)
            if node.get("type") == "integer" and "enum" not in node:
                lo, hi = node.get("minimum"), node.get("maximum")
                if isinstance(lo, int) and isinstance(hi, int) and 0 <= hi - lo <= 100:
                    node["enum"] = list(range(lo, hi + 1))
                    node.pop("minimum", None)
                    node.pop("maximum", None)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        return node

    result: dict[str, Any] = walk(out)
    return result


_REPAIR_HINT = (
    "Your previous reply could not be used ({error}). Reply again with only one complete JSON "
    "object that follows the schema, short strings, nothing else."
)


class BaseBackend(abc.ABC):
    """Shared behaviour of every backend. Subclasses implement ``_generate``."""

    name: str = "backend"
    #: whether ``_generate`` enforces the schema itself (grammar / json_schema / format)
    constrained: bool = False

    @abc.abstractmethod
    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion: ...

    async def _generate_stream(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str | RawCompletion]:
        """Streaming generation: text chunks as they arrive, then one ``RawCompletion`` (text =
        the chunks joined, with usage and finish reason). Backends that stream override it; the
        default is one chunk with the whole reply of ``_generate``."""
        raw = await self._generate(messages, schema, max_tokens=max_tokens, temperature=temperature)
        if raw.text:
            yield raw.text
        yield raw

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        """Text chunks of an unconstrained reply (``astream``), from ``_generate_stream``."""
        gen = self._generate_stream(messages, None, max_tokens=max_tokens, temperature=temperature)
        async with closing_stream(gen):  # closing this stream closes the backend's at once
            async for item in gen:
                if isinstance(item, str) and item:
                    yield item

    async def _call(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
        attempt: int,
    ) -> RawCompletion:
        """One generation: streamed to the token sink when one is set (``stream_tokens``)."""
        sink = _TOKEN_SINK.get()
        if sink is None:
            return await self._generate(messages, schema, max_tokens=max_tokens, temperature=temperature)
        final: RawCompletion | None = None
        parts: list[str] = []
        gen = self._generate_stream(messages, schema, max_tokens=max_tokens, temperature=temperature)
        async with closing_stream(gen):
            async for item in gen:
                if isinstance(item, RawCompletion):
                    final = item
                elif item:
                    parts.append(item)
                    sink(TokenChunk(item, self.name, attempt))
        if final is None:
            raise BackendError(f"{self.name}: the stream ended without a final reply")
        return final

    async def acomplete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None = None,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        start = time.perf_counter()
        msgs = list(messages)
        clean = sanitize_schema(schema) if schema is not None else None
        raw = await self._call(msgs, clean, max_tokens=max_tokens, temperature=temperature, attempt=1)
        usage = raw.usage
        if clean is None:
            text = strip_think(raw.text)
            return Completion(text, usage, self.name, None, raw.finish_reason, time.perf_counter() - start)
        outcome = parse_structured(raw.text, clean) if raw.data is None else None
        data = raw.data if raw.data is not None else (outcome.data if outcome else None)
        error = outcome.error if outcome else None
        attempts = 1
        if error is not None:
            # one repair retry: show the model its bad reply and ask again, with more room if truncated
            truncated = raw.finish_reason == "length"
            retry_msgs = [
                *msgs,
                Message("assistant", raw.text[-2000:]),
                Message("user", _REPAIR_HINT.format(error=("cut off: too long" if truncated else error))),
            ]
            raw2 = await self._call(
                retry_msgs,
                clean,
                max_tokens=max_tokens * 2 if truncated else max_tokens,
                temperature=temperature,
                attempt=2,
            )
            usage = usage + raw2.usage
            attempts = 2
            outcome2 = parse_structured(raw2.text, clean) if raw2.data is None else None
            if raw2.data is not None or (outcome2 is not None and outcome2.ok):
                raw = raw2
                data = raw2.data if raw2.data is not None else (outcome2.data if outcome2 else None)
                error = None
            elif outcome2 is not None and outcome2.data and len(outcome2.data) > len(data or {}):
                raw, data, error = raw2, outcome2.data, outcome2.error
        return Completion(
            raw.text,
            usage,
            self.name,
            data,
            raw.finish_reason,
            time.perf_counter() - start,
            error,
            attempts,
        )

    async def astream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        gen = self._stream(list(messages), max_tokens=max_tokens, temperature=temperature)
        async with closing_stream(gen):
            async for chunk in gen:
                yield chunk

    # ----------------------------------------------------------------------- sync wrappers
    def complete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None = None,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        return run_sync(
            lambda: self.acomplete(messages, schema, max_tokens=max_tokens, temperature=temperature)
        )

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        """Sync streaming: chunks are yielded as the backend produces them (a worker thread
        runs the async stream)."""
        chunks: queue.Queue[tuple[str, Any]] = queue.Queue()

        async def pump() -> None:
            try:
                async for c in self.astream(messages, max_tokens=max_tokens, temperature=temperature):
                    chunks.put(("chunk", c))
            except BaseException as exc:
                chunks.put(("error", exc))
            finally:
                chunks.put(("end", None))

        worker = threading.Thread(target=lambda: asyncio.run(pump()), daemon=True)
        worker.start()
        while True:
            kind, value = chunks.get()
            if kind == "chunk":
                yield value
            elif kind == "error":
                raise value
            else:
                break
        worker.join()

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP clients, model contexts)."""

    def close(self) -> None:
        """``aclose`` from sync code."""
        run_sync(self.aclose)

    async def __aenter__(self: _B) -> _B:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

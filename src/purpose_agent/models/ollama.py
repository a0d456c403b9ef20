"""Ollama's native chat API, with the JSON schema passed as ``format``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from purpose_agent.errors import BackendError, ConfigurationError
from purpose_agent.models._http import ClientPool, RetryPolicy, loads_or_none, post_json, stream_lines
from purpose_agent.models.base import BaseBackend, Message, RawCompletion, Usage

DEFAULT_HOST = "http://127.0.0.1:11434"


class OllamaBackend(BaseBackend):
    """``POST {host}/api/chat``; the host comes from ``OLLAMA_HOST`` when not given."""

    constrained = True

    def __init__(
        self,
        model: str,
        host: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        keep_alive: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise ConfigurationError("ollama: a model tag is required, e.g. 'ollama:qwen3:1.7b'")
        host = host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
        if not host.startswith(("http://", "https://")):
            host = "http://" + host
        self.model = model
        self.host = host.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.keep_alive = keep_alive
        self.name = f"ollama:{model}"
        self._transport = transport
        #: one pooled client per event loop, closed with the backend (``aclose``)
        self._pool = ClientPool(lambda: httpx.AsyncClient(transport=self._transport))

    def _payload(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        temperature: float,
        stream: bool,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": stream,
            "options": {"temperature": temperature, "num_predict": max_tokens},
        }
        if schema is not None:
            payload["format"] = dict(schema)
        if self.keep_alive is not None:
            payload["keep_alive"] = self.keep_alive
        return payload

    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        data = await post_json(
            await self._pool.get(),
            f"{self.host}/api/chat",
            self._payload(messages, schema, max_tokens, temperature, False),
            {"Content-Type": "application/json"},
            self.retry,
            self.name,
        )
        message = data.get("message")
        if not isinstance(message, dict):
            raise BackendError(f"{self.name}: unexpected response shape: {str(data)[:300]}")
        return RawCompletion(str(message.get("content") or ""), _usage(data), _finish(data))

    async def _generate_stream(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str | RawCompletion]:
        """NDJSON streaming, constrained by ``format`` like ``_generate``; the last line
        (``done``) carries the token counts."""
        parts: list[str] = []
        final: dict[str, Any] = {}
        lines = stream_lines(
            await self._pool.get(),
            f"{self.host}/api/chat",
            self._payload(messages, schema, max_tokens, temperature, True),
            {"Content-Type": "application/json"},
            self.retry,
            self.name,
        )
        async with aclosing(lines):  # closing this stream closes the HTTP response
            async for line in lines:
                event = loads_or_none(line)
                if not event:
                    continue
                if event.get("error"):
                    raise BackendError(
                        f"{self.name}: the server reported an error mid-stream: {event['error']}"
                    )
                chunk = (event.get("message") or {}).get("content")
                if chunk:
                    parts.append(chunk)
                    yield chunk
                if event.get("done"):
                    final = event
                    break
        yield RawCompletion("".join(parts), _usage(final), _finish(final))

    async def aclose(self) -> None:
        await self._pool.aclose()


def _usage(data: Mapping[str, Any]) -> Usage:
    prompt = int(data.get("prompt_eval_count") or 0)
    return Usage(prompt, int(data.get("eval_count") or 0), prompt)


def _finish(data: Mapping[str, Any]) -> str:
    return "length" if data.get("done_reason") == "length" else "stop"

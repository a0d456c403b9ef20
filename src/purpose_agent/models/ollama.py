"""Ollama's native chat API, with the JSON schema passed as ``format``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from purpose_agent.errors import BackendError, ConfigurationError
from purpose_agent.models._http import RetryPolicy, loads_or_none, post_json, stream_lines
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
        async with httpx.AsyncClient(transport=self._transport) as client:
            data = await post_json(
                client,
                f"{self.host}/api/chat",
                self._payload(messages, schema, max_tokens, temperature, False),
                {"Content-Type": "application/json"},
                self.retry,
                self.name,
            )
        message = data.get("message")
        if not isinstance(message, dict):
            raise BackendError(f"{self.name}: unexpected response shape: {str(data)[:300]}")
        reason = data.get("done_reason")
        return RawCompletion(
            str(message.get("content") or ""),
            Usage(
                int(data.get("prompt_eval_count") or 0),
                int(data.get("eval_count") or 0),
                int(data.get("prompt_eval_count") or 0),
            ),
            "length" if reason == "length" else "stop",
        )

    async def _stream(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> AsyncIterator[str]:
        async with httpx.AsyncClient(transport=self._transport) as client:
            async for line in stream_lines(
                client,
                f"{self.host}/api/chat",
                self._payload(messages, None, max_tokens, temperature, True),
                {"Content-Type": "application/json"},
                self.retry,
                self.name,
            ):
                event = loads_or_none(line)
                if not event:
                    continue
                chunk = (event.get("message") or {}).get("content")
                if chunk:
                    yield chunk
                if event.get("done"):
                    break

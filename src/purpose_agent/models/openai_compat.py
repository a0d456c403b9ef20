"""OpenAI-compatible chat completions (OpenAI, OpenRouter, Groq, Together, Fireworks, Cerebras,
DeepSeek, Mistral, the HF router, vLLM and the llama.cpp server)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from purpose_agent.errors import BackendError, ConfigurationError
from purpose_agent.models._http import ClientPool, RetryPolicy, loads_or_none, post_json, stream_lines
from purpose_agent.models.base import BaseBackend, Message, RawCompletion, Usage

SchemaMode = Literal["json_schema", "json_object", "none"]


@dataclass(frozen=True, slots=True)
class ProviderPreset:
    name: str
    base_url: str
    api_key_env: str
    schema_mode: SchemaMode = "json_schema"
    needs_key: bool = True
    #: send ``stream_options.include_usage`` so a streamed reply ends with its token usage
    stream_usage: bool = True


PRESETS: dict[str, ProviderPreset] = {
    p.name: p
    for p in (
        ProviderPreset("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ProviderPreset("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
        ProviderPreset("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        ProviderPreset("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        ProviderPreset("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        ProviderPreset("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
        ProviderPreset("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "json_object"),
        # Mistral sends usage in the last chunk by itself and rejects unknown fields
        ProviderPreset("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", stream_usage=False),
        ProviderPreset("hf", "https://router.huggingface.co/v1", "HF_TOKEN"),
        # self-hosted servers: no key by default
        ProviderPreset("vllm", "http://127.0.0.1:8000/v1", "VLLM_API_KEY", "json_schema", needs_key=False),
        ProviderPreset(
            "llamacpp", "http://127.0.0.1:8080/v1", "LLAMACPP_API_KEY", "json_object", needs_key=False
        ),
    )
}


def _response_format(schema: Mapping[str, Any], mode: SchemaMode) -> dict[str, Any] | None:
    if mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": dict(schema), "strict": False},
        }
    if mode == "json_object":
        # llama.cpp's server reads "schema" beside "json_object" and builds a grammar from it
        return {"type": "json_object", "schema": dict(schema)}
    return None


class OpenAICompatibleBackend(BaseBackend):
    """Any server speaking ``POST {base_url}/chat/completions``."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        provider: str = "openai",
        schema_mode: SchemaMode | None = None,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not model:
            raise ConfigurationError(f"{provider}: a model id is required, e.g. '{provider}:<model-id>'")
        preset = PRESETS.get(provider, PRESETS["openai"])
        self.provider = provider
        self.model = model
        self.base_url = (base_url or preset.base_url).rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get(preset.api_key_env)
        if not self.api_key and preset.needs_key and base_url is None:
            raise ConfigurationError(
                f"{provider}: no API key. Set {preset.api_key_env} or pass api_key=... "
                f"(or base_url=... for a self-hosted server)"
            )
        self.schema_mode: SchemaMode = schema_mode or preset.schema_mode
        self.stream_usage = preset.stream_usage
        self.constrained = self.schema_mode != "none"
        self.retry = retry or RetryPolicy()
        self.name = f"{provider}:{model}"
        self._headers = {"Content-Type": "application/json", **(dict(headers) if headers else {})}
        if self.api_key:
            self._headers["Authorization"] = f"Bearer {self.api_key}"
        self._transport = transport
        #: one pooled client per event loop, closed with the backend (``aclose``)
        self._pool = ClientPool(lambda: httpx.AsyncClient(transport=self._transport))

    def _payload(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        temperature: float,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if schema is not None:
            fmt = _response_format(schema, self.schema_mode)
            if fmt is not None:
                payload["response_format"] = fmt
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
            f"{self.base_url}/chat/completions",
            self._payload(messages, schema, max_tokens, temperature),
            self._headers,
            self.retry,
            self.name,
        )
        try:
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(f"{self.name}: unexpected response shape: {str(data)[:300]}") from exc
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        prompt = int(usage.get("prompt_tokens") or 0)
        cached = details.get("cached_tokens")
        return RawCompletion(
            text,
            Usage(prompt, int(usage.get("completion_tokens") or 0), prompt - int(cached) if cached else None),
            choice.get("finish_reason"),
        )

    async def _generate_stream(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str | RawCompletion]:
        """SSE streaming (``"stream": true``), constrained like ``_generate``; the last item is
        the whole reply with the usage the server reports at the end."""
        if type(self)._generate is not OpenAICompatibleBackend._generate:
            # a subclass with its own request path (e.g. a managed server): its _generate, one chunk
            async for item in super()._generate_stream(
                messages, schema, max_tokens=max_tokens, temperature=temperature
            ):
                yield item
            return
        payload = self._payload(messages, schema, max_tokens, temperature)
        payload["stream"] = True
        if self.stream_usage:
            payload["stream_options"] = {"include_usage": True}
        parts: list[str] = []
        finish: str | None = None
        usage: dict[str, Any] | None = None
        lines = stream_lines(
            await self._pool.get(),
            f"{self.base_url}/chat/completions",
            payload,
            self._headers,
            self.retry,
            self.name,
        )
        async with aclosing(lines):  # closing this stream closes the HTTP response
            async for line in lines:
                if not line.startswith("data:"):
                    continue
                body = line[5:].strip()
                if body == "[DONE]":
                    break
                event = loads_or_none(body)
                if not event:
                    continue
                if "error" in event:
                    raise BackendError(
                        f"{self.name}: the server reported an error mid-stream: {str(event)[:300]}"
                    )
                if event.get("usage"):
                    usage = event["usage"]
                for choice in event.get("choices") or ():
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        parts.append(delta)
                        yield delta
                    finish = choice.get("finish_reason") or finish
        if usage is not None:
            details = usage.get("prompt_tokens_details") or {}
            prompt = int(usage.get("prompt_tokens") or 0)
            cached = details.get("cached_tokens")
            counted = Usage(
                prompt, int(usage.get("completion_tokens") or 0), prompt - int(cached) if cached else None
            )
        else:  # a server that reports no usage when streaming: one token per chunk, prompt unknown
            counted = Usage(0, len(parts))
        yield RawCompletion("".join(parts), counted, finish)

    async def aclose(self) -> None:
        await self._pool.aclose()

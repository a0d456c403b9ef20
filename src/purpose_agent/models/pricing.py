"""The USD price of one model call, from the maintained ``genai-prices`` table (extra
``cost``), never from a hand-written dict. Local models (the embedded llama.cpp, a llama.cpp
server, Ollama or vLLM on this machine) cost 0; a model the table does not know gets
``usd=None`` ("price unknown"). The loop prices each call here; ``purpose_agent.runtime.cost``
adds the totals per agent, run and team."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from purpose_agent.models._http import is_loopback_url

#: backends whose calls cost nothing per token (run on hardware the user already has)
LOCAL_PROVIDERS = frozenset({"local", "local-server", "llamacpp"})
#: self-hosted servers: free when on this machine, unknown price elsewhere
SELF_HOSTED = frozenset({"ollama", "vllm"})
#: our provider names -> genai-prices provider ids
PRICE_PROVIDERS = {
    "openai": "openai",
    "openrouter": "openrouter",
    "groq": "groq",
    "together": "together",
    "fireworks": "fireworks",
    "cerebras": "cerebras",
    "deepseek": "deepseek",
    "mistral": "mistral",
}
UNKNOWN = "price unknown"


@dataclass(frozen=True, slots=True)
class Price:
    """The USD price of one call; ``usd`` is None when unknown, with the reason in ``source``."""

    usd: float | None
    source: str


@lru_cache(maxsize=1)
def _genai_prices() -> Any:
    try:
        import genai_prices
    except ImportError:
        return None
    return genai_prices


def price_call(model: str, prompt_tokens: int, completion_tokens: int, *, backend: Any = None) -> Price:
    """The price of a call to ``model`` (a backend name such as ``"openai:gpt-4o"``).

    ``backend`` (optional) lets a self-hosted server on 127.0.0.1 be recognised as local."""
    provider, sep, model_id = model.partition(":")
    if provider in LOCAL_PROVIDERS:
        return Price(0.0, "local")
    if provider in SELF_HOSTED:
        url = getattr(backend, "host", None) or getattr(backend, "base_url", None)
        if isinstance(url, str) and is_loopback_url(url):
            return Price(0.0, "local")
        return Price(None, f"{UNKNOWN}: self-hosted {provider} server, no per-token price")
    if not sep or not model_id:
        return Price(None, f"{UNKNOWN}: {model!r} names no provider")
    provider_id = PRICE_PROVIDERS.get(provider)
    if provider == "hf" and ":" in model_id:  # the HF router: "<model>:<inference provider>"
        model_id, _, hf_provider = model_id.rpartition(":")
        provider_id = f"huggingface_{hf_provider}"
    if provider_id is None:
        return Price(None, f"{UNKNOWN}: no price table for provider {provider!r}")
    prices = _genai_prices()
    if prices is None:
        return Price(None, f"{UNKNOWN}: install purpose-agent[cost] (genai-prices) for USD prices")
    try:
        calc = prices.calc_price(
            prices.Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens),
            model_id,
            provider_id=provider_id,
        )
    except (LookupError, ValueError) as exc:
        return Price(None, f"{UNKNOWN}: {exc}")
    return Price(float(calc.total_price), f"genai-prices {prices.__version__}: {provider_id}/{calc.model.id}")

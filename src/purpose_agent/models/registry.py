"""Model spec strings, parsed once at the boundary: ``resolve_backend``, the backend registry,
and the registry of known small models (``create_slm_backend``)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from purpose_agent.errors import ConfigurationError, UnknownProviderError
from purpose_agent.models import catalog
from purpose_agent.models.base import Backend
from purpose_agent.models.openai_compat import PRESETS


class BackendFactory(Protocol):
    def __call__(self, model_id: str, *, api_key: str | None, base_url: str | None) -> Backend: ...


class BackendRegistry:
    """Provider name -> factory. Built-ins register through the same path as plugins."""

    def __init__(self) -> None:
        self._factories: dict[str, BackendFactory] = {}

    def register(self, name: str, factory: BackendFactory | Callable[..., Backend]) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
            raise ConfigurationError(f"provider names are lowercase words, got {name!r}")
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def create(
        self, name: str, model_id: str, *, api_key: str | None = None, base_url: str | None = None
    ) -> Backend:
        try:
            factory = self._factories[name]
        except KeyError:
            raise _unknown(name, self.names()) from None
        return factory(model_id, api_key=api_key, base_url=base_url)


def _unknown(name: str, valid: list[str]) -> UnknownProviderError:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownProviderError(
        f"unknown model provider {name!r}.{hint} Valid providers: {', '.join(valid)}. "
        "Use 'provider:model-id' (e.g. 'openai:gpt-4o'), 'local' / 'local:<name>', 'local-server:<name>', "
        "or a bare Ollama tag 'name:tag' (e.g. 'qwen3:1.7b')."
    )


backend_registry = BackendRegistry()


def _local(model_id: str, *, api_key: str | None, base_url: str | None) -> Backend:
    from purpose_agent.models.local import LocalBackend

    return LocalBackend(model_id or catalog.DEFAULT_LOCAL_MODEL)


def _local_server(model_id: str, *, api_key: str | None, base_url: str | None) -> Backend:
    from purpose_agent.models.llama_server import LlamaServerBackend

    return LlamaServerBackend(model_id or catalog.DEFAULT_LOCAL_MODEL)


def _ollama(model_id: str, *, api_key: str | None, base_url: str | None) -> Backend:
    from purpose_agent.models.ollama import OllamaBackend

    return OllamaBackend(model_id, host=base_url)


def _openai_like(provider: str) -> BackendFactory:
    def factory(model_id: str, *, api_key: str | None, base_url: str | None) -> Backend:
        from purpose_agent.models.openai_compat import OpenAICompatibleBackend

        return OpenAICompatibleBackend(model_id, base_url, api_key, provider=provider)

    return factory


backend_registry.register("local", _local)
backend_registry.register("local-server", _local_server)  # the same models through llama-server
backend_registry.register("ollama", _ollama)
for _name in PRESETS:
    backend_registry.register(_name, _openai_like(_name))

# a bare Ollama tag: family[:tag], e.g. "qwen3:1.7b", "llama3.2:1b", "phi4-mini:latest"
_OLLAMA_TAG = re.compile(r"[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*", re.I)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec string into (provider, model id). Raises a clear error for a bad spec."""
    spec = spec.strip()
    if not spec:
        raise ConfigurationError("empty model spec; use 'local' for the embedded model")
    if spec in ("local", "local-server"):
        return spec, catalog.DEFAULT_LOCAL_MODEL
    if ":" not in spec:
        if spec in backend_registry:
            raise ConfigurationError(f"model spec {spec!r} needs a model id: '{spec}:<model-id>'")
        raise _unknown(spec, backend_registry.names())
    provider, model_id = spec.split(":", 1)
    if provider in backend_registry:
        if not model_id:
            raise ConfigurationError(f"model spec {spec!r} needs a model id after the colon")
        return provider, model_id
    if _OLLAMA_TAG.fullmatch(spec) and not difflib.get_close_matches(
        provider, backend_registry.names(), n=1, cutoff=0.75
    ):
        return "ollama", spec
    raise _unknown(provider, backend_registry.names())


def resolve_backend(
    spec: str | Backend | None = None, api_key: str | None = None, base_url: str | None = None
) -> Backend:
    """A backend from a spec string (``"local"``, ``"openai:gpt-4o"``, ``"qwen3:1.7b"``, ...).

    A Backend instance is returned as is; ``None`` means the embedded default model.
    """
    if spec is None:
        spec = "local"
    if not isinstance(spec, str):
        if isinstance(spec, Backend):
            return spec
        raise ConfigurationError(f"model must be a spec string or a Backend, got {type(spec).__name__}")
    provider, model_id = parse_spec(spec)
    return backend_registry.create(provider, model_id, api_key=api_key, base_url=base_url)


# ------------------------------------------------------------------------- known small models
@dataclass(frozen=True, slots=True)
class SLMInfo:
    name: str
    spec: str
    params_b: float
    note: str = ""


SMALL_MODELS: dict[str, SLMInfo] = {
    s.name: s
    for s in (
        SLMInfo("qwen2.5-coder-1.5b", "local:qwen2.5-coder-1.5b", 1.5, "embedded default"),
        SLMInfo("qwen2.5-coder-0.5b", "local:qwen2.5-coder-0.5b", 0.5, "embedded, fast tier"),
        SLMInfo("smollm2-135m", "local:smollm2-135m", 0.135, "embedded, plumbing only"),
        SLMInfo("phi-4-mini", "ollama:phi4-mini", 3.8, "via Ollama"),
        SLMInfo("qwen3-1.7b", "ollama:qwen3:1.7b", 1.7, "via Ollama"),
        SLMInfo("qwen3-0.6b", "ollama:qwen3:0.6b", 0.6, "via Ollama"),
        SLMInfo("llama-3.2-1b", "ollama:llama3.2:1b", 1.0, "via Ollama"),
        SLMInfo("smollm2-1.7b", "ollama:smollm2:1.7b", 1.7, "via Ollama"),
    )
}


def create_slm_backend(name: str, **kwargs: Any) -> Backend:
    """A backend for a known small model by its short name (see ``SMALL_MODELS``)."""
    info = SMALL_MODELS.get(name)
    if info is None:
        close = difflib.get_close_matches(name, list(SMALL_MODELS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(f"unknown small model {name!r}.{hint} Known: {', '.join(SMALL_MODELS)}")
    return resolve_backend(info.spec, **kwargs)

"""The local backend's compiled grammars live in a bounded LRU cache. No model is loaded:
llama.cpp compiles a grammar from a JSON schema without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from purpose_agent.errors import ConfigurationError

llama_cpp = pytest.importorskip("llama_cpp")
local = pytest.importorskip("purpose_agent.models.local")


def _schema(n: int) -> dict[str, Any]:
    return {"type": "object", "properties": {f"field{n}": {"type": "string"}}, "required": [f"field{n}"]}


def _compile(schema: str) -> Any:
    return llama_cpp.LlamaGrammar.from_json_schema(schema, verbose=False)


def test_the_cache_keeps_at_most_maxsize_grammars_least_recently_used_out() -> None:
    cache = local._GrammarCache(maxsize=2)
    g0 = cache.get(_schema(0), _compile)
    cache.get(_schema(1), _compile)
    assert cache.get(_schema(0), _compile) is g0  # a hit, and now the most recent
    cache.get(_schema(2), _compile)  # evicts schema 1
    assert len(cache) == 2
    assert _schema(0) in cache and _schema(2) in cache and _schema(1) not in cache
    assert isinstance(g0, llama_cpp.LlamaGrammar)


def test_the_key_ignores_the_order_of_keys_and_compiles_once() -> None:
    compiled: list[str] = []

    def counting(schema: str) -> Any:
        compiled.append(schema)
        return _compile(schema)

    cache = local._GrammarCache(maxsize=4)
    a = {"type": "object", "properties": {"x": {"type": "integer"}}}
    b = {"properties": {"x": {"type": "integer"}}, "type": "object"}
    assert cache.get(a, counting) is cache.get(b, counting)
    assert len(compiled) == 1


def test_a_non_positive_size_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="maxsize"):
        local._GrammarCache(maxsize=0)


def test_the_backend_uses_a_bounded_cache_without_loading_a_model(tmp_path: Path) -> None:
    fake = tmp_path / "never-loaded.gguf"
    fake.write_bytes(b"")  # the constructor only checks that the file exists
    backend = local.LocalBackend(model_path=fake)
    for n in range(local.GRAMMAR_CACHE_SIZE + 5):
        assert isinstance(backend._grammar(_schema(n)), llama_cpp.LlamaGrammar)
    assert len(backend._grammars) == local.GRAMMAR_CACHE_SIZE
    assert not backend._slots  # no llama.cpp context was created

"""Spec resolution for every provider, and the request shape each backend sends, checked
against a real HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from purpose_agent.errors import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    ModelNotFoundError,
    NetworkBlockedError,
    UnknownProviderError,
)
from purpose_agent.models._http import RetryPolicy
from purpose_agent.models.base import Message
from purpose_agent.models.ollama import OllamaBackend
from purpose_agent.models.openai_compat import PRESETS, OpenAICompatibleBackend
from purpose_agent.models.registry import backend_registry, create_slm_backend, parse_spec, resolve_backend

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
MSGS = [Message("system", "be brief"), Message("user", "capital of France?")]

Reply = tuple[int, dict[str, str], bytes]


class FakeServer:
    """Records every request; answers from a queue of (status, headers, body) or a default."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.queue: list[Reply] = []
        self.default: Callable[[dict[str, Any]], Reply] = lambda req: (200, {}, b"{}")
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = {"path": self.path, "headers": dict(self.headers), "json": json.loads(body or b"{}")}
                owner.requests.append(req)
                status, headers, payload = owner.queue.pop(0) if owner.queue else owner.default(req)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def openai_reply(content: str, prompt: int = 11, completion: int = 3) -> Reply:
    body = {
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    s.default = lambda req: openai_reply('{"answer": "Paris"}')
    yield s
    s.httpd.shutdown()


NO_WAIT = RetryPolicy(attempts=3, base_delay=0.01, sleep=lambda d: _noop())


async def _noop() -> None:
    return None


CLOUD = ["openai", "openrouter", "groq", "together", "fireworks", "cerebras", "deepseek", "mistral", "hf"]


@pytest.mark.parametrize("provider", CLOUD)
def test_every_provider_resolves_with_its_key_env_and_sends_the_openai_shape(
    provider: str, server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    preset = PRESETS[provider]
    monkeypatch.setenv(preset.api_key_env, f"key-{provider}")
    # without base_url the preset's own endpoint is used
    default = resolve_backend(f"{provider}:some/model-1")
    assert isinstance(default, OpenAICompatibleBackend)
    assert default.base_url == preset.base_url and default.model == "some/model-1"
    # the request shape, against the local server
    b = resolve_backend(f"{provider}:some/model-1", base_url=server.url + "/v1")
    c = b.complete(MSGS, SCHEMA, max_tokens=17, temperature=0.2)
    assert c.data == {"answer": "Paris"} and c.usage.prompt_tokens == 11 and c.usage.completion_tokens == 3
    req = server.requests[-1]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == f"Bearer key-{provider}"
    body = req["json"]
    assert body["model"] == "some/model-1" and body["max_tokens"] == 17 and body["temperature"] == 0.2
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "capital of France?"},
    ]
    fmt = body["response_format"]
    if preset.schema_mode == "json_schema":
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"]["required"] == ["answer"]
    else:
        assert fmt == {"type": "json_object", "schema": SCHEMA}


def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="GROQ_API_KEY"):
        resolve_backend("groq:llama-3.1-8b")


def test_explicit_api_key_wins(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    resolve_backend("openai:gpt-4o", api_key="explicit", base_url=server.url).complete(MSGS)
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer explicit"


def test_ollama_native_shape(server: FakeServer) -> None:
    server.default = lambda req: (
        200,
        {},
        json.dumps(
            {
                "message": {"role": "assistant", "content": '{"answer": "Paris"}'},
                "prompt_eval_count": 20,
                "eval_count": 5,
                "done": True,
                "done_reason": "stop",
            }
        ).encode(),
    )
    for spec in ("ollama:qwen3:1.7b", "qwen3:1.7b"):
        b = resolve_backend(spec, base_url=server.url)
        assert isinstance(b, OllamaBackend) and b.model == "qwen3:1.7b"
        c = b.complete(MSGS, SCHEMA, max_tokens=9)
        assert c.data == {"answer": "Paris"} and c.usage.prompt_tokens == 20
        body = server.requests[-1]["json"]
        assert server.requests[-1]["path"] == "/api/chat"
        assert body["format"] == SCHEMA and body["stream"] is False
        assert body["options"] == {"temperature": 0.0, "num_predict": 9}


def test_ollama_host_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9999")
    assert OllamaBackend("llama3.2:1b").host == "http://127.0.0.1:9999"


@pytest.mark.parametrize("spec", ["opneai:gpt-4o", "gpt-4o", "foo/bar", "olama:qwen3:1.7b"])
def test_bad_spec_names_the_valid_providers(spec: str) -> None:
    with pytest.raises(UnknownProviderError) as info:
        resolve_backend(spec)
    msg = str(info.value)
    for provider in ("openai", "ollama", "local", "groq", "hf"):
        assert provider in msg


def test_typo_gets_a_suggestion() -> None:
    with pytest.raises(UnknownProviderError, match=r"Did you mean 'openai'"):
        parse_spec("opneai:gpt-4o")


def test_empty_and_idless_specs() -> None:
    with pytest.raises(ConfigurationError):
        resolve_backend("")
    with pytest.raises(ConfigurationError, match="needs a model id"):
        resolve_backend("openai:")
    with pytest.raises(ConfigurationError, match="needs a model id"):
        resolve_backend("groq")


def test_spec_parsing_table() -> None:
    assert parse_spec("local") == ("local", "qwen2.5-coder-1.5b")
    assert parse_spec("local:qwen2.5-coder-0.5b") == ("local", "qwen2.5-coder-0.5b")
    assert parse_spec("ollama:qwen3:1.7b") == ("ollama", "qwen3:1.7b")
    assert parse_spec("llama3.2:1b") == ("ollama", "llama3.2:1b")
    assert parse_spec("openrouter:meta-llama/llama-3.1-8b-instruct:free") == (
        "openrouter",
        "meta-llama/llama-3.1-8b-instruct:free",
    )


def test_registry_accepts_plugins(server: FakeServer) -> None:
    backend_registry.register(
        "myco",
        lambda model_id, *, api_key, base_url: OpenAICompatibleBackend(
            model_id, server.url, "k", provider="myco"
        ),
    )
    try:
        b = resolve_backend("myco:m1")
        assert b.complete(MSGS).text == '{"answer": "Paris"}'
    finally:
        backend_registry.unregister("myco")


def test_create_slm_backend_known_and_unknown() -> None:
    b = create_slm_backend("qwen3-1.7b")
    assert isinstance(b, OllamaBackend) and b.model == "qwen3:1.7b"
    with pytest.raises(ConfigurationError, match="Known:"):
        create_slm_backend("qwen9-1b")


def test_retries_transient_errors_with_backoff(server: FakeServer) -> None:
    delays: list[float] = []

    async def record(d: float) -> None:
        delays.append(d)

    server.queue = [(503, {}, b"busy"), (429, {"Retry-After": "0.25"}, b"slow down")]
    b = OpenAICompatibleBackend(
        "m", server.url, "k", retry=RetryPolicy(attempts=3, base_delay=0.1, sleep=record)
    )
    assert b.complete(MSGS).text == '{"answer": "Paris"}'
    assert len(server.requests) == 3
    assert len(delays) == 2 and 0.05 <= delays[0] <= 0.1 and delays[1] == 0.25


def test_gives_up_after_attempts(server: FakeServer) -> None:
    server.default = lambda req: (500, {}, b"boom")
    b = OpenAICompatibleBackend("m", server.url, "k", retry=NO_WAIT)
    with pytest.raises(BackendError, match="after 3 attempts"):
        b.complete(MSGS)
    assert len(server.requests) == 3


def test_bad_key_and_unknown_model_are_clear_and_not_retried(server: FakeServer) -> None:
    b = OpenAICompatibleBackend("m", server.url, "wrong", retry=NO_WAIT)
    server.default = lambda req: (401, {}, b'{"error": "invalid api key"}')
    with pytest.raises(AuthenticationError, match="API key was rejected"):
        b.complete(MSGS)
    server.default = lambda req: (404, {}, b'{"error": "model not found"}')
    with pytest.raises(ModelNotFoundError, match="check the model id"):
        b.complete(MSGS)
    assert len(server.requests) == 2


def test_timeout_is_retried_then_reported() -> None:
    import socket

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{lsock.getsockname()[1]}"
        b = OpenAICompatibleBackend(
            "m", url, "k", retry=RetryPolicy(attempts=2, timeout=0.2, sleep=lambda d: _noop())
        )
        with pytest.raises(BackendError, match="after 2 attempts"):
            b.complete(MSGS)
    finally:
        lsock.close()


def test_malformed_response_shape(server: FakeServer) -> None:
    server.default = lambda req: (200, {}, b'{"unexpected": true}')
    with pytest.raises(BackendError, match="unexpected response shape"):
        OpenAICompatibleBackend("m", server.url, "k").complete(MSGS)


def test_sse_streaming(server: FakeServer) -> None:
    chunks = [{"choices": [{"delta": {"content": t}}]} for t in ("Pa", "ri", "s")]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    server.default = lambda req: (200, {"Content-Type": "text/event-stream"}, body.encode())
    b = OpenAICompatibleBackend("m", server.url, "k")
    assert list(b.stream(MSGS)) == ["Pa", "ri", "s"]
    assert server.requests[-1]["json"]["stream"] is True


def test_ollama_ndjson_streaming(server: FakeServer) -> None:
    lines = [{"message": {"content": "Pa"}}, {"message": {"content": "ris"}}, {"done": True}]
    server.default = lambda req: (200, {}, "\n".join(json.dumps(x) for x in lines).encode())
    assert list(OllamaBackend("m", server.url).stream(MSGS)) == ["Pa", "ris"]


def test_network_model_call_fails_under_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """An accidental call to a network model fails (PURPOSE_AGENT_OFFLINE=1 is set by conftest)."""
    b = resolve_backend("openai:gpt-4o", api_key="sk-test")
    with pytest.raises(NetworkBlockedError, match=r"api\.openai\.com"):
        b.complete(MSGS)


def test_socket_guard_blocks_non_loopback_even_without_the_library_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    s = socket.socket()
    try:
        with pytest.raises(RuntimeError, match="blocked under test"):
            s.connect(("203.0.113.7", 443))  # TEST-NET-3: never routed
    finally:
        s.close()

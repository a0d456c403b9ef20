"""OpenAICompatibleBackend against a real llama.cpp server (python -m llama_cpp.server) on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from purpose_agent.models import catalog
from purpose_agent.models.base import Message
from purpose_agent.models.openai_compat import OpenAICompatibleBackend
from purpose_agent.models.registry import resolve_backend

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = catalog.ensure_model_file("qwen2.5-coder-0.5b")
    port = _free_port()
    log = (tmp_path_factory.mktemp("server") / "server.log").open("w+")  # a file, not a pipe that could fill
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "2",
            "--n_ctx",
            "2048",
            "--model_alias",
            "qwen-0.5b",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"llama_cpp.server exited: {log.read()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)  # polling a starting server (fixture, not a test assertion)
        else:
            raise RuntimeError("llama_cpp.server did not start within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "country": {"type": "string", "enum": ["France", "Spain", "Italy"]},
    },
    "required": ["city", "country"],
}


def test_schema_output_through_the_server(server_url: str) -> None:
    b = resolve_backend("llamacpp:qwen-0.5b", base_url=server_url)
    assert isinstance(b, OpenAICompatibleBackend) and b.schema_mode == "json_object"
    c = b.complete(
        [Message("user", "Which country is Paris in? Answer as JSON with city and country.")],
        SCHEMA,
        max_tokens=40,
    )
    assert c.ok, (c.text, c.parse_error)
    assert c.data == {"city": "Paris", "country": "France"}
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0


def test_sse_streaming_through_the_server(server_url: str) -> None:
    b = OpenAICompatibleBackend("qwen-0.5b", server_url, provider="llamacpp")
    chunks = list(b.stream([Message("user", "List the numbers 1 to 5 separated by commas.")], max_tokens=24))
    assert len(chunks) >= 3
    assert "3" in "".join(chunks)

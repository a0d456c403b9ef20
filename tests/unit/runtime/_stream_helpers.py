"""A fake OpenAI-compatible / Ollama server on 127.0.0.1 that streams for real (chunked SSE and
NDJSON), can drop the connection mid-stream or hold it open, and keeps connections alive."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import purpose_agent as pa
from purpose_agent.models.base import Message

ReplyFn = Callable[[dict[str, Any]], str]


def split(text: str, size: int = 4) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


class StreamServer:
    """``reply(request_json) -> str``; streamed replies are cut into 4-character chunks.

    ``drop_after``: close the socket after that many chunks (an incomplete chunked body).
    ``hold_after``: after that many chunks wait for ``release`` (or the client to hang up).
    ``fail_first``: answer that many requests with HTTP 503 first."""

    def __init__(self, reply: ReplyFn) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.ports: list[int] = []  # client port of each request (the same port: a pooled connection)
        self.drop_after: int | None = None
        self.hold_after: int | None = None
        self.fail_first = 0
        self.release = threading.Event()
        self.held = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                owner.requests.append({"path": self.path, "json": body})
                owner.ports.append(self.client_address[1])
                if owner.fail_first > 0:
                    owner.fail_first -= 1
                    self._send(503, b"busy")
                    return
                text = owner.reply(body)
                ollama = self.path.startswith("/api/")
                if not body.get("stream"):
                    self._send(200, json.dumps(_whole(text, ollama)).encode())
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson" if ollama else "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i, piece in enumerate(split(text)):
                    if owner.drop_after is not None and i >= owner.drop_after:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)  # mid-body: no terminating chunk
                        return
                    if owner.hold_after is not None and i >= owner.hold_after:
                        owner.held.set()
                        owner.release.wait(10)
                    self._chunk(_piece(piece, ollama))
                self._chunk(_end(text, ollama))
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _send(self, status: int, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _whole(text: str, ollama: bool) -> dict[str, Any]:
    if ollama:
        return {
            "message": {"role": "assistant", "content": text},
            "prompt_eval_count": 30,
            "eval_count": len(split(text)),
            "done": True,
            "done_reason": "stop",
        }
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": len(split(text))},
    }


def _piece(piece: str, ollama: bool) -> bytes:
    if ollama:
        return (
            json.dumps({"message": {"role": "assistant", "content": piece}, "done": False}) + "\n"
        ).encode()
    return f"data: {json.dumps({'choices': [{'delta': {'content': piece}, 'finish_reason': None}]})}\n\n".encode()


def _end(text: str, ollama: bool) -> bytes:
    n = len(split(text))
    if ollama:
        return (
            json.dumps(
                {
                    "message": {"content": ""},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": 30,
                    "eval_count": n,
                }
            )
            + "\n"
        ).encode()
    last = {"choices": [{"delta": {}, "finish_reason": "stop"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": n}}
    return f"data: {json.dumps(last)}\n\ndata: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode()


# ----------------------------------------------------------------------------- a tiny task
DONE_REPLY = json.dumps({"thought": "the sum of 2 and 3 is 5", "action": "DONE", "params": {"answer": "5"}})


def done_reply(_req: dict[str, Any]) -> str:
    return DONE_REPLY


def critic() -> pa.FunctionModel:
    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        done = "answer" in messages[-1].content and "5" in messages[-1].content.split("STATE TO SCORE:")[-1]
        score = 10 if done else 0
        return {"evidence": "the answer", "reason": "checked", "score": score, "confidence": "high"}

    return pa.FunctionModel(fn, name="critic")


def env() -> pa.SimpleEnvironment:
    return pa.SimpleEnvironment(initial_state=pa.State({"question": "2 + 3"}, "What is 2 + 3?"))


def kinds(events: Sequence[Any]) -> list[str]:
    return [e.kind for e in events]


def tokens(events: Sequence[Any], role: str = "actor", step: int = 1) -> list[str]:
    return [e.text for e in events if e.kind == "token" and e.role == role and e.step == step]


def iter_lines(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)

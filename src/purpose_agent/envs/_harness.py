"""The two sandboxed processes that check a candidate solution (stdlib only: this file is copied
into each sandbox and run as a script, never imported there).

``serve`` (the candidate's process, untrusted): loads ``solution.py``, then answers calls, one
JSON line each, with the *value* the function returned, encoded as plain data.

``judge`` (the tests' process): evaluates each test expression with every name the solution
defines replaced by a proxy that calls into the candidate's process. Only plain data (None,
bools, numbers, strings, lists, tuples, dicts, sets, bytes) crosses back, through a strict
decoder, so no object, ``__eq__`` or patched builtin of the candidate reaches the comparison.
The judge never runs candidate code; it prints one JSON verdict line per test on its own stdout,
which the candidate's process (another sandbox: its own filesystem, PID and network namespaces)
cannot reach.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import operator
import os
import sys
from collections.abc import Callable
from typing import Any, BinaryIO

MAX_MESSAGE = 4 * 1024 * 1024
MAX_DEPTH = 60
MAX_NAMES = 200
_TAGS = ("tuple", "set", "frozenset", "dict", "bytes", "complex")


class NotPlainData(TypeError):
    pass


# --------------------------------------------------------------------------- plain-data codec
def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready plain data (tagged for the types JSON lacks)."""
    if depth > MAX_DEPTH:
        raise NotPlainData("the value is nested too deeply")
    if value is None or isinstance(value, bool):
        return None if value is None else bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        tag = "frozenset" if isinstance(value, frozenset) else "set"
        return {tag: [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, complex):
        return {"complex": [value.real, value.imag]}
    raise NotPlainData(f"a value of type {type(value).__name__} is not plain data")


def decode(data: Any, depth: int = 0) -> Any:
    """The inverse of ``encode``; anything else is rejected (never evaluated)."""
    if depth > MAX_DEPTH:
        raise ValueError("the value is nested too deeply")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(v, depth + 1) for v in data]
    if type(data) is not dict or len(data) != 1:
        raise ValueError("malformed value")
    ((tag, body),) = data.items()
    if tag == "bytes" and type(body) is str:
        return bytes.fromhex(body)
    if type(body) is not list or tag not in _TAGS:
        raise ValueError("malformed value")
    if tag == "complex":
        if len(body) != 2 or not all(type(x) in (int, float) for x in body):
            raise ValueError("malformed complex")
        return complex(body[0], body[1])
    if tag == "dict":
        if not all(type(p) is list and len(p) == 2 for p in body):
            raise ValueError("malformed dict")
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in body}
    items = [decode(v, depth + 1) for v in body]
    return {"tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)


def _send(out: BinaryIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, separators=(",", ":")).encode("utf-8") + b"\n")
    out.flush()


def _receive(inp: BinaryIO) -> dict[str, Any]:
    line = inp.readline(MAX_MESSAGE + 1)
    if not line:
        raise EOFError("the solution's process exited")
    if len(line) > MAX_MESSAGE:
        raise ValueError("the solution's reply is too large")
    message = json.loads(line)
    if type(message) is not dict:
        raise ValueError("malformed reply")
    return message


def _describe(exc: BaseException, cap: int = 300) -> str:
    return f"{type(exc).__name__}: {exc}"[:cap]


# --------------------------------------------------------------------------- candidate side
def serve() -> None:
    """Load the solution, report the names it defines, then answer calls until EOF."""
    inp = os.fdopen(os.dup(0), "rb")
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # the solution's prints go to stderr, never into the protocol
    ns: dict[str, Any] = {"__name__": "solution"}
    try:
        with open("solution.py", encoding="utf-8") as fh:
            source = fh.read()
        exec(compile(source, "solution.py", "exec"), ns)
    except BaseException as exc:
        _send(out, {"load_error": _describe(exc, 500)})
        return
    names = [k for k, v in ns.items() if isinstance(k, str) and callable(v)][:MAX_NAMES]
    _send(out, {"ready": names})
    while True:
        try:
            request = _receive(inp)
        except EOFError:
            return
        reply: dict[str, Any] = {"id": request.get("id")}
        try:
            result = ns[request["call"]](*decode(request["args"]), **decode(request["kwargs"]))
        except BaseException as exc:
            reply.update({"raise": type(exc).__name__, "message": str(exc)[:300]})
        else:
            try:
                reply["value"] = encode(result)
                if len(json.dumps(reply)) > MAX_MESSAGE:
                    raise NotPlainData("the value is too large")
            except Exception as exc:
                reply = {"id": request.get("id"), "unplain": str(exc)[:200]}
        _send(out, reply)


# --------------------------------------------------------------------------- judge side
_RERAISE = {
    name: cls
    for name, cls in vars(builtins).items()
    if isinstance(cls, type)
    and issubclass(cls, Exception)
    and name not in ("StopIteration", "StopAsyncIteration")
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class CandidateGone(RuntimeError):
    pass


class Candidate:
    """The link to the candidate's process; a proxy per name the solution defines."""

    def __init__(self, inp: BinaryIO, out: BinaryIO) -> None:
        self.inp, self.out = inp, out
        self.broken: str | None = None
        self.calls = 0

    def hello(self) -> tuple[list[str], str | None]:
        try:
            message = _receive(self.inp)
        except EOFError:
            self.broken = "the solution's process ended while loading (an exit, a kill or a crash)"
            return [], self.broken
        except Exception as exc:
            self.broken = f"the solution's first reply could not be read ({_describe(exc, 200)})"
            return [], self.broken
        if "load_error" in message:
            self.broken = "the solution did not load"
            return [], str(message["load_error"])[:500]
        raw = message.get("ready")
        names = raw if type(raw) is list else []
        ok = [
            n
            for n in names[:MAX_NAMES]
            if type(n) is str
            and n.isidentifier()
            and not keyword.iskeyword(n)
            and not n.startswith("__")
            and not hasattr(builtins, n)
        ]
        return ok, None

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.broken:
            raise CandidateGone(self.broken)
        self.calls += 1
        request = {"id": self.calls, "call": name, "args": encode(list(args)), "kwargs": encode(kwargs)}
        try:
            _send(self.out, request)
            reply = _receive(self.inp)
            if reply.get("id") != self.calls:
                raise ValueError("the solution's reply is out of order")
        except EOFError:
            self.broken = "the solution's process ended during a call (an exit, a kill or a crash)"
            raise CandidateGone(self.broken) from None
        except Exception as exc:
            self.broken = f"the solution's reply could not be read ({_describe(exc, 200)})"
            raise CandidateGone(self.broken) from None
        if "value" in reply:
            try:
                return decode(reply["value"])
            except Exception as exc:
                raise TypeError(f"{name}() returned a value the tests cannot read ({exc})") from None
        if "unplain" in reply:
            raise TypeError(
                f"{name}() returned something that is not plain data ({str(reply['unplain'])[:200]}); "
                "return None, bools, numbers, strings, lists, tuples, dicts, sets or bytes"
            )
        kind, text = str(reply.get("raise", "Exception"))[:80], str(reply.get("message", ""))[:300]
        error: Exception | None = None
        if kind in _RERAISE:
            try:
                error = _RERAISE[kind](text)
            except Exception:
                error = None
        if error is None:
            error = type(kind if kind.isidentifier() else "CandidateError", (Exception,), {})(text)
        raise error

    def proxy(self, name: str) -> Callable[..., Any]:
        def remote(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, args, kwargs)

        remote.__name__ = remote.__qualname__ = name
        return remote


def _short(value: Any, cap: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= cap else text[: cap - 3] + "..."


def check(expr: str, env: dict[str, Any]) -> tuple[bool, str | None]:
    """Evaluate one test expression here, in the judge; say what the left side gave on failure."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        return False, _describe(exc)
    try:
        body = tree.body
        if isinstance(body, ast.Compare) and len(body.ops) == 1 and type(body.ops[0]) in _COMPARE:
            left = eval(compile(ast.Expression(body.left), "<test>", "eval"), env)
            right = eval(compile(ast.Expression(body.comparators[0]), "<test>", "eval"), env)
            if bool(_COMPARE[type(body.ops[0])](left, right)):
                return True, None
            return False, f"assertion false: got {_short(left)}"
        if bool(eval(compile(tree, "<test>", "eval"), env)):
            return True, None
        return False, "assertion false"
    except CandidateGone as exc:
        return False, str(exc)[:300]
    except BaseException as exc:
        return False, _describe(exc)


def judge(from_candidate: int, to_candidate: int) -> None:
    """Print {"loaded"} or {"load_error"}, then {"i", "ok", "error"} per test, then {"done"}."""
    out = sys.stdout.buffer
    with open("tests.json", encoding="utf-8") as fh:
        tests = json.load(fh)
    link = Candidate(os.fdopen(from_candidate, "rb"), os.fdopen(to_candidate, "wb"))
    names, load_error = link.hello()
    if load_error is not None:
        _send(out, {"load_error": load_error})
        return
    _send(out, {"loaded": True})
    base: dict[str, Any] = {"__builtins__": builtins, **{n: link.proxy(n) for n in names}}
    for i, expr in enumerate(tests):
        ok, error = check(str(expr), dict(base))
        _send(out, {"i": i, "ok": ok, "error": error})
    _send(out, {"done": True})


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["judge"] and len(sys.argv) == 4:
        judge(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: harness.py serve | judge FROM_FD TO_FD")

"""Robust parsing of model text into structured data. Never raises on model text.

Order of attempts: TOML -> JSON (lenient) -> repaired truncated JSON -> field extraction -> regex.
Results are coerced toward the schema (``"7"`` -> ``7`` for integers, enum snapping) and
validated; a result that still misses required fields is reported as a failure with the
reason, so the caller can repair-and-retry once.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import ValidationError

from purpose_agent.models._jsonschema import MODEL_REPLY, errors

Method = Literal["toml", "json", "repair", "fields", "regex", "none"]
Schema = Mapping[str, Any]

_THINK_RE = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)
_FENCE_RE = re.compile(r"```[a-zA-Z0-9_+-]*\s*\n?(.*?)(?:```|\Z)", re.S)
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What the parser made of a model reply."""

    data: dict[str, Any] | None
    method: Method
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.data is not None and self.error is None


def strip_think(text: str) -> str:
    """Remove ``<think>...</think>`` blocks (an unclosed one runs to the end of the text)."""
    return _THINK_RE.sub("", text or "").strip()


def _unfence(text: str) -> str:
    m = _FENCE_RE.search(text)
    return m.group(1).strip() if m else text


# --------------------------------------------------------------------------- JSON helpers
def _balanced_objects(text: str) -> list[str]:
    """Every top-level balanced ``{...}`` span, string-aware."""
    spans: list[str] = []
    depth = 0
    start = -1
    in_str = False
    esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _loads_lenient(s: str) -> Any:
    try:
        return json.loads(s, strict=False)
    except (ValueError, RecursionError):
        pass
    fixed = _TRAILING_COMMA_RE.sub(r"\1", s)
    fixed = re.sub(r"\bTrue\b", "true", fixed)
    fixed = re.sub(r"\bFalse\b", "false", fixed)
    fixed = re.sub(r"\bNone\b", "null", fixed)
    try:
        return json.loads(fixed, strict=False)
    except (ValueError, RecursionError):
        pass
    if "'" in fixed and '"' not in fixed:
        try:
            return json.loads(fixed.replace("'", '"'), strict=False)
        except (ValueError, RecursionError):
            pass
    return None


def repair_truncated_json(text: str) -> str | None:
    """Close what a reply cut off by ``max_tokens`` left open. Returns None when there is no object."""
    start = text.find("{")
    if start < 0:
        return None
    s = text[start:]
    stack: list[str] = []
    in_str = False
    esc = False
    for ch in s:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = s
    if esc:
        out = out[:-1]
    if in_str:
        out += '"'
    # drop a dangling key, colon or comma at the end
    out = re.sub(r',\s*"[^"]*"\s*:?\s*$', "", out)
    out = re.sub(r"[,:]\s*$", "", out)
    out = re.sub(r'\{\s*"[^"]*"\s*$', "{", out)
    return out + "".join(reversed(stack))


# --------------------------------------------------------------------------- schema helpers
def _props(schema: Schema | None) -> dict[str, Any]:
    if not schema:
        return {}
    props = schema.get("properties")
    return dict(props) if isinstance(props, Mapping) else {}


def _branch_for(data: Mapping[str, Any], schema: Schema) -> Schema:
    """For a ``oneOf``/``anyOf`` schema, the branch whose ``const`` fields match the data."""
    branches = schema.get("oneOf") or schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    best: Schema = branches[0] if branches else schema
    best_score = -1
    for br in branches:
        if not isinstance(br, Mapping):
            continue
        score = 0
        for key, sub in _props(br).items():
            if isinstance(sub, Mapping) and "const" in sub:
                if data.get(key) == sub["const"]:
                    score += 10
                elif key in data:
                    score -= 10
            elif key in data:
                score += 1
        if score > best_score:
            best, best_score = br, score
    return best


def _coerce_value(value: Any, sub: Mapping[str, Any]) -> Any:
    typ = sub.get("type")
    enum = sub.get("enum")
    if enum is not None and value not in enum:
        if all(isinstance(e, int) for e in enum):
            num = _to_number(value)
            if num is not None:
                return min(enum, key=lambda e: abs(e - num))
        if isinstance(value, str):
            low = value.strip().lower()
            for e in enum:
                if isinstance(e, str) and e.lower() == low:
                    return e
        return value
    if typ == "integer":
        num = _to_number(value)
        return round(num) if num is not None else value
    if typ == "number":
        num = _to_number(value)
        return num if num is not None else value
    if typ == "string" and not isinstance(value, str):
        if value is None:
            return value
        return (
            value
            if isinstance(value, bool)
            else json.dumps(value)
            if isinstance(value, dict | list)
            else str(value)
        )
    if typ == "boolean" and isinstance(value, str):
        if value.strip().lower() in ("true", "yes", "1"):
            return True
        if value.strip().lower() in ("false", "no", "0"):
            return False
    if typ == "object" and isinstance(value, Mapping):
        return coerce(dict(value), sub)
    if typ == "object" and isinstance(value, str):
        parsed = _loads_lenient(value)
        if isinstance(parsed, dict):
            return coerce(parsed, sub)
    if typ == "array" and isinstance(value, str):
        parsed = _loads_lenient(value)
        if isinstance(parsed, list):
            return parsed
    return value


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.search(r"-?\d+(?:\.\d+)?", value)
        if m:
            return float(m.group(0))
    return None


def coerce(data: dict[str, Any], schema: Schema | None) -> dict[str, Any]:
    """Nudge parsed data toward the schema's types; never raises."""
    if not schema:
        return data
    target = _branch_for(data, schema)
    for key, sub in _props(target).items():
        if key in data and isinstance(sub, Mapping):
            data[key] = _coerce_value(data[key], sub)
        elif key not in data and isinstance(sub, Mapping) and "const" in sub:
            # a oneOf branch chosen by its other fields: fill the discriminator
            pass
    return data


def _problem(e: ValidationError, base: str) -> str:
    path = base + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
    kw, want, data = e.validator, e.validator_value, e.instance
    if kw == "anyOf":
        by_branch: dict[Any, list[ValidationError]] = {}
        for c in e.context:
            by_branch.setdefault(c.relative_schema_path[0], []).append(c)
        fewest = min(by_branch.values(), key=len)[0] if by_branch else None
        first = f" ({_problem(fewest, base)})" if fewest is not None else ""
        return f"{path}: matches none of the {len(by_branch)} allowed shapes{first}"
    say = _SAY.get(str(kw))
    return say(path, data, want) if say is not None else f"{path}: {e.message}"


#: keyword -> (path, value, what the schema wants) -> the problem, as a parse error says it
_SAY: dict[str, Callable[[str, Any, Any], str]] = {
    "const": lambda path, data, want: f"{path}: expected {want!r}, got {data!r}",
    "enum": lambda path, data, want: f"{path}: {data!r} is not one of {want!r}",
    "type": lambda path, data, want: f"{path}: expected {want}, got {type(data).__name__}",
    "required": lambda path, data, want: f"{path}: missing required field {want!r}",
}


def validate(data: Any, schema: Schema | None, path: str = "$") -> list[str]:
    """The problems of ``data`` against ``schema`` (``models._jsonschema``, the ``MODEL_REPLY``
    dialect), one sentence each."""
    if not schema:
        return []
    return [_problem(e, path) for e in errors(data, schema, MODEL_REPLY)]


# --------------------------------------------------------------------------- extraction
def _extract_fields(text: str, schema: Schema) -> dict[str, Any]:
    """Pull ``name: value`` / ``"name": value`` pairs for the schema's fields out of free text."""
    out: dict[str, Any] = {}
    props: dict[str, Any] = {}
    branches = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(branches, list):
        for br in branches:
            if isinstance(br, Mapping):
                props.update(_props(br))
    props.update(_props(schema))
    for key, sub in props.items():
        pat = re.compile(
            r'["\']?\b' + re.escape(key) + r'\b["\']?\s*[:=]\s*'
            r'(?:"((?:[^"\\]|\\.)*)"|\'((?:[^\'\\]|\\.)*)\'|([^\n,}]+))',
            re.I | re.S,
        )
        m = pat.search(text)
        if not m:
            continue
        raw = m.group(1) if m.group(1) is not None else m.group(2) if m.group(2) is not None else m.group(3)
        raw = raw.strip()
        if m.group(1) is not None:
            with contextlib.suppress(ValueError):
                raw = json.loads(f'"{raw}"', strict=False)
        value: Any = raw
        if isinstance(sub, Mapping) and sub.get("type") in ("object", "array"):
            parsed = _loads_lenient(raw)
            value = parsed if parsed is not None else raw
        out[key] = value
    return out


def _regex_fallback(text: str, schema: Schema) -> dict[str, Any]:
    """Last resort: a lone integer-enum field (a score) takes the last in-range number in the text."""
    out: dict[str, Any] = {}
    props = _props(schema)
    for key, sub in props.items():
        if not isinstance(sub, Mapping):
            continue
        enum = sub.get("enum")
        if enum and all(isinstance(e, int) for e in enum):
            scale = re.search(r"(?<![\d.])(-?\d+)\s*(?:/|out of)\s*\d+", text, re.I)
            named = re.search(re.escape(key) + r"\W{0,5}(-?\d+)(?![\d.])", text, re.I)
            nums = [int(n) for n in re.findall(r"(?<![\d.])-?\d+(?![\d.])", text)]
            picks = [int(m.group(1)) for m in (named, scale) if m] + nums[::-1]
            inrange = [n for n in picks if n in enum]
            if inrange:
                out[key] = inrange[0]
        elif sub.get("type") == "string" and key in schema.get("required", []) and len(props) == 1:
            out[key] = text.strip()
    return out


def _finish(data: dict[str, Any], schema: Schema | None, method: Method) -> ParseOutcome:
    data = coerce(data, schema)
    problems = validate(data, schema)
    return ParseOutcome(data, method, "; ".join(problems) if problems else None)


def parse_structured(text: str | None, schema: Schema | None = None) -> ParseOutcome:
    """Parse a model reply into a dict. Never raises; ``.ok`` is False with a reason on failure."""
    try:
        return _parse(text or "", schema)
    except Exception as exc:  # model text must never crash the caller
        return ParseOutcome(None, "none", f"parser error: {type(exc).__name__}: {exc}")


def _parse(text: str, schema: Schema | None) -> ParseOutcome:
    body = _unfence(strip_think(text))
    if not body.strip():
        return ParseOutcome(None, "none", "empty reply")
    partial: ParseOutcome | None = None

    def consider(outcome: ParseOutcome) -> ParseOutcome | None:
        nonlocal partial
        if outcome.ok:
            return outcome
        if outcome.data and (partial is None or len(outcome.data) > len(partial.data or {})):
            partial = outcome
        return None

    # 1. TOML (only when it is plainly TOML: key = value lines)
    if re.search(r"^\s*[A-Za-z_][\w-]*\s*=", body, re.M) and "{" not in body.split("=", 1)[0]:
        try:
            toml_data = tomllib.loads(body)
        except (tomllib.TOMLDecodeError, ValueError):
            toml_data = {}
        if toml_data and (hit := consider(_finish(dict(toml_data), schema, "toml"))):
            return hit
    # 2. JSON, every balanced object, the longest valid one first
    for span in sorted(_balanced_objects(body), key=len, reverse=True):
        obj = _loads_lenient(span)
        if isinstance(obj, dict) and (hit := consider(_finish(obj, schema, "json"))):
            return hit
    # 3. a truncated object, repaired
    repaired = repair_truncated_json(body)
    if repaired is not None:
        obj = _loads_lenient(repaired)
        if isinstance(obj, dict) and (hit := consider(_finish(obj, schema, "repair"))):
            return hit
    if schema:
        # 4. field extraction from free text
        fields = _extract_fields(body, schema)
        if fields and (hit := consider(_finish(fields, schema, "fields"))):
            return hit
        # 5. regex
        rx = _regex_fallback(body, schema)
        merged = {**rx, **fields} if fields else rx
        if merged and (hit := consider(_finish(merged, schema, "regex"))):
            return hit
    if partial is not None:
        return partial
    return ParseOutcome(None, "none", "no structured data found in the reply")

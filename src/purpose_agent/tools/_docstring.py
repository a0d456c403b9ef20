"""Parse a function docstring into a summary and per-parameter descriptions.

Understands Google style (``Args:`` / ``Arguments:`` / ``Parameters:`` followed by indented
``name (type): text`` lines) and NumPy style (``Parameters`` underlined with dashes, then
``name : type`` lines with indented text).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

_GOOGLE_HEAD = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:\s*$")
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^(\w+)\s*(?::\s*(.*))?$")
_SECTION_END = re.compile(
    r"^(Returns?|Yields?|Raises?|Examples?|Notes?|See Also|References|Attributes|Warnings?)\s*:?\s*$"
)


@dataclass(frozen=True, slots=True)
class ParsedDoc:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def parse_docstring(doc: str | None) -> ParsedDoc:
    """Return the summary (first paragraph) and parameter descriptions of ``doc``."""
    if not doc:
        return ParsedDoc()
    lines = inspect.cleandoc(doc).splitlines()
    summary_lines: list[str] = []
    for line in lines:
        if not line.strip() or _GOOGLE_HEAD.match(line.strip()) or _is_numpy_head(lines, line):
            break
        summary_lines.append(line.strip())
    params = _google_params(lines) or _numpy_params(lines)
    return ParsedDoc(" ".join(summary_lines), params)


def _is_numpy_head(lines: list[str], line: str) -> bool:
    idx = lines.index(line)
    return line.strip() == "Parameters" and idx + 1 < len(lines) and set(lines[idx + 1].strip()) == {"-"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    start = next((i for i, ln in enumerate(lines) if _GOOGLE_HEAD.match(ln.strip())), None)
    if start is None:
        return params
    base = _indent(lines[start])
    item_indent: int | None = None
    current: str | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        ind = _indent(line)
        if ind <= base:
            break
        if item_indent is None:
            item_indent = ind
        text = line.strip()
        m = _GOOGLE_ITEM.match(text)
        if ind == item_indent and m:
            current = m.group(1)
            params[current] = m.group(3).strip()
        elif current is not None:
            params[current] = (params[current] + " " + text).strip()
    return params


def _numpy_params(lines: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    start = next((i for i, ln in enumerate(lines) if _is_numpy_head(lines, ln)), None)
    if start is None:
        return params
    current: str | None = None
    body = lines[start + 2 :]
    for i, line in enumerate(body):
        if not line.strip():
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if _indent(line) == 0 and nxt.strip() and set(nxt.strip()) == {"-"}:
            break  # the next section
        if _indent(line) == 0:
            if _SECTION_END.match(line.strip()):
                break
            m = _NUMPY_ITEM.match(line.strip())
            if m:
                current = m.group(1)
                params[current] = ""
        elif current is not None:
            params[current] = (params[current] + " " + line.strip()).strip()
    return params

"""Citations of an answer: the passages a tool returned (``[source#chunk] text``, as the
Vault's tool writes them) that the answer draws on.

A small model often answers from a passage and forgets to cite it (the 1.5B model answered
"Refunds are paid within 14 days of the return." with the passage ``[refunds.md#0]`` in view).
``cite`` keeps the citations the answer already gives; when it gives none, it appends
``Sources: [...]`` for the passages that support the answer, found by word overlap, not by
asking the model. An answer that no passage supports gets no citation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from purpose_agent._text import tokenize

__all__ = ["cite", "passages", "supporting"]

#: ``Hit.citation``: ``[source#chunk]``; a source may hold spaces (``My Notes/a.md``), not newlines
_CITATION = re.compile(r"\[([^\[\]\n]+#\d+)\]")
#: a passage supports an answer when it holds this share of the answer's words (and at least two)
MIN_SHARE = 0.4
MIN_SHARED = 2
#: most passages cited for one answer
MAX_CITED = 2


def passages(outputs: Iterable[str]) -> dict[str, str]:
    """``{"source#chunk": text}`` of every cited passage in the tools' outputs (first seen wins)."""
    found: dict[str, str] = {}
    for output in outputs:
        marks = list(_CITATION.finditer(output))
        for i, mark in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(output)
            found.setdefault(mark.group(1), output[mark.end() : end].strip())
    return found


def supporting(answer: str, found: dict[str, str]) -> list[str]:
    """The citations whose passages hold enough of the answer's words, best first."""
    words = set(tokenize(answer))
    if not words:
        return []
    scored = []
    for citation, text in found.items():
        shared = len(words & set(tokenize(text)))
        if shared >= MIN_SHARED and shared / len(words) >= MIN_SHARE:
            scored.append((-shared, citation))
    return [citation for _, citation in sorted(scored)[:MAX_CITED]]


def _named(answer: str, found: dict[str, str]) -> list[str]:
    """The passages the answer already cites: ``[source#chunk]``, or the source's file name."""
    given = [c for c in _CITATION.findall(answer) if c in found]
    if given:
        return list(dict.fromkeys(given))
    lowered = answer.lower()
    return [c for c in found if c.rsplit("#", 1)[0].lower() in lowered]


def cite(answer: str, outputs: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """``(answer, citations)``: the answer with ``Sources: [...]`` appended when it cites none
    of the passages in ``outputs`` but some of them support it; the citations it carries."""
    found = passages(outputs)
    if not found or not answer.strip():
        return answer, ()
    named = _named(answer, found)
    if named:
        return answer, tuple(named)
    cited = supporting(answer, found)
    if not cited:
        return answer, ()
    return answer.rstrip() + "\n\nSources: " + ", ".join(f"[{c}]" for c in cited), tuple(cited)

"""A function docstring's summary and per-parameter descriptions, read by ``docstring_parser``
(Google, NumPy, reST and Epydoc styles, detected from the text)."""

from __future__ import annotations

from dataclasses import dataclass, field

import docstring_parser


@dataclass(frozen=True, slots=True)
class ParsedDoc:
    summary: str = ""
    params: dict[str, str] = field(default_factory=dict)


def _one_line(text: str | None) -> str:
    return " ".join(line.strip() for line in (text or "").splitlines() if line.strip())


def parse_docstring(doc: str | None) -> ParsedDoc:
    """Return the summary (first paragraph, on one line) and parameter descriptions of ``doc``."""
    if not doc or not doc.strip():
        return ParsedDoc()
    parsed = docstring_parser.parse(doc)
    summary = parsed.short_description or ""
    if parsed.long_description and not parsed.blank_after_short_description:
        summary += "\n" + parsed.long_description.split("\n\n", 1)[0]  # the paragraph goes on
    return ParsedDoc(_one_line(summary), {p.arg_name: _one_line(p.description) for p in parsed.params})

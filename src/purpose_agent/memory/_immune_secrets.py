"""Secrets in a lesson, found with the maintained pattern set of ``detect-secrets``.

Every regex plugin of ``detect-secrets`` (AWS, Azure, GitHub, GitLab, Slack, Stripe, OpenAI,
SendGrid, Twilio, npm, PyPI, JWT, private keys, basic-auth URLs, Discord, Telegram, ...) runs on
each line, and its keyword plugin on quoted assignments (``password = "..."``). The public-IP
and high-entropy plugins are left out: lessons quote documentation addresses and hashes. A value
that is a template, a variable reference or a placeholder (``changeme``, ``<your-key>``,
``${TOKEN}``) is dropped, like detect-secrets' own heuristic filters do.

The hand-written privacy rules (emails, home paths, phone and card numbers, passwords in prose)
stay in :mod:`purpose_agent.memory._immune_rules`; this layer adds to them. Without the package,
it finds nothing and says so through :func:`available`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["SecretFinding", "available", "find_secrets"]

_MAX_LINES = 400
_MAX_LINE_CHARS = 4_000
_SKIPPED_TYPES = frozenset({"Public IP (ipv4)", "Base64 High Entropy String", "Hex High Entropy String"})
_PLACEHOLDER = re.compile(
    r"^(?:x+|\*+|\.+|<[^>]*>|\{[^}]*\}|\$\{?\w+\}?|%\w+%|your[\w-]*|my[\w-]*|example\w*|sample\w*|dummy\w*|"
    r"fake\w*|test\w*|changeme|change_me|placeholder|redacted|secret|password|passwd|pass|pwd|token|api[_-]?key|"
    r"none|null|todo|tbd|hunter2|\.\.\.)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class SecretFinding:
    """A secret: the plugin's secret type, its span in the scanned text."""

    kind: str
    start: int
    end: int


_LOCK = threading.Lock()
_PLUGINS: list[tuple[str, Any]] | None = None
_FILTERS: dict[str, Any] = {}


def _load() -> list[tuple[str, Any]]:
    global _PLUGINS
    with _LOCK:
        if _PLUGINS is None:
            try:
                from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
                from detect_secrets.filters import heuristic
                from detect_secrets.plugins.keyword import KeywordDetector
            except ImportError:
                _PLUGINS = []
                return _PLUGINS
            plugins: list[tuple[str, Any]] = []
            mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
            for secret_type, cls in sorted(mapping.items()):
                if secret_type in _SKIPPED_TYPES:
                    continue
                try:
                    plugins.append((secret_type, KeywordDetector() if cls is KeywordDetector else cls()))
                except Exception:  # a plugin that cannot be built with defaults is skipped
                    continue
            _FILTERS.update(
                templated=heuristic.is_templated_secret,
                dollar=heuristic.is_prefixed_with_dollar_sign,
                sequential=heuristic.is_sequential_string,
                uuid=heuristic.is_potential_uuid,
                indirect=heuristic.is_indirect_reference,
            )
            _PLUGINS = plugins
        return _PLUGINS


def available() -> bool:
    """Whether the ``detect-secrets`` plugins could be loaded."""
    return bool(_load())


def _kept(value: str, line: str) -> bool:
    v = value.strip().strip("'\"`")
    auth = re.search(r"://[^:/\s@]+:([^@\s]+)@", v)
    if auth:  # a URL with credentials: judge the password part
        v = auth.group(1)
    if (len(v) < 6 and not auth) or _PLACEHOLDER.match(v):
        return False
    try:
        if (
            _FILTERS["templated"](v)
            or _FILTERS["dollar"](v)
            or _FILTERS["sequential"](v)
            or _FILTERS["uuid"](v)
        ):
            return False
        if _FILTERS["indirect"](line) and not re.search(r"://[^\s:/@]+:[^\s:/@]+@", line):
            return False
    except Exception:  # a filter error must not hide a secret
        return True
    return True


def _matches(plugin: Any, line: str) -> list[tuple[str, int, int]]:
    """(secret value, start, end) in ``line``: whole regex matches for the pattern plugins (their
    ``analyze_string`` yields capture groups, e.g. only ``ghp`` of a GitHub token), the value
    group for the keyword plugin."""
    out: list[tuple[str, int, int]] = []
    try:
        denylist = getattr(plugin, "denylist", None)
        if denylist is not None:
            for regex in denylist:
                for m in regex.finditer(line):
                    out.append((m.group(0), m.start(), m.end()))
        else:
            for value in plugin.analyze_string(line):
                if isinstance(value, str) and value:
                    i = line.find(value)
                    out.append((value, max(i, 0), (i + len(value)) if i >= 0 else len(line)))
    except Exception:  # a plugin error must not stop the other plugins
        return out
    return out


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


def find_secrets(text: str) -> list[SecretFinding]:
    """Secrets in ``text``, one finding per secret type (the first occurrence)."""
    plugins = _load()
    if not plugins or not text:
        return []
    found: dict[str, SecretFinding] = {}
    for n, m in enumerate(re.finditer(r"[^\n]+", text)):
        if n >= _MAX_LINES:
            break
        line = m.group()[:_MAX_LINE_CHARS]
        for secret_type, plugin in plugins:
            kind = _slug(secret_type)
            if kind in found:
                continue
            for value, lo, hi in _matches(plugin, line):
                if _kept(value, line):
                    found[kind] = SecretFinding(kind, m.start() + lo, m.start() + hi)
                    break
    return sorted(found.values(), key=lambda f: f.start)

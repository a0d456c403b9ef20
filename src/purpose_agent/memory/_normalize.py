"""Text normalisation and payload decoding for the immune system.

Every transform keeps a map from each output character to an index in the text it was
derived from, so a rule that matches a normalised view can quote the original span.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["View", "confusables", "decode_payloads", "deobfuscate", "normalize", "rot13", "squash"]

# Characters removed outright: zero-width, bidi controls, soft hyphen, fillers, variation selectors.
_INVISIBLE = frozenset(
    (
        *(0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180E, 0x180F),
        *range(0x200B, 0x2010),
        *range(0x202A, 0x202F),
        *range(0x2060, 0x2070),
        *(0x3164, 0xFEFF, 0xFFA0),
        *range(0xFE00, 0xFE10),
    )
)

# Letters that are ordinary in Cyrillic/Greek words: mapped only inside mixed-script tokens.
_SCRIPT_ONLY = frozenset("вкмнтпгьηγω")

_SMALL_CAPITAL = re.compile(r"LATIN LETTER SMALL CAPITAL ([A-Z])")


@lru_cache(maxsize=1)
def confusables() -> dict[str, str]:
    """Non-ASCII characters that look like an ASCII letter or digit, mapped to it.

    Built from the Unicode TR39 confusables data shipped by the ``confusable-homoglyphs``
    package (its ``confusables.json``), with chains followed (``к`` → ``ĸ`` → ``k``) and case
    kept: a letter is looked up as is, then upper- and lower-cased, so Cyrillic ``т`` maps through
    ``Т`` to ``t``. Latin small capitals (``ᴛ``) come from their Unicode names. Empty when the
    package is missing (NFKC still folds styled and full-width letters).
    """
    try:
        raw = (resources.files("confusable_homoglyphs") / "confusables.json").read_text(encoding="utf-8")
        data: dict[str, list[dict[str, str]]] = json.loads(raw)
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError):
        return {}
    graph = {
        ch: [h["c"] for h in alts if len(h.get("c", "")) == 1] for ch, alts in data.items() if len(ch) == 1
    }

    def resolve(ch: str) -> str | None:
        seen, frontier = {ch}, [ch]
        for _ in range(4):
            nxt: list[str] = []
            for c in frontier:
                for o in graph.get(c, ()):
                    if o.isascii():
                        if o.isalnum():
                            return o
                    elif o not in seen:
                        seen.add(o)
                        nxt.append(o)
            frontier = nxt
        return None

    def target(ch: str) -> str | None:
        for variant in (ch, ch.upper(), ch.lower()):
            if len(variant) != 1:
                continue
            o = resolve(variant)
            if o and o.isalpha():
                if variant.isupper() and o == "l":
                    o = "I"  # TR39 folds I into l; keep the capital for a capital
                return o.lower() if ch.islower() else (o.upper() if ch.isupper() else o)
        m = _SMALL_CAPITAL.fullmatch(unicodedata.name(ch, ""))
        return m.group(1).lower() if m else resolve(ch)

    candidates = set(graph) | {chr(i) for i in (*range(0x0250, 0x02B0), *range(0x1D00, 0x1D80))}
    table: dict[str, str] = {}
    for ch in candidates:
        if ch.isascii() or not ch.isprintable():
            continue
        o = target(ch)
        if o:
            table[ch] = o
    return table


_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_SYM = {"@": "a", "$": "s", "!": "i", "|": "l", "€": "e"}

_TOKEN_RE = re.compile(r"\S+")
_LEET_TOKEN_RE = re.compile(r"[A-Za-z0-9@$!|€]+")
_INTRA_SEP_RE = re.compile(r"(?<=[^\W\d_])[.\-_*·•|'’`~^+](?=[^\W\d_])")
_SPACED_RUN_RE = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*·•|/\\,+~]{1,2}){2,40}[^\W\d_](?![^\W\d_])")
_SPACED_SEP_RE = re.compile(r"[ .\-_*·•|/\\,+~]")
_SPACED_PAIR_RE = re.compile(r"(?<![^\W\d_])[a-z] [a-z](?![^\W\d_])")

_B64_RE = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RE = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){6,}(?![0-9A-Fa-f])")
_HEX_SEP_RE = re.compile(r"(?:(?:\\x|0x)?[0-9A-Fa-f]{2}[ :,]?){6,}")
_URL_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_HTML_RE = re.compile(r"&(?:#\d{2,7}|#x[0-9A-Fa-f]{2,6}|[A-Za-z]{2,8});")
_UESC_RE = re.compile(r"\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}")

_MAX_CANDIDATES = 32
_MAX_CANDIDATE_LEN = 16_384
_SPLICE_MAX_CHARS = 32_768


@dataclass(frozen=True, slots=True, eq=False)
class View:
    """A transformed text; ``pos[i]`` is the index in ``source`` of character ``i``."""

    text: str
    pos: list[int]
    source: str

    def quote(self, start: int, end: int, limit: int = 200) -> str:
        """The span of ``source`` that produced ``text[start:end]``."""
        if not self.pos or start >= end:
            return ""
        start = max(0, min(start, len(self.pos) - 1))
        end = max(start + 1, min(end, len(self.pos)))
        a, b = self.pos[start], self.pos[end - 1] + 1
        span = self.source[a:b]
        return span if len(span) <= limit else span[: limit - 1] + "…"


@lru_cache(maxsize=8192)
def _nfkc(ch: str) -> str:
    o = ord(ch)
    if o in _INVISIBLE:
        return ""
    cat = unicodedata.category(ch)
    if cat == "Cf" or (cat == "Cc" and ch not in "\t\n\r\x0b\x0c"):
        return ""
    if cat == "Cs":
        return "\ufffd"
    if cat == "Zs":
        return " "
    out = unicodedata.normalize("NFKC", ch)
    return "".join(c for c in out if ord(c) not in _INVISIBLE)


def _is_ascii_letter(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def normalize(text: str) -> View:
    """NFKC, drop invisible/control characters, map TR39 confusables inside Latin-looking tokens."""
    chars: list[str] = []
    pos: list[int] = []
    ascii_only = text.isascii()
    for i, ch in enumerate(text):
        if ch < "\x80":
            if ch >= " " and ch != "\x7f":
                chars.append(ch)
                pos.append(i)
            elif ch in "\t\x0b\x0c":
                chars.append(" ")
                pos.append(i)
            elif ch in "\n\r":
                chars.append("\n")
                pos.append(i)
            continue
        for c in _nfkc(ch):
            chars.append(c)
            pos.append(i)
    out = "".join(chars)
    if not ascii_only:
        out = _map_homoglyphs(out)
    return View(out, pos, text)


def _map_homoglyphs(text: str) -> str:
    table = confusables()
    if not any(c in table for c in text):
        return text
    latin = sum(1 for c in text if _is_ascii_letter(c))
    other = sum(1 for c in text if c.isalpha() and not c.isascii())
    mostly_latin = latin >= other
    parts: list[str] = []
    last = 0
    for m in _TOKEN_RE.finditer(text):
        tok = m.group()
        if not any(c in table for c in tok):
            continue
        letters = [c for c in tok if c.isalpha()]
        has_latin = any(_is_ascii_letter(c) for c in letters)
        lookalike_only = all(c in table and c not in _SCRIPT_ONLY for c in letters)
        if not (has_latin or (lookalike_only and mostly_latin)):
            continue
        parts.append(text[last : m.start()])
        parts.append("".join(table.get(c, c) for c in tok))
        last = m.end()
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _apply(view: View, keep: list[int], replace: dict[int, str] | None = None) -> View:
    """Keep the characters at indices ``keep`` (optionally replaced), composing positions."""
    rep = replace or {}
    text = "".join(rep.get(i, view.text[i]) for i in keep)
    return View(text, [view.pos[i] for i in keep], view.source)


def deobfuscate(view: View) -> View:
    """Strip combining marks, undo light leetspeak, join spaced-out and dotted-out words."""
    text = view.text
    keep = list(range(len(text)))
    rep: dict[int, str] = {}
    if not text.isascii():
        keep = [i for i in keep if not unicodedata.combining(text[i])]
        for i in keep:
            c = text[i]
            if c >= "\x80" and c.isalpha():
                base = unicodedata.normalize("NFD", c)[0]
                if base != c and base < "\x80":
                    rep[i] = base
        if rep or len(keep) != len(text):
            view = _apply(view, keep, rep)
            text, keep, rep = view.text, list(range(len(view.text))), {}
    for m in _LEET_TOKEN_RE.finditer(text):
        tok = m.group()
        if not any(c.isalpha() for c in tok) or tok.isalpha():
            continue
        if not any(c.isdigit() or c in _LEET_SYM for c in tok):
            continue
        for j, c in enumerate(tok):
            if c in _LEET:
                rep[m.start() + j] = _LEET[c]
            elif c in _LEET_SYM and j + 1 < len(tok) and tok[j + 1].isalnum():
                rep[m.start() + j] = _LEET_SYM[c]
    drop: set[int] = set()
    for m in _SPACED_RUN_RE.finditer(text):
        for j, c in enumerate(m.group()):
            if _SPACED_SEP_RE.match(c):
                drop.add(m.start() + j)
    for m in _SPACED_PAIR_RE.finditer(text):
        drop.add(m.start() + 1)
    for m in _INTRA_SEP_RE.finditer(text):
        drop.add(m.start())
    if not rep and not drop:
        return view
    return _apply(view, [i for i in keep if i not in drop], rep)


def squash(view: View) -> View:
    """Lower-case ASCII letters and digits only, everything else removed."""
    keep: list[int] = []
    chars: list[str] = []
    for i, c in enumerate(view.text):
        if c < "\x80" and c.isalnum():
            keep.append(i)
            chars.append(c.lower())
    return View("".join(chars), [view.pos[i] for i in keep], view.source)


def rot13(view: View) -> View:
    """ROT13 of a view, same positions."""
    return View(codecs.encode(view.text, "rot13"), view.pos, view.source)


def _printable_text(raw: bytes) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not s:
        return None
    good = sum(1 for c in s if c.isprintable() or c in "\n\t\r")
    letters = sum(1 for c in s if c.isalpha())
    if good / len(s) < 0.92 or letters < 4 or letters / len(s) < 0.25:
        return None
    return s


def _b64(token: str) -> str | None:
    token = token.rstrip("=").replace("-", "+").replace("_", "/")
    if len(token) % 4 == 1:
        token = token[:-1]
    token += "=" * (-len(token) % 4)
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw)


def _hex(token: str) -> str | None:
    digits = re.sub(r"\\x|0x|[ :,]", "", token)
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    return _printable_text(raw)


def _url_decode(token: str) -> str:
    return urllib.parse.unquote(token, errors="replace")


def _escape_decode(token: str) -> str:
    return _UESC_RE.sub(_unescape_one, token)


def _unescape_one(m: re.Match[str]) -> str:
    try:
        return chr(int(m.group()[2:], 16))
    except ValueError:
        return m.group()


_TOKEN_DECODERS: tuple[tuple[str, re.Pattern[str], Callable[[str], str]], ...] = (
    ("url", _URL_RE, _url_decode),
    ("html", _HTML_RE, html.unescape),
    ("escape", _UESC_RE, _escape_decode),
)
_WS_RE = re.compile(r"\s")


def _marked_spans(text: str, marker: re.Pattern[str]) -> list[tuple[int, int]]:
    """Bounds of whitespace-delimited tokens (bounded length) that contain ``marker``."""
    spans: list[tuple[int, int]] = []
    taken = -1
    for m in marker.finditer(text):
        if m.start() < taken:
            continue
        lo = max(0, m.start() - _MAX_CANDIDATE_LEN)
        ws_before = [w.end() for w in _WS_RE.finditer(text, lo, m.start())]
        a = ws_before[-1] if ws_before else lo
        ws_after = _WS_RE.search(text, m.end(), m.end() + _MAX_CANDIDATE_LEN)
        b = ws_after.start() if ws_after else min(len(text), m.end() + _MAX_CANDIDATE_LEN)
        spans.append((a, b))
        taken = b
        if len(spans) >= _MAX_CANDIDATES:
            break
    return spans


def _splice(text: str, spans: list[tuple[int, int]], decode: Callable[[str], str]) -> str:
    """``text`` with each span decoded; only the decoded tokens when the text is large."""
    if len(text) > _SPLICE_MAX_CHARS:
        return "\n".join(decode(text[a:b]) for a, b in spans)
    parts: list[str] = []
    last = 0
    for a, b in spans:
        parts.append(text[last:a])
        parts.append(decode(text[a:b]))
        last = b
    parts.append(text[last:])
    return "".join(parts)


def decode_payloads(text: str) -> list[tuple[str, str]]:
    """Decoded texts hidden in ``text`` as ``(encoding, decoded)`` pairs: base64, hex, URL, HTML, escapes."""
    found: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(kind: str, decoded: str | None) -> None:
        if decoded and decoded not in seen and decoded != text:
            seen.add(decoded)
            found.append((kind, decoded))

    for n, m in enumerate(_HEX_RE.finditer(text)):
        if n >= _MAX_CANDIDATES:
            break
        add("hex", _hex(m.group()[:_MAX_CANDIDATE_LEN]))
    for n, m in enumerate(_HEX_SEP_RE.finditer(text)):
        if n >= _MAX_CANDIDATES:
            break
        if any(c in m.group() for c in " :,\\x"):
            add("hex", _hex(m.group()[:_MAX_CANDIDATE_LEN]))
    for n, m in enumerate(_B64_RE.finditer(text)):
        if n >= _MAX_CANDIDATES:
            break
        tok = m.group()[:_MAX_CANDIDATE_LEN]
        if tok.isalpha() and (tok.islower() or tok.isupper()):
            continue  # a plain word, not a payload
        add("base64", _b64(tok))
    for kind, marker, decode in _TOKEN_DECODERS:
        spans = _marked_spans(text, marker)
        if spans:
            try:
                add(kind, _splice(text, spans, decode))
            except (ValueError, TypeError, OverflowError):
                continue
    return found

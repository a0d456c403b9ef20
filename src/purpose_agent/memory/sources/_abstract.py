"""Programmatic abstraction: task-specific entities become ``{placeholders}``, and back.

No model is asked. Entities are matched from the task (the purpose) and the state text:

- identifiers in backticks (the first is ``{fn}``, e.g. a function to write), other
  identifiers (snake_case, camelCase) as ``{name1}``…;
- quoted strings as ``{str1}``…, numbers as ``{num1}``…;
- a one-letter variable of a formula in the purpose (``e`` in "Solve for e: 56 - 98*e = -1218")
  as ``{var1}``…, when an action names it too (``e = symbols('e')``); never ``a`` or ``I``,
  which are English words;
- rooms (a small lexicon, or the object of "door to …") as ``{room1}``…, taken from the
  purpose, or from the state text when an action names them;
- other words of the purpose that an action also names (``take coin`` for "find a coin") as
  ``{obj1}``…; verbs and generic words stay.

One mapping is applied to the task pattern, the actions and the observations alike, so a
re-instantiation for a new task with the same pattern fills them all consistently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from purpose_agent._text import STOPWORDS


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


ROOMS = _words(
    """
    kitchen pantry corridor hallway hall bedroom bathroom backyard garden garage driveway street
    supermarket foyer office workshop patio attic basement cellar study lobby balcony shed
    closet library lounge porch yard
    """
)
#: verbs and generic words of tasks and commands: never abstracted
KEEP = _words(
    """
    take put open close go move look find get pick drop read cook slice chop dice eat drink
    prepare examine inventory use insert place give unlock lock turn switch write return make
    add remove check count answer submit compute sort reverse fry roast grill enjoy search walk
    enter exit leave bring carry fill empty wash clean cut mix heat boil buy show tell around
    task game room door doors north south east west up down left right python function signature
    code test tests string strings list lists number numbers integer value values question
    correctly true false none each every all first last then once done your you there here this
    that with without which what where when
    solve determine calculate simplify evaluate express convert round state result solution
    equation expression formula
    """
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BACKTICK = re.compile(r"`([^`\n]{1,80})`")
_QUOTED = re.compile(r"\"([^\"\n]{1,60})\"|(?<![\w])'([^'\n]{1,60})'(?![\w])")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w]|\.\d)")
_IDENT = re.compile(r"(?<![\w])[A-Za-z_][A-Za-z0-9_]*(?![\w])")
_WORD = re.compile(r"[A-Za-z][A-Za-z-]*[A-Za-z]")
#: a one-letter name inside a formula: next to a digit, an operator or "=", or "for x:"
_MATH_VAR = re.compile(
    r"(?:(?<=[\d*/+\-=^(])\s*|\bfor\s+)([A-Za-z])(?![\w])|(?<![\w])([A-Za-z])(?=\s*[*/+\-=^)])"
)
#: one-letter English words: never a variable placeholder (they are everywhere in the text)
_NOT_VARS = frozenset("aAI")
_DOOR_TO = re.compile(r"\b(?:door to|move to|go to)\s+(?:the\s+)?([a-z]+(?: room)?)\b", re.IGNORECASE)
_ROOM_PHRASE = re.compile(r"\b([a-z]+ room)\b", re.IGNORECASE)
MAX_PHRASE = 3


def _is_identifier_like(word: str) -> bool:
    """snake_case, camelCase or letters with digits: a name, not an English word."""
    return "_" in word.strip("_") or bool(re.search(r"[a-z][A-Z]", word)) or bool(re.search(r"\d", word))


def _boundary_pattern(value: str) -> str:
    left = r"(?<![\w])" if re.match(r"\w", value[0]) else ""
    right = r"(?![\w])" if re.match(r"\w", value[-1]) else ""
    if _NUMBER.fullmatch(value):
        left, right = r"(?<![\w.])", r"(?![\w]|\.\d)"
    return left + re.escape(value) + right


def _contains(text: str, value: str) -> bool:
    return re.search(_boundary_pattern(value), text, re.IGNORECASE) is not None


def shows_value(text: str, value: str) -> bool:
    """``value`` is in ``text`` as a whole token (case-insensitive), or, for a number, as a
    number equal to it (``62.0`` shows ``62``; ``162`` and ``6.2`` do not)."""
    value = value.strip()
    if not value or not text:
        return False
    if _contains(text, value):
        return True
    if _NUMBER.fullmatch(value):
        target = float(value)
        return any(float(m.group(0)) == target for m in _NUMBER.finditer(text))
    return False


@dataclass(frozen=True)
class Abstraction:
    """A consistent mapping between entities and placeholders (``bindings``: name -> value)."""

    bindings: Mapping[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.bindings)

    def apply(self, text: str) -> str:
        """Replace every bound entity (case-insensitive, whole words) by its placeholder."""
        if not text or not self.bindings:
            return text
        by_value: dict[str, str] = {}
        for name, value in self.bindings.items():
            by_value.setdefault(value.lower(), name)
        ordered = sorted(by_value, key=len, reverse=True)
        rx = re.compile("|".join(_boundary_pattern(v) for v in ordered), re.IGNORECASE)
        return rx.sub(lambda m: "{" + by_value[m.group(0).lower()] + "}", text)

    def apply_any(self, value: Any) -> Any:
        """:meth:`apply` on every string inside a JSON-like value."""
        if isinstance(value, str):
            return self.apply(value)
        if isinstance(value, Mapping):
            return {k: self.apply_any(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.apply_any(v) for v in value]
        return value


def fill(text: str, bindings: Mapping[str, str]) -> str:
    """Replace ``{name}`` by its bound value; unknown placeholders (and other braces) stay."""
    if not bindings:
        return text
    return _PLACEHOLDER.sub(lambda m: str(bindings.get(m.group(1), m.group(0))), text)


def blank_placeholders(text: str) -> str:
    """``text`` with each ``{name}`` placeholder replaced by a space (other braces stay)."""
    return _PLACEHOLDER.sub(" ", text)


def fill_any(value: Any, bindings: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return fill(value, bindings)
    if isinstance(value, Mapping):
        return {k: fill_any(v, bindings) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fill_any(v, bindings) for v in value]
    return value


class _Namer:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.bindings: dict[str, str] = {}
        self.seen: set[str] = set()

    def add(self, role: str, value: str) -> None:
        value = value.strip()
        low = value.lower()
        if not value or low in self.seen or _PLACEHOLDER.search(value):
            return
        if any(low in s.split() for s in self.seen if " " in s):  # part of a longer entity
            return
        self.seen.add(low)
        n = self.counts.get(role, 0) + 1
        self.counts[role] = n
        name = "fn" if role == "fn" and n == 1 else f"{role}{n}"
        self.bindings[name] = value


def _purpose_phrases(purpose: str) -> list[str]:
    """Runs of 1..MAX_PHRASE consecutive content words of the purpose, longest first."""
    words = [
        w
        for w in _WORD.findall(purpose)
        if w.lower() not in STOPWORDS and w.lower() not in KEEP and len(w) >= 3
    ]
    raw = [m.group(0) for m in _WORD.finditer(purpose)]
    out: list[str] = []
    for size in range(MAX_PHRASE, 0, -1):
        for i in range(len(raw) - size + 1):
            chunk = raw[i : i + size]
            if all(c in words for c in chunk):
                out.append(" ".join(chunk))
    return list(dict.fromkeys(out))


def extract(purpose: str, actions: Iterable[str] = (), state_text: str = "") -> Abstraction:
    """The entities of one task: from the purpose, and from the state text where actions name them.

    ``actions`` are the action texts of the run (names and parameter values); an ordinary
    word of the purpose is an entity only when an action names it too.
    """
    acts = [a for a in actions if a]
    joined = "\n".join(acts)
    namer = _Namer()
    ticks = [m.group(1).strip() for m in _BACKTICK.finditer(purpose)]
    idents = [t for t in ticks if _IDENT.fullmatch(t)]
    for i, t in enumerate(idents):
        namer.add("fn" if i == 0 else "name", t)
    for m in _QUOTED.finditer(purpose):
        namer.add("str", m.group(1) or m.group(2))
    outside = _BACKTICK.sub(" ", purpose)
    for m in _IDENT.finditer(outside):
        w = m.group(0)
        if _is_identifier_like(w) and not w.isdigit() and not _NUMBER.fullmatch(w):
            namer.add("name", w)
    for m in _NUMBER.finditer(purpose):
        namer.add("num", m.group(0))
    for m in _MATH_VAR.finditer(outside):
        v = m.group(1) or m.group(2)
        if v not in _NOT_VARS and acts and re.search(rf"(?<![\w]){v}(?![\w])", joined):
            namer.add("var", v)
    targets = {m.group(1).lower() for m in _DOOR_TO.finditer(joined)}  # "door to X": X is a room
    rooms: list[str] = []
    for text in (purpose, joined):
        rooms += [m.group(1) for m in _ROOM_PHRASE.finditer(text)]
        rooms += [m.group(1) for m in _DOOR_TO.finditer(text)]
        rooms += [w for w in _WORD.findall(text) if w.lower() in ROOMS]
    for r in rooms:
        low = r.lower()
        first = low.split()[0]
        if low in KEEP or low in STOPWORDS or first in STOPWORDS or first in KEEP:
            continue
        named = _contains(joined, r)
        if _contains(purpose, r) or low in targets or (named and _contains(state_text, r)):
            namer.add("room", r)
    for phrase in _purpose_phrases(outside):
        if acts and _contains(joined, phrase):
            namer.add("obj", phrase)
    return Abstraction(dict(namer.bindings))


# ------------------------------------------------------------------ matching a new task
def _lower_keep_len(s: str) -> str:
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in s)


def _squash(s: str) -> str:
    return " ".join(s.split())


def match_pattern(pattern: str, text: str) -> dict[str, str] | None:
    """Bindings that turn ``pattern`` into ``text`` (case- and whitespace-insensitive), or None.

    Linear and without backtracking: each placeholder takes the text up to the first
    occurrence of the literal that follows it; a repeated placeholder must bind the same value.
    """
    pattern, text = _squash(pattern), _squash(text)
    parts = _PLACEHOLDER.split(pattern)  # literal, name, literal, name, ..., literal
    literals = [_lower_keep_len(p) for p in parts[0::2]]
    names = parts[1::2]
    low = _lower_keep_len(text)
    if not names:
        return {} if literals[0] == low else None
    if not low.startswith(literals[0]):
        return None
    pos = len(literals[0])
    out: dict[str, str] = {}
    for i, name in enumerate(names):
        nxt = literals[i + 1]
        last = i + 1 == len(names)
        if not nxt and not last:
            return None  # two placeholders side by side: ambiguous
        end = (len(low) - len(nxt) if low.endswith(nxt) else -1) if last else low.find(nxt, pos + 1)
        if end <= pos:
            return None
        value = text[pos:end].strip()
        if not value or (name in out and out[name].lower() != value.lower()):
            return None
        out.setdefault(name, value)
        pos = end + len(nxt)
    return out if pos == len(low) else None

"""A deterministic re-flow of one-line Python into lines, for the user layer's coder.

Small models write ``def f(n): if n <= 1: return n else: return f(n-1) + f(n-2)`` (one line,
inside a JSON string), which does not parse. ``reflow(code)`` rebuilds the lines from Python's
own tokens (``tokenize``), so colons and semicolons inside strings, brackets (slices, dicts,
calls, parameter annotations), lambdas and ``:=`` are never split. ``ReflowingEnvironment``
applies it to what a coder submits; ``CodingEnvironment`` itself never does (benchmarks measure
the model's raw code).

The rule, where the one line is ambiguous (Python puts every statement after ``if x: a; b``
into the ``if``; a one-line nested block does not parse at all):

- A statement starts after a block header's ``:``, after a ``;``, and before a word only a
  statement can start with (``return``, ``for``, ``elif``, ``except``, ``else:``, ...; an ``if``
  only when a ``:`` comes before any ``else``, so ``a if b else c`` stays whole).
- After a header's ``:`` the statement goes into the block.
- ``elif``/``else``/``except``/``finally`` go to the innermost block that can take them; an
  ``else`` prefers an ``if`` (a loop's or a ``try``'s ``else`` only when no ``if`` is open). At
  the start of a real line, a block whose line has the same indentation comes first.
- After a ``;`` a statement stays in the current block, except that
  1. after ``return``/``raise``/``break``/``continue`` it closes that block (what follows in
  the same block could never run), and
  2. a ``return`` goes to the body of the innermost enclosing ``def`` (it ends the function:
  ``def f(n): a, b = 0, 1; for _ in range(n): a, b = b, a + b; return a`` returns after the
  loop), and a ``def`` inside a ``class`` to the class's body (the next method).
- A real line break keeps its indentation's meaning: as deep as an earlier line of the same
  indentation, or one block deeper than a less indented one.

When that reading does not parse, the same without rule 2, then Python's own reading (without
1 and 2) are tried; the first that ``ast.parse``s is returned. Comments are dropped.
"""

from __future__ import annotations

import ast
import io
import tokenize
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

from purpose_agent.core.environment import ActionSpec, Environment
from purpose_agent.core.types import Action, State

__all__ = ["ReflowingEnvironment", "reflow", "repair"]

_HEADERS = frozenset(
    {"if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def", "class"}
)
_CLAUSES = frozenset({"elif", "else", "except", "finally"})
#: words that begin a statement and never occur inside an expression (``if``/``else``/``async``
#: are checked apart)
_STARTERS = frozenset(
    {
        "return", "pass", "break", "continue", "raise", "del", "global", "nonlocal", "assert",
        "def", "class", "for", "while", "try", "with", "elif", "except", "finally",
    }
)  # fmt: skip
_TERMINAL = frozenset({"return", "raise", "break", "continue"})
#: which (block, last clause) each clause can follow
_FOLLOWS: dict[str, frozenset[tuple[str, str]]] = {
    "elif": frozenset({("if", "if"), ("if", "elif")}),
    "else": frozenset({("if", "if"), ("if", "elif"), ("for", "for"), ("while", "while"), ("try", "except")}),
    "except": frozenset({("try", "try"), ("try", "except")}),
    "finally": frozenset({("try", "try"), ("try", "except"), ("try", "else")}),
}
_OPEN, _CLOSE = frozenset("([{"), frozenset(")]}")
_SKIP = frozenset({tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING})


def parses(code: str) -> bool:
    """True when ``code`` is valid Python (no warning shown; a NUL byte is not valid)."""
    with warnings.catch_warnings():  # model text: no SyntaxWarning on the user's screen
        warnings.simplefilter("ignore")
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            return False
    return True


def _without_json_tail(code: str) -> str | None:
    """``code`` without a tail of ``}`` / ``]`` left over from the JSON it came in (a 1.5B
    model closed the action's JSON inside the code string: ``... fibonacci(n-2)}}``), when that
    makes it parse; else None."""
    text = code.rstrip()
    while text and text[-1] in "}]":
        text = text[:-1].rstrip()
        if parses(text):
            return text + "\n"
    return None


def repair(code: str) -> tuple[str, str] | None:
    """``(fixed code, what was done)`` for code that does not parse but can be made to: a tail
    of JSON brackets dropped, or the code re-flowed (``reflow``); None when it parses already
    or cannot be repaired. Never raises."""
    if parses(code):
        return None
    tail = _without_json_tail(code)
    if tail is not None:
        dropped = "".join(code.rstrip()[len(tail.rstrip()) :].split())
        return tail, f"a trailing '{dropped}' (left over from the JSON) was dropped"
    fixed = reflow(code)
    if fixed is None:
        return None
    before = len(code.strip().splitlines())
    shape = "one-line code" if before == 1 else f"code of {before} lines"
    return (
        fixed,
        f"it was re-flowed from {shape} into {len(fixed.splitlines())} lines (one statement per line)",
    )


def reflow(code: str) -> str | None:
    """``code`` unchanged when it parses; else the code re-flowed into lines by the rule of the
    module docstring, when that parses; else None. Never raises."""
    try:
        if parses(code):
            return code
        pieces = _pieces(code)
        for dead_code, scoped in ((True, True), (True, False), (False, False)):
            placed = _place(pieces, dead_code=dead_code, scoped=scoped)
            if placed is not None:
                text = "".join("    " * level + _text(code, p) + "\n" for level, p in placed)
                if parses(text):
                    return text
    except Exception:
        return None
    return None


@dataclass
class _Piece:
    """One statement, or one block header up to its ``:``. ``sep``: what came before it ("line":
    a real line break, "colon": its block's header, "semi": a ``;`` or a statement word)."""

    tokens: list[tokenize.TokenInfo]
    sep: str
    column: int
    keyword: str = ""  # the header's keyword (after ``async``), "" for a simple statement

    @property
    def word(self) -> str:
        return self.tokens[0].string


@dataclass
class _Level:
    """The last statement placed at one depth: its block ("" for a simple statement), its last
    clause, and the column of its line when it began one."""

    block: str
    last: str
    column: int | None


def _pieces(code: str) -> list[_Piece]:
    out: list[_Piece] = []
    line: list[tokenize.TokenInfo] = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if line:
                out += _split(line)
            line = []
        elif tok.type not in _SKIP:
            line.append(tok)
    return out


def _split(toks: Sequence[tokenize.TokenInfo]) -> list[_Piece]:
    """The statements and headers of one logical line."""
    pieces: list[_Piece] = []
    column = toks[0].start[1]
    cur: list[tokenize.TokenInfo] = []
    sep, pending, depth, lambdas = "line", "", 0, 0

    def flush(next_sep: str) -> None:
        nonlocal cur, sep, pending, lambdas
        if cur:
            pieces.append(_Piece(cur, sep, column, pending))
        cur, sep, pending, lambdas = [], next_sep, "", 0

    for i, tok in enumerate(toks):
        s, op = tok.string, tok.type == tokenize.OP
        if op and s in _OPEN:
            depth += 1
        elif op and s in _CLOSE:
            depth = max(0, depth - 1)
        elif depth == 0:
            if op and s == ";":
                flush("semi")
                continue
            if tok.type == tokenize.NAME and cur and not pending and _starts_statement(toks, i):
                flush("semi")
            if tok.type == tokenize.NAME and s == "lambda":
                lambdas += 1
            elif op and s == ":" and lambdas:
                lambdas -= 1
            elif op and s == ":" and pending:
                cur.append(tok)
                flush("colon")
                continue
        if not cur and tok.type == tokenize.NAME:
            word = toks[i + 1].string if s == "async" and i + 1 < len(toks) else s
            pending = word if word in _HEADERS else ""
        cur.append(tok)
    flush("semi")
    return pieces


def _starts_statement(toks: Sequence[tokenize.TokenInfo], i: int) -> bool:
    s = toks[i].string
    nxt = toks[i + 1].string if i + 1 < len(toks) else ""
    if toks[i - 1].string == "async":
        return False
    if s in _STARTERS:
        return True
    if s == "async":
        return nxt in ("def", "for", "with")
    if s == "else":
        return nxt == ":"
    if s != "if":
        return False
    depth, lambdas = 0, 0  # a header ``if`` reaches its ':' before any ``else`` (a ternary does not)
    for tok in toks[i + 1 :]:
        t = tok.string
        if tok.type == tokenize.OP and t in _OPEN:
            depth += 1
        elif tok.type == tokenize.OP and t in _CLOSE:
            depth -= 1
        elif depth == 0 and t == "lambda":
            lambdas += 1
        elif depth == 0 and t == ":":
            if not lambdas:
                return True
            lambdas -= 1
        elif depth == 0 and t in ("else", ";"):
            return False
    return False


def _place(pieces: Sequence[_Piece], *, dead_code: bool, scoped: bool) -> list[tuple[int, _Piece]] | None:
    """Each piece with its depth, or None when a clause has no block to go with."""
    levels: list[_Level] = []  # levels[i]: the last statement at depth i (all but the last are headers)
    lines: list[tuple[int, int]] = []  # (column, depth) of the real lines so far, as an indent stack
    placed: list[tuple[int, _Piece]] = []
    for p in pieces:
        prev = placed[-1] if placed else None
        column = p.column if p.sep == "line" else None
        if p.keyword in _CLAUSES:
            level = _opener(levels, p.keyword, column)
            if level is None:
                return None
        elif prev is None:
            level = 0
        elif p.sep == "colon" or (p.sep == "line" and prev[1].keyword):
            level = prev[0] + 1  # a header's body (on its line, or on the next line)
        elif p.sep == "semi":
            level = prev[0]
            if dead_code and prev[1].word in _TERMINAL and level > 0:
                level -= 1
            home = {"return": "def", "def": "class"}.get(p.keyword or p.word, "")
            homes = [d for d in range(level) if levels[d].block == home]
            if scoped and homes:
                level = homes[-1] + 1
        else:
            while lines and lines[-1][0] > p.column:
                lines.pop()
            level = 0 if not lines else lines[-1][1] + (1 if lines[-1][0] < p.column else 0)
        if level > len(levels):
            return None
        if column is not None:
            while lines and lines[-1][0] >= column:
                lines.pop()
            lines.append((column, level))
        if p.keyword in _CLAUSES:
            levels[level:] = [_Level(levels[level].block, p.keyword, column)]
        else:
            levels[level:] = [_Level(p.keyword, p.keyword, column)]
        placed.append((level, p))
    return placed


def _opener(levels: Sequence[_Level], clause: str, column: int | None) -> int | None:
    """The depth of the block ``clause`` goes with (see the module docstring), or None."""
    fits = [
        d for d in range(len(levels) - 1, -1, -1) if (levels[d].block, levels[d].last) in _FOLLOWS[clause]
    ]
    same_line = [d for d in fits if column is not None and levels[d].column == column]
    ifs = [d for d in fits if levels[d].block == "if"]
    best = same_line or ifs or fits
    return best[0] if best else None


def _text(code: str, piece: _Piece) -> str:
    lines = code.splitlines(keepends=True)
    (r0, c0), (r1, c1) = piece.tokens[0].start, piece.tokens[-1].end
    if r0 == r1:
        return lines[r0 - 1][c0:c1]
    return lines[r0 - 1][c0:] + "".join(lines[r0 : r1 - 1]) + lines[r1 - 1][:c1]


class ReflowingEnvironment(Environment):
    """A coding environment whose submitted code, when it does not parse but ``repair`` makes
    it parse (a JSON tail dropped, or the code re-flowed), is run repaired; the observation
    starts with a note that says so, and the state's data keeps the code as submitted under
    ``reflowed_from``. Everything else is ``inner``'s."""

    def __init__(self, inner: Environment, action: str = "submit_code") -> None:
        self.inner, self.action = inner, action

    def execute(self, action: Action, state: State) -> State:
        code = action.params.get("code") if action.name == self.action else None
        repaired = repair(code) if isinstance(code, str) else None
        if code is None or repaired is None:
            return self.inner.execute(action, state)
        fixed, what = repaired
        after = self.inner.execute(replace(action, params={**action.params, "code": fixed}), state)
        note = f"NOTE: the submitted code did not parse; {what}, and that ran."
        return State({**after.data, "reflowed_from": code}, f"{note}\n{after.summary}")

    def reset(self) -> State:
        return self.inner.reset()

    def is_terminal(self, state: State) -> bool:
        return self.inner.is_terminal(state)

    def outcome(self, state: State) -> float | None:
        return self.inner.outcome(state)

    def actions(self, state: State) -> Sequence[ActionSpec] | None:
        return self.inner.actions(state)

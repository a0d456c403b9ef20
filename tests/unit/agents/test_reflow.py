"""``reflow``: one-line Python into lines that parse and do what the one line meant (every case
is run); valid code is never touched; model text never makes it raise. ``ReflowingEnvironment``
and the Team's coder: a one-line fibonacci passes the tester's tests because it was re-flowed,
and the step's observation says so."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from _agent_models import Fake, done
from hypothesis import given, settings
from hypothesis import strategies as st

import purpose_agent as pa
from purpose_agent.agents._reflow import ReflowingEnvironment, reflow
from purpose_agent.core.environment import ActionSpec, SimpleEnvironment
from purpose_agent.core.types import Action, State
from purpose_agent.envs.coding import CodingEnvironment, CodingTask


def _run(code: str) -> dict[str, Any]:
    fixed = reflow(code)
    assert fixed is not None, code
    ast.parse(fixed)
    assert "\n" in fixed.strip()
    namespace: dict[str, Any] = {}
    exec(compile(fixed, "<reflowed>", "exec"), namespace)
    return namespace


def _fib(k: int) -> int:
    a, b = 0, 1
    for _ in range(k):
        a, b = b, a + b
    return a


FIB_ONE_LINERS = [
    "def f(n): if n <= 1: return n else: return f(n-1) + f(n-2)",
    "def f(n): if n < 2: return n; return f(n-1)+f(n-2)",
    "def f(n): a, b = 0, 1; for _ in range(n): a, b = b, a + b; return a",
    "def f(n: int) -> int: if n <= 1: return n else: return f(n - 1) + f(n - 2)",
    'def f(n: int) -> int: """Fib: the n-th one; f(0) == 0."""; if n < 2: return n; return f(n-1) + f(n-2)',
    'def f(n): """Return the n-th Fibonacci number: f(0) = 0, f(1) = 1.""" if n <= 1: return n else: return f(n-1) + f(n-2)',
    "def f(n): if n < 0: raise ValueError('n: negative; no'); a, b = 0, 1; i = 0; while i < n: a, b = b, a + b; i += 1; return a",
    "def f(n): if n == 0: return 0 elif n == 1: return 1 else: return f(n-1) + f(n-2)",
    "def f(n): if n <= 1: return n; else: return f(n-1) + f(n-2)\n",  # the coder's trailing newline
    "def f(n): memo = {0: 0, 1: 1}; for i in range(2, n + 1): memo[i] = memo[i-1] + memo[i-2]; return memo[n]",
    "def f(n): seq = [0, 1]; for _ in range(n): seq.append(seq[-1] + seq[-2]); return seq[n]",
    "def f(n): x = 0 if n else 1; if n < 2: return n; return f(n-1) + f(n-2) if n else x",  # a ternary is not split
    "def f(n):\n    if n < 2: return n else: return f(n-1) + f(n-2)",  # half flattened
    "def f(n): if n <= 1: return n\n    else: return f(n-1) + f(n-2)\n",
    "def f(n): a, b = 0, 1\n    for _ in range(n): a, b = b, a + b\n    return a",
    "    def f(n): if n < 2: return n; return f(n-1) + f(n-2)",  # indented as a whole
    "def f(n):    if n <= 1:        return n    else:        return f(n-1) + f(n-2)",  # lost newlines
    "def f(n): if n <= 0: return 0 elif n == 1: return 1 else: a, b = 0, 1; for _ in range(2, n+1): a, b = b, a+b; return b",
    "def f(n): a, b = 0, 1; for _ in range(n): a, b = b, a + b; return a; check = f(10)",  # back at the top
    "def f(n): # fib\n    if n < 2: return n else: return f(n-1)+f(n-2)",
]


@pytest.mark.parametrize("code", FIB_ONE_LINERS)
def test_one_line_fibonacci_variants_become_a_correct_fibonacci(code: str) -> None:
    f = _run(code)["f"]
    assert [f(k) for k in range(11)] == [_fib(k) for k in range(11)]


def test_the_quick_start_one_liner_is_laid_out_as_a_person_would() -> None:
    code = "def fibonacci(n): if n <= 1: return n else: return fibonacci(n-1) + fibonacci(n-2)"
    assert reflow(code) == (
        "def fibonacci(n):\n"
        "    if n <= 1:\n"
        "        return n\n"
        "    else:\n"
        "        return fibonacci(n-1) + fibonacci(n-2)\n"
    )


@pytest.mark.parametrize(
    ("code", "calls"),
    [
        # nested loops and ifs; a return after ';' ends the function, after the loops
        (
            "def f(xs): total = 0; for x in xs: if x > 0: total += x elif x < -5: total -= 1 else: continue; return total",
            [(((1, -2, 3, -9),), 3), (((),), 0)],
        ),
        (
            "def f(xs): for i, x in enumerate(xs): if x == 'a:b': return i; return -1",
            [((["x", "a:b"],), 1), ((["q"],), -1)],
        ),
        # a statement after break/continue closes the if, not the loop
        (
            "def f(n): out = []; for i in range(n): if i == 2: continue; out.append(i); return out",
            [((4,), [0, 1, 3])],
        ),
        (
            "def f(n): i = 0; while True: i += 1; if i >= n: break; return i",
            [((3,), 3), ((0,), 1)],
        ),
        # try / except / else / finally
        (
            "def f(x): try: v = int(x) except ValueError: v = -1 else: v += 1 finally: pass; return v",
            [(("41",), 42), (("x",), -1)],
        ),
        ("def f(x): try: y = int(x); return y except: return 0", [(("7",), 7), (("?",), 0)]),
        (
            "def f(x): try: return int(x); except (TypeError, ValueError) as e: return str(type(e).__name__)",
            [(("3",), 3), ((None,), "TypeError")],
        ),
        # strings, slices, dicts, lambdas, walrus and annotations keep their ':' and ';'
        (
            "def f(s: str) -> dict[str, int]: d = {'a:b': 1, 'c;d': 2}; g = lambda k: d.get(k, 0); if s: return {s[1:]: g(s)}",
            [(("a:b",), {":b": 1}), (("c;d",), {";d": 2})],
        ),
        (
            "def f(xs: list[int]) -> int: if (n := len(xs)) > 2: return n; total: int = sum(xs[::2]); return total",
            [(([1, 2, 3, 4],), 4), (([5, 6],), 5)],
        ),
        # an else goes with the if, not with an enclosing loop
        (
            "def f(xs): out = []; for x in xs: if x % 2: out.append(x) else: out.append(-x); return out",
            [(([1, 2, 3],), [1, -2, 3])],
        ),
        # an else after 'return x;' still goes with the if; a for-else when no if is open
        (
            "def f(xs): for x in xs: if x < 0: return x; else: return None",
            [(([-1, 2],), -1), (([1, -2],), None)],
        ),
        ("def f(xs): n = 0; for x in xs: n += x else: n = -n; return n", [(([1, 2],), -3), (([],), 0)]),
        # a nested function: the statement after its return is back in the outer one
        ("def f(k): def add(x): return x + k; return add(10)", [((5,), 15)]),
        # with, async def and a decorator
        (
            "import functools; @functools.lru_cache(None) def f(n): with open(__file__ if False else '/dev/null') as fh: fh.read(); return n * 2",
            [((4,), 8)],
        ),
    ],
)
def test_blocks_clauses_and_tokens(code: str, calls: list[tuple[tuple[Any, ...], Any]]) -> None:
    f = _run(code)["f"]
    for args, expected in calls:
        assert f(*args) == expected, (code, args)


def test_a_class_on_one_line() -> None:
    ns = _run(
        "class Counter: def __init__(self): self.n = 0; def up(self) -> int: self.n += 1; return self.n"
    )
    c = ns["Counter"]()
    assert (c.up(), c.up()) == (1, 2)


def test_async_def_and_top_level_statements() -> None:
    ns = _run("import asyncio; async def f(n): await asyncio.sleep(0); return n + 1; x = 1; if x: y = 2")
    import asyncio

    assert asyncio.run(ns["f"](1)) == 2 and ns["y"] == 2


@pytest.mark.parametrize(
    "code",
    [
        "def f(n):\n    return n\n",
        "x = 1; y = 2",
        "if x: a = 1; b = 2",  # Python's own reading stands when the code parses
        "def f(n): return n if n < 2 else f(n-1)",
        "def f(n):\n    if n < 2: return n; return 0\n",  # parses (wrongly, perhaps): never touched
        "",
        "# just a comment",
    ],
)
def test_code_that_parses_is_returned_unchanged(code: str) -> None:
    assert reflow(code) is code


@pytest.mark.parametrize(
    "code",
    [
        "def f(n): return (n +",  # an open bracket
        "def f(n): return 'unterminated",
        "else: return 1",  # a clause with nothing to go with
        "def f(n): return n\n  x = 1\n y = 2",  # inconsistent dedent
        "def f(n) if n: return n",
        "Sure! Here is the code: def f(n): return n",
        "```python\ndef f(n): if n: return n\n```",
        "def f(n):",
        "\x00\x01",
        "def f(n): if n < 2: return n else return f(n-1)",
    ],
)
def test_what_cannot_be_made_to_parse_gives_none(code: str) -> None:
    assert reflow(code) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("deif():;= \n\t'\"#[]{}\\ abnrtuxl0123+-<>")), max_size=80))
def test_any_text_gives_none_or_code_that_parses(text: str) -> None:
    out = reflow(text)
    if out is not None:
        ast.parse(out)


_EXPR = st.sampled_from(
    ["x", "x + 1", "'a:b;c'", "[1, 2][0:1]", "{1: 2}", "(lambda y: y)(x)", "x if x else 0"]
)
_SIMPLE = st.builds(lambda e: f"x = {e}", _EXPR) | st.sampled_from(["pass", "x += 1", "print(x)"])


def _blocks(depth: int) -> st.SearchStrategy[list[str]]:
    simple = st.lists(_SIMPLE, min_size=1, max_size=3)
    if depth == 0:
        return simple
    inner = _blocks(depth - 1)

    def compound(head: str, body: list[str]) -> list[str]:
        return [head, *("    " + line for line in body)]

    heads = st.sampled_from(
        ["if x:", "for x in range(2):", "while False:", "with open('/dev/null'):", "try:"]
    )

    def block(head: str, body: list[str], tail: list[str]) -> list[str]:
        out = compound(head, body)
        if head == "try:":
            out += compound("except Exception:", tail)
        elif head == "if x:":
            out += compound("else:", tail)
        return out

    one = st.builds(block, heads, inner, inner) | simple
    return st.lists(one, min_size=1, max_size=3).map(lambda parts: [line for p in parts for line in p])


@settings(max_examples=150, deadline=None)
@given(_blocks(3))
def test_valid_multi_line_programs_are_never_touched(lines: list[str]) -> None:
    code = "def f(x):\n" + "".join(f"    {line}\n" for line in lines)
    ast.parse(code)
    assert reflow(code) is code


# ---------------------------------------------------------------------------------------- wiring
class _Recorder(SimpleEnvironment):
    def __init__(self) -> None:
        super().__init__(initial_state=State({"n": 0}, "start"), actions=[ActionSpec("submit_code")])
        self.seen: list[str] = []

    def execute(self, action: Action, state: State) -> State:
        self.seen.append(str(action.params.get("code")))
        return State({"code": action.params.get("code")}, "ran")

    def outcome(self, state: State) -> float | None:
        return 0.5


def test_the_environment_runs_the_reflowed_code_and_says_so() -> None:
    inner = _Recorder()
    env = ReflowingEnvironment(inner)
    one_line = "def f(n): if n < 2: return n; return f(n-1) + f(n-2)"
    after = env.execute(Action("submit_code", {"code": one_line}), env.reset())
    assert inner.seen == [reflow(one_line)] and after.data["code"] == reflow(one_line)
    assert after.data["reflowed_from"] == one_line
    assert after.summary.startswith(
        "NOTE: the submitted code did not parse; it was re-flowed from one-line code into 4 lines"
    )
    assert after.summary.endswith("ran")
    # valid code, code it cannot fix, and other actions go through as they are
    for action in (
        Action("submit_code", {"code": "def f(n):\n    return n\n"}),
        Action("submit_code", {"code": "def f(n): return ("}),
        Action("submit_code", {"code": 3}),
        Action("other", {"code": one_line}),
    ):
        out = env.execute(action, env.reset())
        assert out.summary == "ran" and "reflowed_from" not in out.data
    assert inner.seen[1:] == ["def f(n):\n    return n\n", "def f(n): return (", "3", one_line]
    assert env.reset() == inner.reset() and env.outcome(after) == 0.5 and not env.is_terminal(after)
    assert [a.name for a in env.actions(after) or []] == ["submit_code"]


def test_a_json_tail_left_in_the_code_is_dropped_and_the_note_says_so() -> None:
    """The real 1.5B coder ended its code with the JSON's own closing braces (``...)}}``, then
    ``...)}\n}}``); dropping a tail of ``}``/``]`` that makes it parse is the whole repair."""
    from purpose_agent.agents._reflow import repair

    body = "def f(n):  # the n-th number\n    if n < 2:\n        return n\n    return f(n-1) + f(n-2)"
    for tail in ("}}", "}\n}}", " ]}"):
        fixed, what = repair(body + tail) or ("", "")
        assert fixed == body + "\n" and _run(fixed)["f"](10) == 55
        assert (
            what
            == f"a trailing '{tail.replace(chr(10), '').replace(' ', '')}' (left over from the JSON) was dropped"
        )
    inner = _Recorder()
    after = ReflowingEnvironment(inner).execute(Action("submit_code", {"code": body + "}}"}), State())
    assert inner.seen == [body + "\n"] and after.data["reflowed_from"] == body + "}}"
    assert after.summary.startswith("NOTE: the submitted code did not parse; a trailing '}}' (left over")
    # a brace the code needs is not a tail; code that parses, or cannot be fixed, is left alone
    assert repair("d = {1: 2}") is None and repair("def f(n): return (}") is None
    assert repair("x = {1: 2") is None


ONE_LINE_FIB = "def fibonacci(n): if n <= 1: return n else: return fibonacci(n-1) + fibonacci(n-2)"
TESTS = ["fibonacci(0) == 0", "fibonacci(1) == 1", "fibonacci(10) == 55"]


def test_the_coding_environment_itself_still_measures_the_raw_code() -> None:
    env = CodingEnvironment(CodingTask("t", "fib", "fibonacci", tuple(TESTS)))
    after = env.execute(Action("submit_code", {"code": ONE_LINE_FIB}), env.reset())
    assert after.data["passed"] == 0 and "SyntaxError" in str(after.data["failures"])


def _one_line_coder(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
    if "You are tester" in prompt:
        return {"thought": "tests", "action": "submit_tests", "params": {"tests": TESTS}}
    if "You are coder" in prompt and turn == 0:
        return {"thought": "write it", "action": "submit_code", "params": {"code": ONE_LINE_FIB + "\n"}}
    return done(ONE_LINE_FIB if "You are architect" in prompt else "submitted")


def test_a_team_whose_coder_writes_one_line_passes_because_of_the_reflow(tmp_path: Path) -> None:
    fake = Fake(_one_line_coder)
    team = pa.purpose(
        "Help me write Python code",
        model=fake.model,
        memory=pa.MemoryStore(tmp_path / "m.sqlite", embedder=None),
    )
    result = team.run("Write a fibonacci function")
    assert result.success and result.decided_by == "tests" and result.tests_passed == 3  # 0/3 unwired
    assert result.output == reflow(ONE_LINE_FIB) and result.output.count("\n") == 5
    coder = result.turns[-1]
    assert coder.agent == "coder" and coder.trace_path
    events = [json.loads(line) for line in Path(coder.trace_path).read_text().splitlines()]
    seen = [str(e) for e in events if "re-flowed from one-line code into 5 lines" in str(e)]
    assert seen, "the step's observation says the code was re-flowed"

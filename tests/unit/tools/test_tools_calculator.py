"""CalculatorTool: arithmetic only, bounded, fuzzed with hypothesis."""

from __future__ import annotations

import ast
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from purpose_agent.tools import CalculatorTool
from purpose_agent.tools.calculator import CONSTANTS, FUNCTIONS

CALC = CalculatorTool()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("(2 + 3) * 4 ** 2 / sqrt(16)", "20"),
        ("17 // 5 + 17 % 5", "5"),
        ("-2 ** 2", "-4"),
        ("2^10", "1024"),
        ("round(pi, 3)", "3.142"),
        ("max(1, 5, 3) - min(4, 2)", "3"),
        ("log(8, 2)", "3"),
        ("abs(-7.5)", "7.5"),
        ("10 ** 100", str(10**100)),
    ],
)
def test_arithmetic(expr: str, expected: str) -> None:
    r = CALC.run(expression=expr)
    assert r.ok, r.error
    assert r.output == expected


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("9**9**9**9", "exponent too large"),
        ("2 ** 100000", "exponent too large"),
        ("7 ** 5000", "result too large"),
        ("(10 ** 999) * (10 ** 999)", "result too large"),
        ("1 / 0", "division by zero"),
        ("sqrt(-1)", "math error"),
        ("exp(1000)", "result too large"),
        ("__import__('os').system('echo pwned')", "calling Attribute is not allowed"),
        ("__import__('os')", "unknown function '__import__'"),
        ("().__class__.__bases__", "not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("x", "unknown name 'x'"),
        ("lambda: 1", "not allowed"),
        ("[1, 2]", "not allowed"),
        ("'abc' * 3", "only numbers"),
        ("True + 1", "only numbers"),
        ("1 if 1 else 2", "not allowed"),
        ("1" + "+1" * 400, "too long"),
        ("-" * 300 + "1", "too complex"),
        ("2 +", "not a valid arithmetic expression"),
        ("", "empty"),
        ("(-8) ** (1/3)", "fractional power"),
        ("round(1.5, 100)", "round() digits"),
    ],
)
def test_refusals_are_clear(expr: str, message: str) -> None:
    start = time.perf_counter()
    r = CALC.run(expression=expr)
    assert not r.ok
    assert message in r.error, r.error
    assert r.error.startswith("calculator: ")
    assert time.perf_counter() - start < 1.0


def _only_arithmetic(text: str) -> bool:
    """What an accepted expression may contain (checked independently of the evaluator)."""
    tree = ast.parse(text.strip().replace("^", "**").replace("×", "*").replace("÷", "/"), mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Call, ast.Load)
    ops = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.UAdd, ast.USub)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in CONSTANTS and node.id not in FUNCTIONS:
            return False
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float):
            return False
        if not isinstance(node, allowed + ops):
            return False
    return True


_ATOMS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.sampled_from(["pi", "e", "9", "99", "999999"]),
)
_OPS = st.sampled_from(["+", "-", "*", "/", "//", "%", "**", "^"])


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3 or draw(st.booleans()):
        return draw(_ATOMS)
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return f"({draw(expressions(depth + 1))} {draw(_OPS)} {draw(expressions(depth + 1))})"
    if kind == 1:
        return f"-{draw(expressions(depth + 1))}"
    if kind == 2:
        fn = draw(st.sampled_from(sorted(FUNCTIONS)))
        n = draw(st.integers(1, 2))
        return f"{fn}({', '.join(draw(expressions(depth + 1)) for _ in range(n))})"
    return f"{draw(expressions(depth + 1))} ** {draw(expressions(depth + 1))}"


@settings(max_examples=400, deadline=500)
@given(expressions())
def test_fuzz_arithmetic_is_bounded_and_never_raises(expr: str) -> None:
    r = CALC.run(expression=expr)
    if r.ok:
        assert isinstance(r.data, int | float)
        assert not isinstance(r.data, float) or math.isfinite(r.data)
        assert len(r.output) <= 1100
    else:
        assert r.error and r.error.startswith("calculator: ")


_HOSTILE = st.text(
    alphabet=st.sampled_from(list("0123456789+-*/%().,^ eEjxab_'\"[]{}:;=<>!~&|@lambdaimportosn\\\n")),
    max_size=120,
)


@settings(max_examples=600, deadline=500)
@given(st.one_of(_HOSTILE, st.text(max_size=80)))
def test_fuzz_random_text_only_ever_evaluates_arithmetic(text: str) -> None:
    r = CALC.run(expression=text)
    if r.ok:
        assert _only_arithmetic(text), f"accepted non-arithmetic input {text!r}"
        assert isinstance(r.data, int | float) and not isinstance(r.data, bool)
    else:
        assert isinstance(r.error, str) and r.error

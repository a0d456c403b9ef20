"""PythonExecTool prints the value of a trailing expression, like a REPL, and says so when a
program printed nothing (small models often forget print)."""

from __future__ import annotations

import pytest

import purpose_agent as pa
from purpose_agent.tools.python_exec import echo_last_expression


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("print(3)", "print(3)"),
        ("import os", "import os"),
        ("def f(:", "def f(:"),
        ("x = 1; x + 1", "x = 1; x + 1"),  # not at the start of a line: left alone
        ("s = 2 * 3", "s = 2 * 3\nprint('s =', repr(s))\n"),
        ("a, b = 1, 2", "a, b = 1, 2"),
        ("1 + 1", "if (_pa_value := (1 + 1)) is not None: print(repr(_pa_value))\n"),
    ],
)
def test_echo_rewrite(code: str, expected: str) -> None:
    assert echo_last_expression(code) == expected


def test_multiline_expression_keeps_line_numbers() -> None:
    code = "x = [\n  1,\n  2]\nsum(\n  x\n)\n"
    out = echo_last_expression(code)
    assert out.splitlines()[:3] == code.splitlines()[:3]
    assert len(out.splitlines()) == len(code.splitlines())


def test_trailing_expression_is_printed_and_silence_is_explained() -> None:
    tool = pa.PythonExecTool(timeout=10)
    assert tool.run(code="sum(i * i for i in range(1, 51))").output.strip() == "42925"
    assert tool.run(code="[].append(1)").output.startswith("(the program printed nothing")
    assert tool.run(code="S = sum(i**2 for i in range(1, 51))").output.strip() == "S = 42925"
    quiet = tool.run(code="x = 5\nx += 1")
    assert quiet.ok and quiet.data == "" and "printed nothing" in quiet.output
    err = tool.run(code="x = 1\ny = 2\n1 / 0")
    assert not err.ok and "line 3" in (err.error or "") and "ZeroDivisionError" in (err.error or "")
    assert pa.PythonExecTool(echo_last=False).run(code="1 + 1").data == ""


def test_literal_line_breaks_are_made_real_only_when_that_is_what_makes_it_parse() -> None:
    """The 1.5B model sent run_python "import sympy as sp\\nm = ..." with a literal backslash-n
    for each line break (SyntaxError: unexpected character after line continuation character)."""
    from purpose_agent.tools.python_exec import LINE_BREAKS_NOTE, real_line_breaks

    one_line = "x = 6\\ny = 7\\nprint(x * y)"
    assert real_line_breaks(one_line) == "x = 6\ny = 7\nprint(x * y)"
    assert real_line_breaks('print("a\\nb")') is None  # it parses: the \n is the string's own
    assert real_line_breaks("x = (\\n") is None  # broken either way: left as written
    assert real_line_breaks("def f(:") is None
    tool = pa.PythonExecTool(timeout=10)
    ran = tool.run(code=one_line)
    assert ran.ok and ran.output == f"{LINE_BREAKS_NOTE}\n42\n" and ran.meta["line_breaks_repaired"]
    plain = tool.run(code='print("a\\nb")')
    assert plain.ok and plain.output == "a\nb\n" and "line_breaks_repaired" not in plain.meta
    failed = tool.run(code="x = 1\\n1 / 0")
    assert not failed.ok and (failed.error or "").startswith(LINE_BREAKS_NOTE)
    assert "ZeroDivisionError" in (failed.error or "")

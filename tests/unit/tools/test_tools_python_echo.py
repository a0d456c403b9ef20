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

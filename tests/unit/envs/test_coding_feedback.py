"""What the coding environment tells the actor about code that does not load."""

from __future__ import annotations

from _double_task import TASK
from purpose_agent.core.types import Action
from purpose_agent.envs.coding import ONE_LINE_HINT, WRITE_CODE, CodingEnvironment


def _submit(code: str) -> str:
    env = CodingEnvironment(TASK)
    return env.execute(Action(WRITE_CODE.name, {"code": code}), env.reset()).summary


def test_code_written_on_one_line_is_told_to_use_lines_and_indents() -> None:
    # what the 1.5B model submitted in the quick start: a whole function on one line
    summary = _submit("def double(x): if x > 0: return 2 * x else: return x + x")
    assert "Tests: 0/2 passed." in summary and "SyntaxError" in summary
    assert f"HINT {ONE_LINE_HINT}" in summary


def test_other_load_errors_get_no_hint() -> None:
    assert "HINT" not in _submit("def double(x):\n    return 2 * x +\n")  # on several lines
    assert "HINT" not in _submit("return_value = undefined_name")  # one line, but a NameError
    assert "HINT" not in _submit("def double(x): return 2 * x")  # one line that parses and passes

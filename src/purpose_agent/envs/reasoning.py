"""reasoning-gym task families as one-answer Environments with the family's own scorer.

Needs the ``bench`` extra (``reasoning-gym``); every task is generated locally from a seed.
The actor answers with DONE(answer); the family scorer is the ground truth. After a wrong
answer the state shows the expected one, in its text and as ``data["expected"]`` when the
family's scorer accepts it (a label to learn from in training: a run that had found it but
answered in another form becomes a corrected worked example; the run has already ended, so it
cannot help the run itself).

With ``python=True`` the actor may also run Python (``run_python``, in the sandbox of
``PythonExecTool``) and read what it printed before it answers: a small model that computes
badly in its head can compute with code, if it thinks of it. Whether it does, and prints the
result, and answers in the form asked, is what a worked example can teach.
"""

from __future__ import annotations

from collections.abc import Sequence
from random import Random
from typing import Any

from purpose_agent.core.environment import ActionSpec, Environment
from purpose_agent.core.types import Action, State

RUN_PYTHON = "run_python"
#: what the question shows of a program's output, and of the program itself
OUTPUT_CHARS = 400
CODE_CHARS = 600


def _rg() -> Any:
    try:
        import reasoning_gym
    except ImportError as exc:
        raise ImportError("reasoning-gym needs the bench extra: pip install 'purpose-agent[bench]'") from exc
    return reasoning_gym


def make_entry(family: str, index: int, *, template: int | None = None) -> tuple[dict[str, Any], Any]:
    """One generated task and its dataset (for scoring). ``template`` picks a gsm_symbolic
    template (generator) directly, for splits by template."""
    ds = _rg().create_dataset(family, seed=index, size=1)
    if template is None:
        return dict(ds[0]), ds
    gens = ds.generators
    gen = gens[sorted(gens)[template]] if isinstance(gens, dict) else gens[template]
    entry = dict(gen(Random(index), ds.config.difficulty))
    entry["question"] += " Give the result as your final answer. Do not include units."
    return entry, ds


def n_templates(family: str) -> int:
    return len(_rg().create_dataset(family, seed=0, size=1).generators)


class ReasoningEnvironment(Environment):
    """A question answered once with DONE(answer). Ground truth: the family's score (0..1)."""

    def __init__(
        self,
        family: str,
        index: int,
        *,
        template: int | None = None,
        python: bool = False,
        timeout: float = 5.0,
    ) -> None:
        self.family = family
        self.entry, self._dataset = make_entry(family, index, template=template)
        self._tool: Any = None
        if python:
            from purpose_agent.tools.python_exec import PythonExecTool

            self._tool = PythonExecTool(timeout=timeout, memory_mb=256, name=RUN_PYTHON)

    @property
    def question(self) -> str:
        return str(self.entry["question"])

    def reset(self) -> State:
        return State({"answer": None, "score": None}, f"Question: {self.question}\nNo answer given yet.")

    def actions(self, state: State) -> Sequence[ActionSpec]:
        if self._tool is None:
            return []  # only DONE(answer)
        return [ActionSpec(RUN_PYTHON, self._tool.description, self._tool.parameters)]

    def execute(self, action: Action, state: State) -> State:
        if action.name == RUN_PYTHON and self._tool is not None:
            return self._run_python(action, state)
        if not action.is_done:
            return state
        answer = str(action.params.get("answer", "")).strip()
        score = float(self._dataset.score_answer(answer=answer, entry=self.entry))
        data: dict[str, Any] = {"answer": answer, "score": score}
        if score >= 1.0:
            verdict = "Correct."
        else:
            verdict = f"Incorrect. The expected answer was {self.entry['answer']}."
            expected = str(self.entry["answer"])
            if float(self._dataset.score_answer(answer=expected, entry=self.entry)) >= 1.0:
                data["expected"] = expected  # the answer the checker accepts (a corrected worked example)
        return State(data, f"Question: {self.question}\nAnswer: {answer}\n{verdict}")

    def _run_python(self, action: Action, state: State) -> State:
        code = str(action.params.get("code", ""))
        result = self._tool.run(code=code)
        shown = (result.output.strip() or "(nothing)") if result.ok else f"Error: {result.error}"
        if len(shown) > OUTPUT_CHARS:
            shown = shown[:OUTPUT_CHARS] + " ..."
        runs = int(state.data.get("runs", 0)) + 1
        text = (
            f"Question: {self.question}\nYou ran:\n{code[:CODE_CHARS]}\nIt printed:\n{shown}\n"
            "No answer given yet."
        )
        return State({"answer": None, "score": None, "runs": runs, "printed": shown}, text)

    def is_terminal(self, state: State) -> bool:
        return state.data.get("score") is not None

    def outcome(self, state: State) -> float | None:
        """1.0 for a right answer, else 0.0, including before any answer: an unanswered
        question is known to be unsolved, so a critic's Φ can never end a run as solved
        (after a Python run that printed the result, but before the answer)."""
        score = state.data.get("score")
        return 1.0 if score is not None and score >= 1.0 else 0.0

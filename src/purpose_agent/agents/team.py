"""``purpose(description)`` builds a ``Team`` of Sparks that share one memory space.

    team = pa.purpose("Help me write Python code")      # architect + coder + tester
    print(team.run("Write a fibonacci function"))       # tests written, then passed in the sandbox
    team.teach("Always add type hints")                 # scanned, then in the next run's prompt
    print(team.status())                                # lessons, runs, success rate, cost

Team kinds (``purpose_agent.agents._roles``): code → architect + coder + tester; research →
researcher + analyst; writing → writer + editor; data → analyst + reporter; anything else → a
general assistant. The kind is chosen by keywords; when they tie, or none matches, the model
chooses among the candidates with a constrained (JSON schema ``enum``) reply.

A code run: the architect plans, the tester writes assert tests from the plan, the coder writes
code in a ``CodingEnvironment`` that runs those tests in the sandbox after every submission
(a submission that does not parse, such as a function written on one line, runs re-flowed into
lines when that makes it parse, and its observation says so: ``purpose_agent.agents._reflow``).
Passing tests are the ground truth of success (and what the gate learns from). When the coder's
prompt held lessons a person taught (``teach``), the coder gets one more turn that names them and
the code to revise; the revision replaces the code only if it parses and its tests pass no fewer
than before. Other kinds hand
each role's output to the next; the critic's Φ of the last role decides success.
"""

from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purpose_agent.agents._reflow import ReflowingEnvironment, parses
from purpose_agent.agents._roles import KINDS, ROLES, Choice, open_store, select_kind
from purpose_agent.agents.result import Cost, RunResult, Turn
from purpose_agent.agents.spark import Spark, teach
from purpose_agent.core.environment import ActionSpec, SimpleEnvironment
from purpose_agent.core.types import Action, State
from purpose_agent.errors import ConfigurationError
from purpose_agent.memory.ci import Decision
from purpose_agent.memory.prompt import is_taught
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.base import Backend, run_sync
from purpose_agent.models.registry import resolve_backend

__all__ = ["Team", "TeamStatus", "parse_tests", "purpose"]

MAX_TESTS = 12

SUBMIT_TESTS = ActionSpec(
    "submit_tests",
    "Submit the unit tests: each one Python boolean expression that calls the function, e.g. f(2) == 3.",
    {
        "type": "object",
        "properties": {"tests": {"type": "array", "items": {"type": "string"}}},
        "required": ["tests"],
    },
)


class TestsEnvironment(SimpleEnvironment):
    """Where the tester works: one ``submit_tests`` action (a list of expressions), then done."""

    def __init__(self) -> None:
        super().__init__(initial_state=State({}, "No tests written yet."), actions=[SUBMIT_TESTS])

    def execute(self, action: Action, state: State) -> State:
        if action.name != SUBMIT_TESTS.name:
            return super().execute(action, state)
        raw = action.params.get("tests")
        items = [str(t) for t in raw] if isinstance(raw, list) else [str(raw or "")]
        tests = parse_tests("\n".join(t if t.lstrip().startswith("assert") else f"assert {t}" for t in items))
        answer = "\n".join(f"assert {t}" for t in tests)
        return State({"tests": tests, "answer": answer}, f"{len(tests)} tests submitted:\n{answer}")

    def is_terminal(self, state: State) -> bool:
        return bool(state.data.get("tests"))


def parse_tests(text: str) -> list[str]:
    """The test expressions in a tester's answer: ``assert x == y`` statements (or bare
    comparisons), one per line or as a block; anything else is skipped."""
    body = re.sub(r"```[a-zA-Z]*", "", text).strip()
    found: list[str] = []
    try:
        nodes: list[ast.stmt] = ast.parse(body).body
    except SyntaxError:
        nodes = []
        for line in body.splitlines():
            try:
                nodes += ast.parse(line.strip()).body
            except SyntaxError:
                continue
    for node in nodes:
        if isinstance(node, ast.Assert):
            found.append(ast.unparse(node.test))
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Compare):
            found.append(ast.unparse(node.value))
    return list(dict.fromkeys(found))[:MAX_TESTS]


#: a plan line that is Python, not prose: a statement keyword, a decorator, an assignment, a fence
_CODE_LINE = re.compile(
    r"^\s*(?:(?:def|class|return|if|elif|else|for|while|import|from|try|except|finally|with|raise"
    r"|assert|pass|yield|lambda)\b|@|[A-Za-z_][\w.]*(?:\[[^\]]*\])?(?:\s*,\s*[A-Za-z_][\w.]*)*"
    r"\s*[-+*/%]?=(?!=))"
)
_SIGNATURE = re.compile(r"^\s*def\s+(\w+\s*\([^)]*\)(?:\s*->\s*[^:#]+)?)")


def plain_plan(text: str) -> str:
    """The architect's plan as the others read it: prose lines as written; of a line of code
    (or any line inside a ``` fence), only a function's signature (``Function: f(n: int) ->
    int``) and its ``#`` comments. The 1.5B architect wrote the function itself, on one line,
    sometimes with a body of comments only, and the coder copied it verbatim; without the code
    it writes its own."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        code, _, comment = line.partition("#")
        if not fenced and not _CODE_LINE.match(code):
            out.append(line.rstrip())
            continue
        sig = _SIGNATURE.match(code)
        if sig:
            out.append(f"Function: {' '.join(sig.group(1).split())}")
        out += [c.strip() for c in comment.split("#") if c.strip()]
    return (
        "\n".join(out).strip() or "(the plan was code only: write the function from the task and the tests)"
    )


@dataclass(frozen=True)
class TeamStatus:
    """What a team has done and learned. ``lessons`` are the promoted memories (best utility
    first), each with ``used_in_runs``: how many of this team's runs had it in a prompt."""

    kind: str
    roles: tuple[str, ...]
    runs: int
    successes: int
    cost: Cost
    lessons: tuple[dict[str, Any], ...]
    memory: dict[str, Any] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.runs if self.runs else None

    def __str__(self) -> str:
        rate = "n/a" if self.success_rate is None else f"{self.success_rate:.0%}"
        by_status = self.memory.get("by_status", {})
        counts = ", ".join(f"{n} {s}" for s, n in by_status.items() if n) or "none"
        lines = [
            f"{self.kind} team ({' + '.join(self.roles)}): {self.runs} runs, success rate {rate}, {self.cost}",
            f"memories: {counts} ({self.memory.get('path', '?')})",
        ]
        for m in self.lessons:
            lines.append(
                f"  [{m['kind']}] Q={m['q']:.2f} used in {m['used_in_runs']} runs, included "
                f"{m['times_included']}x: {m['text'][:100]}"
            )
        return "\n".join(lines)


class Team:
    """Sparks with roles, sharing one memory store; see the module docstring."""

    def __init__(
        self,
        kind: str,
        model: Backend | str | None = None,
        memory: MemoryStore | str | Path | None = None,
        *,
        critic: Backend | str | None = None,
        description: str = "",
        selection: Choice | None = None,
        max_steps: int = 4,
        isolation: str = "auto",
    ) -> None:
        if kind not in KINDS:
            raise ConfigurationError(f"unknown team kind {kind!r}; expected one of {', '.join(KINDS)}")
        self.kind = kind
        self.description = description
        self.selection = selection or Choice(kind, "given")
        self.llm = resolve_backend(model)
        self.store = open_store(memory)
        self.isolation = isolation
        self.members: dict[str, Spark] = {
            role: Spark(
                role, self.llm, role=ROLES[role], memory=self.store, critic=critic, max_steps=max_steps
            )
            for role in KINDS[kind]
        }
        self.history: list[RunResult] = []
        self._lock = threading.Lock()

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(self.members)

    # ------------------------------------------------------------------ running
    async def arun(self, task: str) -> RunResult:
        if not isinstance(task, str) or not task.strip():
            raise ConfigurationError("team.run needs a non-empty task")
        result = await (self._run_code(task) if self.kind == "code" else self._run_chain(task))
        with self._lock:
            self.history.append(result)
        return result

    def run(self, task: str) -> RunResult:
        """Run ``task`` through the team's roles; see the module docstring."""
        return run_sync(lambda: self.arun(task))

    def _context(self) -> str:
        return f"PURPOSE OF THE TEAM: {self.description}" if self.description else ""

    async def _run_chain(self, task: str) -> RunResult:
        turns: list[Turn] = []
        context = self._context()
        for spark in self.members.values():
            turn, _ = await spark.aturn(task, context=context)
            turns.append(turn)
            context = f"{self._context()}\n\n{spark.name.upper()} OUTPUT:\n{turn.output}".strip()
        return RunResult.from_turns(task, turns, deciding=turns[-1], decided_by="critic")

    async def _run_code(self, task: str) -> RunResult:
        from purpose_agent.envs.coding import CodingEnvironment, CodingTask

        architect, coder, tester = (self.members[r] for r in ("architect", "coder", "tester"))
        plan, _ = await architect.aturn(task, context=self._context())
        spec = f"PLAN (from the architect):\n{plain_plan(plan.output)}"
        written, _ = await tester.aturn(task, context=spec, environment=TestsEnvironment())
        tests = parse_tests(written.output)
        code_task = CodingTask("team", task, "solution", tuple(tests))

        # a submission that does not parse is run re-flowed when that makes it parse (the 1.5B
        # model writes "def f(n): if n < 2: return n else: ..." on one line); the step says so
        def sandbox() -> ReflowingEnvironment:
            return ReflowingEnvironment(CodingEnvironment(code_task, isolation=self.isolation))  # type: ignore[arg-type]

        shown = "\n".join(f"assert {t}" for t in tests) or "(the tester wrote no usable tests)"
        context = f"{spec}\n\nTESTS (from the tester; submit_code runs them in a sandbox):\n{shown}"
        coded, result = await coder.aturn(
            f"{task}\nWrite the code with submit_code until the tests pass, then DONE.",
            context=context,
            environment=sandbox(),
        )
        code = str(result.final_state.data.get("code", "")) or coded.output
        passed = int(result.final_state.data.get("passed", 0)) if tests else None
        turns, deciding = [plan, written, coded], coded
        taught = self._taught(coded.memory_ids)
        if taught and code.strip():
            revised, rev = await coder.aturn(
                f"{task}\nRevise the code so that it follows what your user taught you: "
                + " ".join(f'"{t}"' for t in taught)
                + " Keep what it does. Submit the revised code with submit_code, then DONE.",
                context=f"{context}\n\nCODE (the current version):\n```python\n{code}\n```",
                environment=sandbox(),
                max_steps=2,
            )
            turns.append(revised)
            new_code = str(rev.final_state.data.get("code", ""))
            new_passed = int(rev.final_state.data.get("passed", 0)) if tests else None
            # the revision stands only if the sandbox's tests pass no fewer than before
            if new_code.strip() and (new_passed or 0) >= (passed or 0) and parses(new_code):
                code, passed, deciding = new_code, new_passed, revised
        decided = "tests" if tests else "critic"
        # the code is the team's output; the tester's tests judged it in the sandbox
        return RunResult.from_turns(
            task,
            turns,
            deciding=deciding,
            decided_by=decided,
            output=code,
            tests=tests,
            tests_passed=passed,
        )

    def _taught(self, memory_ids: tuple[str, ...]) -> list[str]:
        """The texts of the lessons a person taught among ``memory_ids`` (a run's prompt had them)."""
        found = []
        for mid in memory_ids:
            try:
                m = self.store.get(mid)
            except KeyError:
                continue
            if is_taught(m):
                found.append(m.text)
        return found

    # ------------------------------------------------------------------ memory
    def teach(self, text: str) -> Decision:
        """A human lesson for every member: immune-scanned, then promoted at once (high trust),
        so the next run's prompts carry it; an unsafe one is kept as rejected (``.action``,
        ``.reason`` say so) and never reaches a prompt."""
        return teach(self.store, text)

    def status(self, top: int = 10) -> TeamStatus:
        """What was learned (memories by kind/status, promoted lessons with utilities and how
        many of this team's runs used them), runs, success rate, cost."""
        with self._lock:
            runs = list(self.history)
        report = self.store.status_report(top=top)
        used: dict[str, int] = {}
        for r in runs:
            for mid in r.memory_ids:
                used[mid] = used.get(mid, 0) + 1
        lessons = tuple({**m, "used_in_runs": used.get(m["id"], 0)} for m in report["top_promoted"])
        return TeamStatus(
            self.kind,
            self.roles,
            len(runs),
            sum(r.success for r in runs),
            sum((r.cost for r in runs), Cost()),
            lessons,
            report,
        )

    def __repr__(self) -> str:
        return f"Team({self.kind!r}, roles={list(self.roles)}, model={self.llm.name!r}, memory={str(self.store.path)!r})"


def purpose(
    description: str,
    model: Backend | str | None = None,
    memory: MemoryStore | str | Path | None = None,
    **options: Any,
) -> Team:
    """A team for ``description`` (see the module docstring). ``model`` is a spec string or a
    Backend (None: the embedded model); ``memory`` a path or a MemoryStore (None:
    ``.purpose_agent/memory.sqlite``). ``options`` go to ``Team`` (``critic``, ``max_steps``,
    ``isolation``). An empty description or an unknown model spec is a ConfigurationError."""
    if not isinstance(description, str) or not description.strip():
        raise ConfigurationError(
            "purpose() needs a description of what you want, e.g. pa.purpose('Help me write Python code')"
        )
    llm = resolve_backend(model)
    choice = select_kind(description, llm)
    return Team(choice.value, llm, memory, description=description.strip(), selection=choice, **options)

"""``AgentSpec`` / ``AgentTeam``: specialists sharing one memory, tasks delegated by expertise.

    team = pa.AgentTeam([
        pa.AgentSpec("coder", expertise=("python", "bug", "function")),
        pa.AgentSpec("writer", expertise=("essay", "email", "docs")),
    ], model="local", memory="team.sqlite")
    team.run_task("Fix the bug in this function")        # -> the coder (expertise keywords)
    team.run_pipeline(["Write a function", "Write its docs"])   # each sees the previous output
    print(team.get_learning_report())                     # who contributed which lesson, utility

Delegation: the agent whose expertise keywords occur most in the task; when agents tie or
none matches, the model picks one (a constrained JSON schema ``enum`` of the agent names).
Every agent is a Spark on the team's store, so what one learns the others get. A lesson's
contributor is the agent whose run it was distilled from (its ``sources`` are run ids), or
``"human"`` for a taught one.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purpose_agent.agents._roles import Choice, by_keywords, choose, open_store
from purpose_agent.agents.result import RunResult
from purpose_agent.agents.spark import Check, Spark, teach
from purpose_agent.errors import ConfigurationError
from purpose_agent.memory.ci import Decision
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus
from purpose_agent.models.base import Backend, run_sync
from purpose_agent.models.registry import resolve_backend

__all__ = ["AgentSpec", "AgentTeam", "LearningReport", "LessonCredit"]


@dataclass(frozen=True)
class AgentSpec:
    """A specialist: its name, role, the keywords of its expertise, and optionally its own
    model and tools (default: the team's model, no tools)."""

    name: str
    role: str = ""
    expertise: Sequence[str] | str = ()  # stored as a tuple of lowercase keywords
    model: Backend | str | None = None
    tools: Sequence[Any] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigurationError("an AgentSpec needs a non-empty name")
        if isinstance(self.expertise, str):
            object.__setattr__(self, "expertise", (self.expertise,))
        object.__setattr__(
            self, "expertise", tuple(str(e).lower().strip() for e in self.expertise if str(e).strip())
        )
        object.__setattr__(self, "tools", tuple(self.tools))


@dataclass(frozen=True)
class LessonCredit:
    memory_id: str
    kind: str
    status: str
    text: str
    agent: str  # who contributed it: an agent's name, "human", or "unknown" (another process)
    utility: float  # Q, the measured utility
    times_included: int
    helpful: int
    harmful: int


@dataclass(frozen=True)
class LearningReport:
    """Every lesson of the team's store (rejected ones included) with its contributor and utility."""

    lessons: tuple[LessonCredit, ...]
    runs_by_agent: dict[str, int] = field(default_factory=dict)

    def by_agent(self) -> dict[str, list[LessonCredit]]:
        out: dict[str, list[LessonCredit]] = {}
        for lesson in self.lessons:
            out.setdefault(lesson.agent, []).append(lesson)
        return out

    def __str__(self) -> str:
        lines = [
            "Learning report: "
            + (", ".join(f"{a} {n} runs" for a, n in self.runs_by_agent.items()) or "no runs")
        ]
        for lesson in self.lessons:
            lines.append(
                f"  {lesson.agent}: [{lesson.kind}, {lesson.status}] Q={lesson.utility:.2f} "
                f"(included {lesson.times_included}x) {lesson.text[:90]}"
            )
        return "\n".join(lines)


class AgentTeam:
    """Specialists with a shared memory; see the module docstring."""

    def __init__(
        self,
        agents: Sequence[AgentSpec],
        model: Backend | str | None = None,
        memory: MemoryStore | str | Path | None = None,
        *,
        router: Backend | str | None = None,
        critic: Backend | str | None = None,
        max_steps: int = 4,
    ) -> None:
        specs = list(agents)
        if not specs or not all(isinstance(s, AgentSpec) for s in specs):
            raise ConfigurationError("AgentTeam needs a non-empty list of AgentSpec")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"agent names must be unique, got {names}")
        self.llm = resolve_backend(model)
        self.router = resolve_backend(router) if router is not None else self.llm
        self.store = open_store(memory)
        self.specs = {s.name: s for s in specs}
        self.agents: dict[str, Spark] = {
            s.name: Spark(
                s.name,
                s.model if s.model is not None else self.llm,
                list(s.tools),
                s.role or None,
                memory=self.store,
                critic=critic,
                max_steps=max_steps,
            )
            for s in specs
        }
        self.history: list[RunResult] = []
        self._run_agent: dict[str, str] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ delegation
    def delegate(self, task: str) -> Choice:
        """Which agent gets ``task``: by expertise keywords, else by the router model."""
        keywords = {name: spec.expertise for name, spec in self.specs.items()}
        name, tied = by_keywords(task, keywords)
        if name is not None:
            return Choice(name, "keywords", f"expertise of {name!r} matched")
        options = tied or list(self.specs)
        if len(options) == 1:
            return Choice(options[0], "keywords", "the only agent")
        described = "\n".join(
            f"- {n}: {self.specs[n].role or 'agent'}; expertise: {', '.join(self.specs[n].expertise) or '-'}"
            for n in options
        )
        return choose(
            self.router,
            f"Which agent should do this task?\nTASK: {task}\nAGENTS:\n{described}",
            options,
            fallback=options[0],
        )

    async def arun_task(
        self, task: str, *, agent: str | None = None, context: str = "", check: Check | None = None
    ) -> RunResult:
        if not isinstance(task, str) or not task.strip():
            raise ConfigurationError("run_task needs a non-empty task")
        if agent is not None and agent not in self.agents:
            raise ConfigurationError(f"unknown agent {agent!r}; agents: {', '.join(self.agents)}")
        name = agent or self.delegate(task).value
        result = await self.agents[name].arun(task, context=context, check=check)
        with self._lock:
            self.history.append(result)
            for rid in result.run_ids:
                self._run_agent[rid] = name
        return result

    def run_task(
        self, task: str, *, agent: str | None = None, context: str = "", check: Check | None = None
    ) -> RunResult:
        """Run ``task`` on the agent it is delegated to (or ``agent=``); ``result.agent`` names it."""
        return run_sync(lambda: self.arun_task(task, agent=agent, context=context, check=check))

    async def arun_pipeline(self, tasks: Sequence[str | tuple[str, str]]) -> list[RunResult]:
        results: list[RunResult] = []
        previous = ""
        for item in tasks:
            name, task = (item[0], item[1]) if isinstance(item, tuple) else (None, item)
            context = f"RESULT OF THE PREVIOUS STEP:\n{previous}" if previous else ""
            result = await self.arun_task(task, agent=name, context=context)
            results.append(result)
            previous = result.output
        return results

    def run_pipeline(self, tasks: Sequence[str | tuple[str, str]]) -> list[RunResult]:
        """Run tasks in order, each delegated (or ``(agent, task)``), each seeing the previous output."""
        if isinstance(tasks, str) or not tasks:
            raise ConfigurationError("run_pipeline needs a non-empty list of tasks")
        return run_sync(lambda: self.arun_pipeline(tasks))

    # ------------------------------------------------------------------ memory
    def teach(self, text: str) -> Decision:
        """A human lesson for every agent (scanned, then promoted at once or kept as rejected)."""
        return teach(self.store, text)

    def get_learning_report(self) -> LearningReport:
        with self._lock:
            run_agent = dict(self._run_agent)
            runs: dict[str, int] = {}
            for r in self.history:
                runs[r.agent] = runs.get(r.agent, 0) + 1
        lessons: list[LessonCredit] = []
        for m in self.store.list():
            if m.status is MemoryStatus.ARCHIVED:
                continue
            if m.made_by == "human":
                who = "human"
            else:
                agents = list(dict.fromkeys(run_agent[s] for s in m.sources if s in run_agent))
                who = ", ".join(agents) or "unknown"
            lessons.append(
                LessonCredit(
                    m.id,
                    m.kind.value,
                    m.status.value,
                    m.text,
                    who,
                    m.q,
                    m.times_included,
                    m.helpful,
                    m.harmful,
                )
            )
        lessons.sort(key=lambda lesson: (lesson.status != "promoted", -lesson.utility))
        return LearningReport(tuple(lessons), runs)

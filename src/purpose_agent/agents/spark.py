"""``Spark``: one agent (a name, a role, a model, tools) with its own memory, learning across runs.

    spark = pa.Spark("helper", model="local", role="assistant")
    result = spark.run("What is the capital of France?", check=lambda answer: "Paris" in answer)
    print(result)                       # a RunResult: output, success, phi, steps, cost, trace_path

Every run goes through the kernel: ``Orchestrator(model, environment, tools, memory=store)``, so
the actor's prompt carries the promoted lessons of the Spark's memory, a separate critic scores
each step, and after the run the default learning path writes candidate lessons and gates them
(``purpose_agent.loop.learning``). ``check=`` is the ground truth of an answer (True/False or a
score in [0, 1]): it decides success, and it is what lets the gate promote a lesson; without it
the critic decides success and learned lessons stay quarantined (only ``teach`` promotes then).
When a tool returned cited passages (a Vault's ``as_tool()``) and the answer cites none of the
ones it draws on, ``Sources: [...]`` is appended (``agents/_citations.py``; ``result.sources``).
``validation=[(task, check), ...]`` gives the gate its validation tasks. ``environment=`` runs a
task in an environment of your own (its ``outcome`` is then the ground truth).

Memory: by default each Spark has its own store, ``.purpose_agent/sparks/<name>.sqlite`` (its own
memory scope); pass ``memory=`` a path or a MemoryStore to share one (a Team does).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from purpose_agent.agents._citations import cite
from purpose_agent.agents._roles import ROLES, Role, open_store
from purpose_agent.agents.result import Cost, RunResult, Turn, output_of
from purpose_agent.core.environment import Environment, SimpleEnvironment
from purpose_agent.core.types import Action, State, TaskResult
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._steps import tool_entry
from purpose_agent.loop.learning import Learning
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.loop.settings import ActorSettings, CriticSettings, TraceSettings
from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.base import Backend, run_sync
from purpose_agent.models.registry import resolve_backend

__all__ = ["Check", "Spark"]

#: ground truth of an answer: True / False, or a score in [0, 1]
Check = Callable[[str], bool | float]


#: the head of a plain task's state once a tool has returned: a small model otherwise keeps
#: calling the tool (a 1.5B model searched the same documents 4 times with the answer in view)
RESULTS_HEAD = "Tool results so far. When they answer the task, finish now: DONE with the answer."


class AnswerEnvironment(SimpleEnvironment):
    """The environment of a plain task: the answer is DONE's ``answer``; ``check`` (optional)
    is its ground truth. The run ends with the answer (a high Φ on the way does not end it).
    The state lists what the tools returned, a result already shown once as
    ``(the same result as before)``."""

    answer_ends_run = True

    def __init__(self, check: Check | None = None) -> None:
        super().__init__(initial_state=State({}, "Nothing done yet."))
        self.check = check

    def observe_tool(self, action: Action, result: Any, state: State) -> State:
        earlier = list(state.data.get("tool_results", []))
        entry = tool_entry(action, result)
        lines = [RESULTS_HEAD]
        shown: set[tuple[str, str]] = set()
        for r in [*earlier, entry]:
            key = (str(r["tool"]), str(r["output"]))
            text = "(the same result as before)" if key in shown else key[1][:1000]
            shown.add(key)
            lines.append(f"[{key[0]}] {text}")
        return State({**state.data, "tool_results": [*earlier, entry]}, "\n".join(lines))

    def outcome(self, state: State) -> float | None:
        if self.check is None or "answer" not in state.data:
            return None
        return float(self.check(str(state.data["answer"])))


def _answer_factory(check: Check) -> Callable[[], Environment]:
    return lambda: AnswerEnvironment(check)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "spark"


def _role(role: str | Role | None) -> Role | None:
    if role is None or isinstance(role, Role):
        return role
    if not isinstance(role, str) or not role.strip():
        raise ConfigurationError(f"role must be a non-empty string or a Role, got {role!r}")
    return ROLES.get(role.strip().lower(), Role(role.strip(), ""))


class Spark:
    """One agent with its own memory that gets better across runs (see the module docstring)."""

    def __init__(
        self,
        name: str,
        model: Backend | str | None = None,
        tools: Sequence[Any] | None = None,
        role: str | Role | None = None,
        *,
        memory: MemoryStore | str | Path | None = None,
        critic: Backend | str | None = None,
        learning: Learning | None = None,
        validation: Sequence[tuple[str, Check]] | None = None,
        max_steps: int = 4,
        max_tokens: int = 512,
        trace_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("a Spark needs a non-empty name")
        self.name = name.strip()
        self.role = _role(role)
        self.llm = resolve_backend(model)
        self.critic = resolve_backend(critic) if critic is not None else None
        self.tools = list(tools or [])
        for tool in self.tools:
            if not hasattr(tool, "name") or not hasattr(tool, "arun"):
                raise ConfigurationError(f"tools must be Tools (name, description, arun), got {tool!r}")
        self.store = open_store(
            memory if memory is not None else f".purpose_agent/sparks/{_slug(self.name)}.sqlite"
        )
        if max_steps < 1:
            raise ConfigurationError(f"max_steps must be at least 1, got {max_steps}")
        self.max_steps = max_steps
        self.max_tokens = max_tokens
        self.trace_dir = trace_dir
        self.learning = self._learning(learning, validation)
        self.history: list[RunResult] = []
        self._lock = threading.Lock()

    def _learning(
        self, learning: Learning | None, validation: Sequence[tuple[str, Check]] | None
    ) -> Learning | None:
        if validation is None:
            return learning
        items: list[tuple[str, Callable[[], Environment]]] = []
        for item in validation:
            if not (
                isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and callable(item[1])
            ):
                raise ConfigurationError(f"validation items are (task, check) pairs, got {item!r}")
            task, check = item
            items.append((self.prompt(task), _answer_factory(check)))
        base = learning or Learning()
        return Learning(**{**base.__dict__, "validation": items})

    # ------------------------------------------------------------------ prompts
    def prompt(self, task: str, context: str = "") -> str:
        """The purpose the kernel runs for ``task``: who the agent is, its role, the task."""
        who = f"You are {self.name}" + (f", the {self.role.name}" if self.role else "") + "."
        if self.role and self.role.instructions:
            who += f" {self.role.instructions}"
        text = f"{who}\nTASK: {task.strip()}"
        return text + (f"\n\n{context.strip()}" if context.strip() else "")

    def orchestrator(self, environment: Environment) -> Orchestrator:
        """The kernel loop this Spark runs in ``environment``: its model, tools, critic, memory.
        A state whose environment reports ground truth (tests passed, a checked answer) is scored
        from it, Φ = 10·outcome, with no critic call; the critic scores every other state."""
        return Orchestrator(
            self.llm,
            environment,
            self.tools or None,
            critic_llm=self.critic,
            memory=self.store,
            learning=self.learning,
            actor=ActorSettings(max_tokens=self.max_tokens),
            critic=CriticSettings(ground_truth_phi=True),
            trace=TraceSettings(directory=Path(self.trace_dir) if self.trace_dir is not None else None),
        )

    # ------------------------------------------------------------------ running
    async def run_kernel(
        self, purpose: str, environment: Environment, max_steps: int | None = None
    ) -> TaskResult:
        """One kernel run of ``purpose`` in ``environment`` (a ``RunFailedError`` when the model fails)."""
        orch = self.orchestrator(environment)
        return await orch.arun_task(purpose, max_steps=max_steps or self.max_steps)

    async def aturn(
        self,
        task: str,
        *,
        context: str = "",
        check: Check | None = None,
        environment: Environment | None = None,
        max_steps: int | None = None,
    ) -> tuple[Turn, TaskResult]:
        """One run as a ``Turn`` (for teams), with the kernel's TaskResult."""
        if not isinstance(task, str) or not task.strip():
            raise ConfigurationError(f"{self.name}: the task must be a non-empty string")
        if check is not None and environment is not None:
            raise ConfigurationError("give check= or environment= (whose outcome is the check), not both")
        env = environment if environment is not None else AnswerEnvironment(check)
        result = await self.run_kernel(self.prompt(task, context), env, max_steps)
        role = self.role.name if self.role else ""
        turn = Turn.of(self.name, role, task, output_of(result), result, self.llm.name)
        if environment is None:  # a plain task: cite the passages the answer draws on
            found = [str(r["output"]) for r in result.final_state.data.get("tool_results", []) if r.get("ok")]
            output, sources = cite(turn.output, found)
            turn = replace(turn, output=output, sources=sources)
        return turn, result

    async def arun(
        self,
        task: str,
        *,
        context: str = "",
        check: Check | None = None,
        environment: Environment | None = None,
        max_steps: int | None = None,
    ) -> RunResult:
        turn, result = await self.aturn(
            task, context=context, check=check, environment=environment, max_steps=max_steps
        )
        decided = "ground_truth" if result.outcome is not None else "critic"
        out = RunResult.from_turns(task, [turn], deciding=turn, decided_by=decided)
        with self._lock:
            self.history.append(out)
        return out

    def run(
        self,
        task: str,
        *,
        context: str = "",
        check: Check | None = None,
        environment: Environment | None = None,
        max_steps: int | None = None,
    ) -> RunResult:
        """Run ``task``; the result's ``success`` comes from ``check`` (or the environment's
        outcome) when given, else from the critic."""
        return run_sync(
            lambda: self.arun(
                task, context=context, check=check, environment=environment, max_steps=max_steps
            )
        )

    # ------------------------------------------------------------------ memory
    def teach(self, text: str) -> Decision:
        """A human lesson: immune-scanned, then promoted at once into this Spark's memory (the next
        run's prompt has it), or stored as rejected with the threats as the reason."""
        return teach(self.store, text)

    def status(self) -> dict[str, Any]:
        """Runs, success rate, cost and what the memory holds (``MemoryStore.status_report``)."""
        with self._lock:
            runs = list(self.history)
        cost = sum((r.cost for r in runs), Cost())
        ok = sum(r.success for r in runs)
        return {
            "name": self.name,
            "runs": len(runs),
            "successes": ok,
            "success_rate": ok / len(runs) if runs else None,
            "cost": cost,
            "memory": self.store.status_report(),
        }

    def __repr__(self) -> str:
        role = f", role={self.role.name!r}" if self.role else ""
        return f"Spark({self.name!r}, model={self.llm.name!r}{role}, memory={str(self.store.path)!r})"


def teach(store: MemoryStore, text: str) -> Decision:
    """``MemoryCI.teach``: scanned, then promoted (high trust) or kept as rejected."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("a lesson to teach must be a non-empty string")
    return MemoryCI(store, replay=None).teach(text.strip())

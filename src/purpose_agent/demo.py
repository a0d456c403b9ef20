"""The demo: the embedded model writes a function until its unit tests pass."""

from __future__ import annotations

import time

from purpose_agent.core import events as ev
from purpose_agent.core.orchestrator import Orchestrator
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.envs.coding_tasks import BY_ID, DEMO_TASK
from purpose_agent.models.registry import resolve_backend


def _printer(event: ev.Event) -> None:
    if isinstance(event, ev.ActionChosen):
        code = str(event.params.get("code", event.params))
        first = code.strip().splitlines()[0] if code.strip() else ""
        lines = len(code.splitlines())
        print(f"step {event.step}: {event.name} ({lines} lines: {first[:60]!r})", flush=True)
        if event.thought:
            print(f"   thought: {event.thought[:160]}", flush=True)
    elif isinstance(event, ev.Observed):
        tests = [ln for ln in event.observation.splitlines() if ln.startswith("Tests:")]
        if tests:
            print(f"   {tests[0]}", flush=True)
    elif isinstance(event, ev.Scored):
        gt = f", ground truth {event.outcome:.2f}" if event.outcome is not None else ""
        print(f"   Φ {event.phi_before:.0f} → {event.phi_after:.0f}{gt}", flush=True)


def run_demo(model: str = "local", task_id: str | None = None, max_steps: int = 5) -> int:
    task = BY_ID[task_id] if task_id else DEMO_TASK
    t0 = time.perf_counter()
    llm = resolve_backend(model)
    print(f"model: {llm.name} (loaded in {time.perf_counter() - t0:.1f}s)")
    print(f"task: {task.purpose}\n")
    orch = Orchestrator(llm, CodingEnvironment(task), listeners=[_printer])
    result = orch.run_task(task.purpose, max_steps=max_steps)
    print()
    print(result.summary().splitlines()[0])
    if result.success:
        print("\nfinal solution:\n" + str(result.final_state.data.get("code", "")))
    print(f"trace: {result.trace_path}")
    print(f"total wall time: {time.perf_counter() - t0:.1f}s")
    return 0 if result.success else 1

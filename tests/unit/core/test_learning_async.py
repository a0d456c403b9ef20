"""Learning after a task is awaited: an async caller's event loop runs on while the distiller
and the gate's validation replays run, and the SQLite connections a gate (or a hook built
from a path) opens are closed again."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import purpose_agent as pa
from purpose_agent.loop.replay import ReplayTask
from purpose_agent.memory import MemoryStore
from purpose_agent.memory.events import MemoryGated
from purpose_agent.models.base import Message

SECRET = "THE SECRET NUMBER IS 42"
LESSON = {"kind": "skill_card", "trigger": "a secret number question", "text": f"Answer 42: {SECRET}."}


def secret_env() -> pa.SimpleEnvironment:
    return pa.SimpleEnvironment(
        outcome_fn=lambda s: None if "answer" not in s.data else float(s.data["answer"] == "42")
    )


class Toy:
    """The actor answers 42 only with the lesson in its prompt; the distiller writes it. Each
    call records the loop's tick count and thread, so a test sees whether the loop ran on."""

    def __init__(self, ticks: list[int] | None = None) -> None:
        self.ticks = ticks if ticks is not None else [0]
        self.calls: list[tuple[str, int, int]] = []  # (role, tick, thread id)
        self.model = pa.FunctionModel(self.reply)

    def reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        props = (schema or {}).get("properties", {})
        role = "distiller" if "lessons" in props else "critic" if "score" in props else "actor"
        self.calls.append((role, self.ticks[0], threading.get_ident()))
        if role == "distiller":
            return {"lessons": [LESSON], "achieved": ""}
        if role == "critic":
            return {"evidence": "state", "reason": "toy", "score": 5, "confidence": "medium"}
        prompt = "\n".join(m.content for m in messages)
        return {"thought": "t", "action": "DONE", "params": {"answer": "42" if SECRET in prompt else "7"}}


def _open_connections() -> int:
    """SQLite connections of this process that are still open (a closed one refuses use).
    File descriptors would not tell: SQLite defers closing a file's descriptor while another
    connection to the same file holds locks, and reuses it at the next open."""
    gc.collect()
    n = 0
    for obj in gc.get_objects():
        if isinstance(obj, sqlite3.Connection):
            try:
                obj.total_changes  # noqa: B018 - raises once closed
            except sqlite3.ProgrammingError:
                continue
            n += 1
    return n


def test_an_async_callers_loop_runs_on_while_the_gate_replays(tmp_path: Path) -> None:
    ticks = [0]
    toy = Toy(ticks)
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    learning = pa.Learning(validation=[("Say the secret number.", secret_env)])
    orch = pa.Orchestrator(toy.model, secret_env(), memory=store, learning=learning, trace=False)
    gated: list[MemoryGated] = []
    orch.bus.subscribe(lambda e: gated.append(e) if isinstance(e, MemoryGated) else None)

    async def main() -> pa.TaskResult:
        done = False

        async def ticker() -> None:
            while not done:
                ticks[0] += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        try:
            return await orch.arun_task("Say the secret number (train).", max_steps=2)
        finally:
            done = True
            await task

    result = asyncio.run(main())
    assert not result.success and gated and gated[0].new_pairs == 1
    roles = [role for role, _, _ in toy.calls]
    first = roles.index("distiller")
    after = toy.calls[first:]
    replays = [c for c in after if c[0] == "actor"]
    assert len(replays) == 2  # with and without the candidate
    # learning ran on the caller's loop (its thread), and the ticker made progress meanwhile
    assert {thread for _, _, thread in toy.calls} == {threading.get_ident()}
    assert replays[-1][1] > after[0][1]
    store.close()


def test_a_gated_run_leaves_no_connection_open(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    store = MemoryStore(path, embedder=None)
    toy = Toy()
    learning = pa.Learning(validation=[("Say the secret number.", secret_env)])
    orch = pa.Orchestrator(toy.model, secret_env(), memory=store, learning=learning, trace=False)
    baseline = _open_connections()
    assert baseline >= 1
    gated: list[MemoryGated] = []
    orch.bus.subscribe(lambda e: gated.append(e) if isinstance(e, MemoryGated) else None)
    orch.run_task("Say the secret number (train).", max_steps=2)
    assert gated  # a gate ran its replays on a validation-mode connection, closed after it
    assert _open_connections() == baseline
    orch.close()  # the caller's store stays open
    assert _open_connections() == baseline and store.count() >= 1
    store.close()
    assert _open_connections() == baseline - 1


def test_an_orchestrator_on_a_path_closes_what_it_opened(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    toy = Toy()
    learning = pa.Learning(validation=[("Say the secret number.", secret_env)])
    baseline = _open_connections()
    with pa.Orchestrator(toy.model, secret_env(), memory=path, learning=learning, trace=False) as orch:
        orch.run_task("Say the secret number (train).", max_steps=2)
        assert _open_connections() == baseline + 1
    assert _open_connections() == baseline


def test_the_sync_finish_still_learns_for_step_by_step_callers(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    toy = Toy()
    learning = pa.Learning(validation=[("Say the secret number.", secret_env)])
    orch = pa.Orchestrator(toy.model, secret_env(), memory=store, learning=learning, trace=False)
    gated: list[MemoryGated] = []
    orch.bus.subscribe(lambda e: gated.append(e) if isinstance(e, MemoryGated) else None)

    async def steps() -> Any:
        run = await orch.astart("Say the secret number (train).", max_steps=2)
        while not run.done:
            await orch.astep(run)
        return run

    run = asyncio.run(steps())
    orch.finish(run)
    assert gated and gated[0].new_pairs == 1
    store.close()


def test_a_gate_or_replay_that_redefines_only_the_sync_form_is_still_used(tmp_path: Path) -> None:
    from purpose_agent.loop.hook import StoreMemoryHook
    from purpose_agent.loop.replay import ValidationReplay
    from purpose_agent.memory.ci import Decision, MemoryCI
    from purpose_agent.memory.evidence import UnitRun

    class Everything(MemoryCI):  # as the benchmark's PromoteAll: only the sync process
        def process(self, candidate_ids: Sequence[str]) -> list[Decision]:
            return [Decision(mid, "promoted", "all") for mid in candidate_ids]

    class Fixed(ValidationReplay):  # only the sync run_unit
        def run_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
            return UnitRun(1.0 if include else 0.0, 0, 0.0)

    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    hook = StoreMemoryHook(store, llm=Toy().model, ci=Everything(store, None))
    orch = pa.Orchestrator(Toy().model, secret_env(), memory=hook, trace=False)
    gated: list[MemoryGated] = []
    orch.bus.subscribe(lambda e: gated.append(e) if isinstance(e, MemoryGated) else None)
    orch.run_task("Say the secret number (train).", max_steps=2)
    assert gated and {e.action for e in gated} == {"promoted"}

    replay = Fixed(store, Toy().model, [ReplayTask("Say it.", lambda seed: secret_env())])
    mid = store.add("Answer 42 when asked for the secret number.", "skill_card")
    [decision] = asyncio.run(MemoryCI(store, replay).aprocess([mid]))
    assert decision.new_pairs == 1 and decision.wins == 1
    store.close()

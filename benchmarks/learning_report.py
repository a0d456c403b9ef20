"""A few training runs on the demo coding family, with the full memory pipeline on the embedded
model: distil → immune scan → quarantine → validation replay (LEARNING_VALIDATION, same seeds,
with and without the candidate) → promote / reject → credit. Prints the learning report.

Resumable: the store is a file, and finished training tasks are listed beside it, so a rerun
continues where the last one stopped.

Usage: python benchmarks/learning_report.py [--store runs/learning.sqlite] [--model local]
       [--train is_palindrome,fizzbuzz,count_vowels] [--validation digit_sum,title_case]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from purpose_agent.core.orchestrator import Orchestrator
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.envs.coding_tasks import BY_ID
from purpose_agent.memory import MemoryCI, MemoryStore
from purpose_agent.memory.hook import StoreMemoryHook
from purpose_agent.memory.replay import ReplayTask, ValidationReplay
from purpose_agent.models.registry import resolve_backend


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="runs/learning.sqlite")
    ap.add_argument("--model", default="local")
    ap.add_argument("--train", default="reverse_words,balanced,running_sum")
    ap.add_argument("--validation", default="digit_sum,title_case")
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--replay-steps", type=int, default=2)
    args = ap.parse_args()

    path = Path(args.store)
    path.parent.mkdir(parents=True, exist_ok=True)
    done_file = path.with_suffix(".done.json")
    done: list[str] = json.loads(done_file.read_text()) if done_file.exists() else []
    llm = resolve_backend(args.model)
    store = MemoryStore(path, embedder=None)
    replay = ValidationReplay(
        store,
        llm,
        [
            ReplayTask(
                BY_ID[t].purpose, lambda seed, t=t: CodingEnvironment(BY_ID[t]), max_steps=args.replay_steps
            )
            for t in args.validation.split(",")
        ],
        seeds=(0,),
    )
    hook = StoreMemoryHook(store, llm=llm, ci=MemoryCI(store, replay))
    orch = Orchestrator(llm, CodingEnvironment(BY_ID["is_palindrome"]), memory=hook)
    print(f"model {llm.name}; store {path}; {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    for tid in args.train.split(","):
        if tid in done:
            print(f"[skip] {tid} (done in an earlier run)")
            continue
        t0 = time.perf_counter()
        orch.environment = CodingEnvironment(BY_ID[tid])
        result = orch.run_task(BY_ID[tid].purpose, max_steps=args.max_steps)
        print(
            f"[train] {tid}: {'solved' if result.success else 'failed'} (tests {result.outcome:.2f}) in "
            f"{len(result.steps)} steps, {time.perf_counter() - t0:.0f}s incl. learning; "
            f"memories in prompt: {len(result.memory_ids)}",
            flush=True,
        )
        done.append(tid)
        done_file.write_text(json.dumps(done))
    report = store.status_report()
    print("\nLEARNING REPORT")
    print(f"memories by status: {report['by_status']}")
    print("promoted (utility Q, times included, helpful/harmful):")
    for m in report["top_promoted"]:
        print(
            f"  Q={m['q']:.2f} n={m['times_included']} +{m['helpful']}/-{m['harmful']} [{m['kind']}] {m['text'][:150]}"
        )
    print("rejected (reason):")
    for m in report["rejected"]:
        print(f"  [{m['kind']}] {m['text'][:100]}\n      reason: {m['reason'][:200]}")
    print(f"validation replay runs: {replay.runs}")


if __name__ == "__main__":
    main()

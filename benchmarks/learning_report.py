"""A few training runs on the demo coding family through the default learning path on the
embedded model: ``Orchestrator(llm, env, memory=MemoryStore(path), learning=pa.Learning(
validation=[(purpose, environment factory), ...]))``. After each run the memory hook writes
candidates (worked examples, procedures, failure patterns, distilled lessons), and its gate
replays them on the validation tasks with and without them (LEARNING_VALIDATION, same seeds)
and promotes only on evidence; included lessons are credited. Prints the learning report.

Resumable: the store is a file, and finished training tasks are listed beside it, so a rerun
continues where the last one stopped.

Usage: python benchmarks/learning_report.py [--store runs/learning.sqlite] [--model local]
       [--train reverse_words,balanced,running_sum] [--validation digit_sum,title_case,...]
       [--teacher SPEC]

The gate promotes only on ≥ 4 paired wins with no loss (sign test, α = 0.1), so give at
least four validation tasks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import purpose_agent as pa
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.envs.coding_tasks import BY_ID
from purpose_agent.memory import MemoryStore
from purpose_agent.memory.events import MemoryGated


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", default="runs/learning.sqlite")
    ap.add_argument("--model", default="local")
    ap.add_argument("--train", default="reverse_words,balanced,running_sum")
    ap.add_argument("--validation", default="digit_sum,title_case,count_vowels,fizzbuzz")
    ap.add_argument("--teacher", default=None, help="model spec of the lesson writer (default: --model)")
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--replay-steps", type=int, default=2)
    args = ap.parse_args()

    path = Path(args.store)
    path.parent.mkdir(parents=True, exist_ok=True)
    done_file = path.with_suffix(".done.json")
    done: list[str] = json.loads(done_file.read_text()) if done_file.exists() else []
    llm = pa.resolve_backend(args.model)
    store = MemoryStore(path)
    learning = pa.Learning(
        validation=[
            (BY_ID[t].purpose, lambda _seed, t=t: CodingEnvironment(BY_ID[t]))
            for t in args.validation.split(",")
        ],
        teacher=args.teacher,
        replay_max_steps=args.replay_steps,
    )
    orch = pa.Orchestrator(llm, CodingEnvironment(BY_ID["is_palindrome"]), memory=store, learning=learning)
    gated: list[MemoryGated] = []
    orch.bus.subscribe(lambda e: gated.append(e) if isinstance(e, MemoryGated) else None)
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
    runs = sum(e.runs for e in gated)
    secs = sum(e.seconds for e in gated)
    print(f"gate this session: {len(gated)} decisions, {runs} validation runs, {secs:.0f}s")


if __name__ == "__main__":
    main()

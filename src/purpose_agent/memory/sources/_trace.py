"""Reading a finished run: clean observations, compact actions, situations, ground-truth
transitions and the environment's own feedback."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from purpose_agent.core.types import State, Step, TaskResult

#: how the compiler's memory section starts (it is cut from observations: lessons are not evidence)
LESSONS_MARK = "## Lessons from past runs"
OBS_CHARS = 100
SITUATION_CHARS = 140
PARAM_CHARS = 400
FEEDBACK_CHARS = 160
_FENCE = re.compile(r"```.*?(?:```|$)", re.DOTALL)
_NOTE = re.compile(r"^NOTE: this action changed nothing\..*$", re.MULTILINE)
#: what environments say when an action failed or was not understood
FEEDBACK = re.compile(
    r"(?:\bFAIL\b|\b[A-Z]\w*Error\b|Traceback|not a verb I recogni[sz]e|\bcan'?t\b|\bcannot\b|"
    r"\bdon'?t (?:understand|know how)|\bunknown (?:command|action|verb)\b|\binvalid\b|"
    r"\bnot (?:possible|allowed)\b|\bnothing happens\b|\bthere is no\b|\bcode does not load\b|"
    r"\btimeout\b|\bassertion false\b|\bincorrect\b|\bwrong\b|\bexpected\b)",
    re.IGNORECASE,
)


def clean_observation(text: str) -> str:
    """An observation without what the loop appended to it (lessons, the no-change note)."""
    text = text or ""
    cut = text.find(LESSONS_MARK)
    if cut >= 0:
        text = text[:cut]
    return _NOTE.sub("", text).strip()


def _short(text: str, limit: int) -> str:
    text = " ".join(_FENCE.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def brief(text: str, limit: int = OBS_CHARS) -> str:
    """One line: code blocks dropped, whitespace collapsed, truncated."""
    return _short(clean_observation(text), limit)


def situation(state: State) -> str:
    """The state an action was taken in, quoted briefly."""
    return _short(clean_observation(state.describe(2000)), SITUATION_CHARS)


#: what the loop itself says (not the environment) when a reply was not an action
FRAMEWORK_NOTES = ("Your reply was not a usable action", "The environment returned no state")


def feedback(text: str) -> str | None:
    """The first line of ``text`` (code blocks left out) in which the environment says
    something went wrong; None when there is none or the text is the loop's own note."""
    text = clean_observation(text)
    if text.startswith(FRAMEWORK_NOTES):
        return None
    for line in _FENCE.sub("\n", text).splitlines():
        line = line.strip()
        if line and FEEDBACK.search(line):
            return _short(line, FEEDBACK_CHARS)
    return None


def _clip(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= PARAM_CHARS else value[: PARAM_CHARS - 1] + "…"
    if isinstance(value, Mapping):
        return {str(k): _clip(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clip(v) for v in value[:20]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)[:PARAM_CHARS]


def action_record(step: Step) -> dict[str, Any]:
    """{"action": name, "params": {...}} (params only when there are any; long strings cut)."""
    rec: dict[str, Any] = {"action": str(step.action.name)}
    params = dict(step.action.params or {})
    if params:
        rec["params"] = _clip(params)
    return rec


def action_key(rec: Mapping[str, Any]) -> str:
    """A stable text form of an action record (for alignment and comparison)."""
    return json.dumps(dict(rec), sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def action_texts(rec: Mapping[str, Any]) -> list[str]:
    """The strings in an action record (its name and parameter values)."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, Mapping):
            for x in v.values():
                walk(x)
        elif isinstance(v, list | tuple):
            for x in v:
                walk(x)

    walk(dict(rec))
    return out


def show_action(rec: Mapping[str, Any], limit: int = 160) -> str:
    """An action quoted compactly for a lesson's prose."""
    text = action_key(rec) if rec.get("params") else json.dumps(str(rec.get("action", "")))
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Transition:
    """One step with the ground truth before and after it (None when unknown)."""

    step: Step
    before: float | None
    after: float | None

    @property
    def rose(self) -> bool:
        return self.before is not None and self.after is not None and self.after > self.before + 1e-9

    @property
    def fell(self) -> bool:
        return self.before is not None and self.after is not None and self.after < self.before - 1e-9

    @property
    def lost(self) -> bool:
        """The environment reports the task as failed (e.g. a game lost)."""
        data = self.step.state_after.data
        return bool(data.get("failure") or data.get("taskfailure")) and not bool(
            self.step.state_before.data.get("failure")
        )


def effective(step: Step) -> bool:
    """A step that changed the state (a DONE that submits an answer counts; a bare DONE, an
    invalid command or a repeated submission does not)."""
    return step.state_after.fingerprint() != step.state_before.fingerprint()


def transitions(steps: Sequence[Step]) -> list[Transition]:
    """Ground truth around each step. A run is taken to start unsolved (0.0) when its first
    step has a known outcome; later, the last known outcome is the one before."""
    out: list[Transition] = []
    prev: float | None = None
    for i, s in enumerate(steps):
        after = s.outcome
        before = prev if i else (0.0 if after is not None else None)
        out.append(Transition(s, before, after))
        if after is not None:
            prev = after
    return out


def is_verified_success(result: TaskResult) -> bool:
    """Ground truth marks the run as solved (a critic's verdict alone never does)."""
    return result.outcome is not None and (result.outcome >= 1.0 or bool(result.success))


def state_text(result: TaskResult, limit: int = 600) -> str:
    """The text of the states a run went through (for matching entities)."""
    parts: list[str] = []
    for s in result.steps[:30]:
        parts.append(clean_observation(s.state_before.describe(limit)))
    parts.append(clean_observation(result.final_state.describe(limit)))
    return "\n".join(parts)

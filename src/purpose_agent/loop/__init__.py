"""The loop layer: the Orchestrator (act -> execute -> score -> record -> stop?) and the
learning that runs it after a task (the default learning path ``Learning``, validation
replays, training attempts, and the memory hook that joins the loop to the memory kernel).

It sits above ``critic`` and ``memory`` and below ``agents``; see docs/ARCHITECTURE.md."""

from __future__ import annotations

from purpose_agent.loop.learning import Learning
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.loop.replay import ReplayTask, ValidationReplay

__all__ = ["Learning", "Orchestrator", "ReplayTask", "ValidationReplay"]

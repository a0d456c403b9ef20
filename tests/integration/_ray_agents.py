"""Agents for the Ray swarm tests, importable by the Ray workers (their PYTHONPATH has this folder)."""

from __future__ import annotations

import os
from typing import Any

from purpose_agent.models.base import Message


class Asker:
    """Asks its model once per task and answers with the reply (a ScriptedModel: its replies in order)."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self.model = model

    async def arun(self, task: str) -> str:
        reply = await self.model.acomplete([Message("user", task)])
        return f"{task}={reply.text}"


class Dies:
    """Kills the process it runs in: always, or only on the first attempt (``marker`` is a file it
    creates the first time)."""

    def __init__(self, marker: str | None = None) -> None:
        self.name = "dies"
        self.marker = marker

    def run(self, task: str) -> str:
        if self.marker is None or not os.path.exists(self.marker):
            if self.marker is not None:
                open(self.marker, "w").close()
            os._exit(1)
        return f"survived {task}"

"""Compatibility path: the Orchestrator now lives in ``purpose_agent.loop.orchestrator`` (the
loop layer, above critic and memory; see docs/ARCHITECTURE.md). This module is kept for
scripts that still import the old path, and is the one exception the layer contract lists
(``[tool.importlinter]`` in pyproject.toml). New code imports ``purpose_agent.Orchestrator``."""

from purpose_agent.loop.orchestrator import MemoryHook, Orchestrator, Run

__all__ = ["MemoryHook", "Orchestrator", "Run"]

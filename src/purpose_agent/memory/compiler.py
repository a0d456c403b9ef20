"""The old import path of the memory prompt (``purpose_agent.memory.prompt``), kept for scripts."""

from purpose_agent.memory.prompt import (
    DEFAULT_WEIGHTS,
    EXAMPLES_TITLE,
    HEADER,
    MAX_EXAMPLES,
    CompiledMemories,
    approx_tokens,
    compile_memories,
    memory_score,
    render,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "EXAMPLES_TITLE",
    "HEADER",
    "MAX_EXAMPLES",
    "CompiledMemories",
    "approx_tokens",
    "compile_memories",
    "memory_score",
    "render",
]

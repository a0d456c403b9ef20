"""Integration fixtures: the real embedded model, loaded once per session."""

from __future__ import annotations

import pytest

from purpose_agent.models.local import LocalBackend


@pytest.fixture(scope="session")
def qwen15() -> LocalBackend:
    return LocalBackend("qwen2.5-coder-1.5b")

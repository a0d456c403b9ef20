"""Public names of purpose_agent.tools and the missing-extra error for MCP."""

from __future__ import annotations

import sys

import pytest

import purpose_agent.tools as tools
from purpose_agent.errors import MissingExtraError


def test_all_is_small_and_resolvable() -> None:
    assert len(tools.__all__) <= 20
    for name in tools.__all__:
        assert getattr(tools, name) is not None


def test_mcp_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # makes ``import mcp`` fail
    with pytest.raises(MissingExtraError, match=r"purpose-agent\[mcp\]"):
        tools.load_mcp_tools(sys.executable, ["-c", "pass"])

"""Every script in examples/ runs as written on the stand-in model (``--fake``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_there_are_examples() -> None:
    assert {p.name for p in SCRIPTS} >= {"quickstart.py", "spark_learns.py", "many_agents.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_an_example_runs_on_the_stand_in_model(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PURPOSE_AGENT_TRACE_DIR": str(tmp_path / "traces")}
    out = subprocess.run(
        [sys.executable, str(script), "--fake"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()
    if script.name == "quickstart.py":
        assert "def fibonacci(n: int) -> int" in out.stdout  # the taught lesson reached the second run
        assert "used in 1 runs" in out.stdout and "Always add type hints" in out.stdout


def test_the_readme_agents_section_runs_on_the_stand_in_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Agents\n", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```python\n")[1:]
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.setattr(sys, "argv", ["readme", "--fake"])
    import _fake

    for block in blocks:
        code = block.split("```", 1)[0]
        code = code.replace('model="local"', "model=FAKE").replace(
            'pa.purpose("Help me write Python code")', 'pa.purpose("Help me write Python code", model=FAKE)'
        )
        assert "local" not in code
        exec(compile(code, "README.md", "exec"), {"FAKE": _fake.model()})

"""The layer contract (docs/ARCHITECTURE.md, ``[tool.importlinter]`` in pyproject.toml): a
lower layer never imports a higher one, not even inside a function. ``make lint`` runs the
contract; these tests show it holds and that a deliberate violation breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is in the dev extra")


def _lint(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(project / "pyproject.toml"), "--no-cache"],
        cwd=project,
        env={"PYTHONPATH": str(project / "src"), "PATH": str(LINT.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(ROOT / "src" / "purpose_agent", project / "src" / "purpose_agent",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))  # fmt: skip
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    return project


def test_the_package_keeps_its_layers(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        # the cycle this contract removed: memory running the loop (a function-level import)
        ("memory/store.py", "purpose_agent.loop.orchestrator"),
        # the types layer reaching for a model
        ("core/types.py", "purpose_agent.models.base"),
        # critic and memory are siblings that do not import each other
        ("critic/rubric.py", "purpose_agent.memory.store"),
    ],
)
def test_an_upward_import_inside_a_function_breaks_the_contract(
    tmp_path: Path, module: str, upward: str
) -> None:
    project = _copy(tmp_path)
    path = project / "src" / "purpose_agent" / module
    path.write_text(path.read_text() + f"\n\ndef _violation() -> None:\n    import {upward}  # noqa\n")
    done = _lint(project)
    assert done.returncode != 0, done.stdout
    assert "BROKEN" in done.stdout and upward in done.stdout

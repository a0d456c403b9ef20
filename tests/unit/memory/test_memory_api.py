"""The public names of purpose_agent.memory, and that importing it does not import the immune system."""

from __future__ import annotations

import subprocess
import sys

import purpose_agent.memory as memory


def test_all_names_are_importable():
    for name in memory.__all__:
        assert getattr(memory, name) is not None, name
    assert len(memory.__all__) == len(set(memory.__all__)) < 30


def test_import_does_not_load_numpy_or_onnxruntime():
    # the immune system is pure Python and part of the public namespace (pa.ImmuneSystem);
    # the heavy optional dependencies stay unloaded until dense retrieval is used
    code = (
        "import sys, purpose_agent.memory\n"
        "bad = [m for m in ('numpy', 'onnxruntime') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

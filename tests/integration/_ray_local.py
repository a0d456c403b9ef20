"""One local Ray instance for a test module, its workers able to import the tests' helpers."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@contextlib.contextmanager
def local_ray(*paths: Path, missing: str) -> Iterator[Any]:
    """``ray.init()`` on this machine (2 CPUs, no dashboard) with ``paths`` on the workers'
    PYTHONPATH and on this process's ``sys.path`` (the first one is there already: the test's
    own folder); ``missing`` is the failure message when the ``ray`` extra is not installed."""
    try:
        import ray
    except ImportError:
        pytest.fail(missing)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (*map(str, paths), old) if p)
    added = [str(p) for p in paths[1:]]
    sys.path[:0] = added
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield ray
    finally:
        ray.shutdown()
        for p in added:
            sys.path.remove(p)
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old

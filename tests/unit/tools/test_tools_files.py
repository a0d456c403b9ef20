"""ReadFileTool / WriteFileTool escape tests. Each docstring names the check it relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from purpose_agent.errors import ToolError
from purpose_agent.tools import ReadFileTool, WriteFileTool


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "docs").mkdir(parents=True)
    (r / "docs" / "a.txt").write_text("hello")
    (tmp_path / "secret.txt").write_text("SECRET")
    return r


def test_read_and_write_inside_root(root: Path) -> None:
    assert ReadFileTool(root).run(path="docs/a.txt").output == "hello"
    w = WriteFileTool(root)
    assert w.run(path="out/new.txt", content="one").ok
    assert w.run(path="out/new.txt", content="two", append=True).ok
    assert (root / "out" / "new.txt").read_text() == "onetwo"
    os.symlink(root / "docs" / "a.txt", root / "inner-link")
    assert ReadFileTool(root).run(path="inner-link").output == "hello"


@pytest.mark.parametrize("path", ["../secret.txt", "docs/../../secret.txt", "..\\secret.txt"])
def test_traversal_is_refused(root: Path, path: str) -> None:
    """Relies on: rejecting '..' components before touching the filesystem."""
    r = ReadFileTool(root).run(path=path)
    assert not r.ok and "'..' is not allowed" in r.error
    w = WriteFileTool(root).run(path=path, content="x")
    assert not w.ok and "'..' is not allowed" in w.error
    assert (root.parent / "secret.txt").read_text() == "SECRET"


@pytest.mark.parametrize("path", ["/etc/passwd", "~/x", "C:/Windows/win.ini"])
def test_absolute_path_is_refused(root: Path, path: str) -> None:
    """Relies on: rejecting absolute, home-relative and drive paths."""
    r = ReadFileTool(root).run(path=path)
    assert not r.ok and "absolute paths are not allowed" in r.error
    assert not WriteFileTool(root).run(path=path, content="x").ok


def test_symlink_escape_is_refused(root: Path) -> None:
    """Relies on: resolving the path, then checking it stays under the root."""
    os.symlink(root.parent / "secret.txt", root / "leak.txt")
    os.symlink(root.parent, root / "updir")
    r = ReadFileTool(root).run(path="leak.txt")
    assert not r.ok and "resolves outside the root (symlink escape)" in r.error
    assert "SECRET" not in r.output
    w = WriteFileTool(root).run(path="updir/planted.txt", content="x")
    assert not w.ok and "symlink escape" in w.error
    assert not (root.parent / "planted.txt").exists()
    w2 = WriteFileTool(root).run(path="leak.txt", content="overwritten")
    assert not w2.ok and (root.parent / "secret.txt").read_text() == "SECRET"


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_device_file_via_symlink_is_refused(root: Path, device: str) -> None:
    """Relies on: symlink containment check (the device is outside the root)."""
    os.symlink(device, root / "dev")
    r = ReadFileTool(root).run(path="dev")
    assert not r.ok and "symlink escape" in r.error


def test_fifo_and_directory_are_refused(root: Path) -> None:
    """Relies on: only regular files (fstat after O_NONBLOCK open, so a FIFO cannot hang us)."""
    os.mkfifo(root / "pipe")
    r = ReadFileTool(root).run(path="pipe")
    assert not r.ok and "not a regular file" in r.error
    assert not ReadFileTool(root).run(path="docs").ok
    w = WriteFileTool(root).run(path="pipe", content="x")
    assert not w.ok and "not a regular file" in w.error


def test_size_limits(root: Path) -> None:
    """Relies on: the per-tool byte limits."""
    (root / "big.txt").write_text("x" * 2000)
    r = ReadFileTool(root, max_bytes=1000).run(path="big.txt")
    assert not r.ok and "too large" in r.error
    w = WriteFileTool(root, max_bytes=10).run(path="w.txt", content="y" * 11)
    assert not w.ok and "too large" in w.error


def test_missing_file_and_bad_root(root: Path, tmp_path: Path) -> None:
    r = ReadFileTool(root).run(path="nope.txt")
    assert not r.ok and "no such file" in r.error
    with pytest.raises(ToolError, match="not an existing directory"):
        ReadFileTool(tmp_path / "missing")

"""ReadFileTool / WriteFileTool escape tests. Each docstring names the check it relies on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from purpose_agent.errors import ToolError
from purpose_agent.tools import ReadFileTool, WriteFileTool
from purpose_agent.tools import files as files_module


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


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    out = tmp_path / "outside"
    out.mkdir()
    (out / "a.txt").write_text("SECRET")
    return out


def test_a_symlinked_intermediate_folder_is_refused(root: Path, outside: Path) -> None:
    """Relies on: resolving the whole path and checking containment before creating anything."""
    os.symlink(outside, root / "linked")
    r = ReadFileTool(root).run(path="linked/a.txt")
    assert not r.ok and "symlink escape" in r.error and "SECRET" not in r.output
    w = WriteFileTool(root).run(path="linked/deeper/new.txt", content="x")
    assert not w.ok and "symlink escape" in w.error
    assert sorted(p.name for p in outside.iterdir()) == ["a.txt"]


def _swap_for_symlink_after_the_check(monkeypatch: pytest.MonkeyPatch, victim: Path, target: Path) -> None:
    """Simulate a race: right after the path check, a folder inside the root becomes a symlink."""
    checked = files_module._safe_path

    def racing(root: Path, path: str) -> Path:
        resolved = checked(root, path)
        shutil.rmtree(victim)
        os.symlink(target, victim)
        return resolved

    monkeypatch.setattr(files_module, "_safe_path", racing)


def test_an_intermediate_folder_swapped_for_a_symlink_is_refused_on_read(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relies on: opening every component from a root descriptor with O_NOFOLLOW, not only the last."""
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_text("inside")
    _swap_for_symlink_after_the_check(monkeypatch, root / "sub", outside)
    r = ReadFileTool(root).run(path="sub/a.txt")
    assert not r.ok and "symlink" in r.error
    assert "SECRET" not in r.output


def test_an_intermediate_folder_swapped_for_a_symlink_is_refused_on_write(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relies on: parent folders are created one at a time under checked descriptors, so
    nothing is created outside the root (no mkdir(parents=True) through a symlink)."""
    (root / "sub").mkdir()
    _swap_for_symlink_after_the_check(monkeypatch, root / "sub", outside)
    w = WriteFileTool(root).run(path="sub/deeper/new.txt", content="x")
    assert not w.ok and "symlink" in w.error
    assert sorted(p.name for p in outside.iterdir()) == ["a.txt"]  # no 'deeper' made outside


def test_a_hard_link_to_a_file_outside_the_root_is_refused(root: Path, tmp_path: Path) -> None:
    """Relies on: refusing any regular file with more than one link (st_nlink > 1)."""
    os.link(tmp_path / "secret.txt", root / "hard.txt")
    r = ReadFileTool(root).run(path="hard.txt")
    assert not r.ok and "hard link" in r.error and "SECRET" not in r.output
    for append in (False, True):
        w = WriteFileTool(root).run(path="hard.txt", content="overwritten", append=append)
        assert not w.ok and "hard link" in w.error
    assert (tmp_path / "secret.txt").read_text() == "SECRET"

"""``ReadFileTool`` / ``WriteFileTool``: file access sandboxed to a root directory.

Paths are relative to the root. Refused: absolute paths, ``..`` components, anything that
resolves outside the root (symlink escape: resolve, then check containment), anything that is
not a regular file (devices, FIFOs, sockets, directories), files with more than one hard
link (a hard link can point at a file outside the root) and files above the size limit.

The check is done once on the resolved path (so a symlink inside the root that points inside
the root works), then the resolved path is opened one component at a time from a descriptor
of the root, every component with ``O_NOFOLLOW`` (folders also with ``O_DIRECTORY``): a folder
swapped for a symlink after the check is refused, not followed. Missing parent folders of a
written file are created only after the check, one at a time under those descriptors, so
nothing is ever created outside the root. The file itself is opened with ``O_NOFOLLOW`` and
``O_NONBLOCK`` and its descriptor re-checked (regular, one link, size).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from purpose_agent.errors import ToolError
from purpose_agent.tools.base import BaseTool, ToolResult


class _Refused(Exception):
    """A path or file the sandbox refuses, with a message for the model."""


def _safe_path(root: Path, path: str) -> Path:
    """Resolve ``path`` under ``root`` or raise _Refused."""
    if not isinstance(path, str) or not path.strip():
        raise _Refused("the path is empty")
    if "\x00" in path:
        raise _Refused("the path contains a NUL character")
    text = path.strip().replace("\\", "/")
    pure = PurePosixPath(text)
    if pure.is_absolute() or text.startswith("~") or (len(text) > 1 and text[1] == ":"):
        raise _Refused(f"absolute paths are not allowed ({path!r}); use a path relative to the root")
    if ".." in pure.parts:
        raise _Refused(f"'..' is not allowed in paths ({path!r})")
    candidate = root.joinpath(*pure.parts)
    resolved = candidate.resolve(strict=False)
    if resolved != root and root not in resolved.parents:
        raise _Refused(f"{path!r} resolves outside the root (symlink escape)")
    return resolved


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_NOFOLLOW | _CLOEXEC


def _open_parent(root: Path, target: Path, shown: str, *, create: bool) -> tuple[int, str]:
    """Open the folder holding ``target`` (a resolved path inside ``root``) by walking from the
    root without following any symlink; with ``create``, missing folders are made on the way.
    Return the folder's descriptor (the caller closes it) and the file's name."""
    parts = target.relative_to(root).parts
    if not parts:
        raise _Refused("the path names the root folder, not a file")
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            try:
                child = _open_dir(part, fd, shown)
            except FileNotFoundError:
                if not create:
                    raise _Refused(f"no such file: {shown!r}") from None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                child = _open_dir(part, fd, shown)
            os.close(fd)
            fd = child
        return fd, parts[-1]
    except BaseException:
        os.close(fd)
        raise


def _open_dir(part: str, dir_fd: int, shown: str) -> int:
    """Open the folder ``part`` under ``dir_fd``; a symlink (or a non-folder) is refused."""
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _Refused(
                f"{shown!r}: {part!r} is a symlink or not a folder, which is not allowed here"
            ) from None
        raise


def _check_links(info: os.stat_result, shown: str) -> None:
    if info.st_nlink > 1:
        raise _Refused(f"{shown!r} has other hard links ({info.st_nlink}), which is not allowed here")


class _FileTool(BaseTool):
    def __init__(self, root: str | os.PathLike[str], max_bytes: int) -> None:
        base = Path(root)
        if not base.is_dir():
            raise ToolError(f"file tool root {str(base)!r} is not an existing directory")
        self.root = base.resolve()
        self.max_bytes = max_bytes
        self.timeout = 10.0

    def _resolve(self, path: str) -> Path:
        return _safe_path(self.root, path)


class ReadFileTool(_FileTool):
    """Reads a UTF-8 text file under the root."""

    def __init__(
        self, root: str | os.PathLike[str], *, max_bytes: int = 1_000_000, name: str = "read_file"
    ) -> None:
        super().__init__(root, max_bytes)
        self.name = name
        self.description = "Read a text file. The path is relative to the working folder."
        self.parameters = {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "relative file path"}},
            "required": ["path"],
            "additionalProperties": False,
        }

    async def _arun(self, **kwargs: Any) -> ToolResult:
        path: str = kwargs["path"]
        try:
            target = self._resolve(path)
            data = _read_regular(self.root, target, self.max_bytes, path)
        except _Refused as exc:
            return ToolResult.failure(f"read_file refused: {exc}", kind="refused")
        except OSError as exc:
            return ToolResult.failure(f"read_file failed for {path!r}: {exc.strerror or exc}", kind="error")
        text = data.decode("utf-8", errors="replace")
        return ToolResult.success(text, text, path=path, bytes=len(data))


def _read_regular(root: Path, target: Path, max_bytes: int, shown: str) -> bytes:
    parent, name = _open_parent(root, target, shown, create=False)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC, dir_fd=parent)
    except FileNotFoundError:
        raise _Refused(f"no such file: {shown!r}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _Refused(f"{shown!r} is a symlink, which is not allowed here") from None
        raise
    finally:
        os.close(parent)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{shown!r} is not a regular file (devices, FIFOs and directories are refused)")
        _check_links(info, shown)
        if info.st_size > max_bytes:
            raise _Refused(f"{shown!r} is too large ({info.st_size} bytes, limit {max_bytes})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _Refused(f"{shown!r} is too large (limit {max_bytes} bytes)")
        return data
    finally:
        os.close(fd)


class WriteFileTool(_FileTool):
    """Writes (or appends) a UTF-8 text file under the root, creating parent folders."""

    def __init__(
        self, root: str | os.PathLike[str], *, max_bytes: int = 1_000_000, name: str = "write_file"
    ) -> None:
        super().__init__(root, max_bytes)
        self.name = name
        self.description = "Write text to a file. The path is relative to the working folder."
        self.parameters = {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "relative file path"},
                "content": {"type": "string", "description": "the text to write"},
                "append": {"type": "boolean", "description": "append instead of replacing", "default": False},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        }

    async def _arun(self, **kwargs: Any) -> ToolResult:
        path: str = kwargs["path"]
        content: str = kwargs["content"]
        append = bool(kwargs.get("append", False))
        data = content.encode("utf-8")
        try:
            target = self._resolve(path)
            if target == self.root:
                raise _Refused("the path names the root folder, not a file")
            _write_regular(self.root, target, data, append, self.max_bytes, path)
        except _Refused as exc:
            return ToolResult.failure(f"write_file refused: {exc}", kind="refused")
        except OSError as exc:
            return ToolResult.failure(f"write_file failed for {path!r}: {exc.strerror or exc}", kind="error")
        return ToolResult.success(f"wrote {len(data)} bytes to {path}", None, path=path, bytes=len(data))


def _write_regular(root: Path, target: Path, data: bytes, append: bool, max_bytes: int, shown: str) -> None:
    if len(data) > max_bytes:
        raise _Refused(f"content too large ({len(data)} bytes, limit {max_bytes})")
    parent, name = _open_parent(root, target, shown, create=True)  # only after the path check
    try:
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(f"{shown!r} exists and is not a regular file")
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
        flags |= os.O_APPEND if append else 0
        try:
            fd = os.open(name, flags, 0o644, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refused(f"{shown!r} is a symlink, which is not allowed here") from None
            raise
    finally:
        os.close(parent)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{shown!r} is not a regular file")
        _check_links(info, shown)
        if append and info.st_size + len(data) > max_bytes:
            raise _Refused(f"{shown!r} would exceed the size limit ({max_bytes} bytes)")
        if not append:
            os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)

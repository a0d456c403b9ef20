"""``ReadFileTool`` / ``WriteFileTool``: file access sandboxed to a root directory.

Paths are relative to the root. Refused: absolute paths, ``..`` components, anything that
resolves outside the root (symlink escape: resolve, then check containment), anything that is
not a regular file (devices, FIFOs, sockets, directories) and files above the size limit.
Opening uses ``O_NOFOLLOW`` and ``O_NONBLOCK`` and re-checks the opened descriptor, so a path
swapped for a symlink or FIFO after the check is still refused.
"""

from __future__ import annotations

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
            data = _read_regular(target, self.max_bytes, path)
        except _Refused as exc:
            return ToolResult.failure(f"read_file refused: {exc}", kind="refused")
        except OSError as exc:
            return ToolResult.failure(f"read_file failed for {path!r}: {exc.strerror or exc}", kind="error")
        text = data.decode("utf-8", errors="replace")
        return ToolResult.success(text, text, path=path, bytes=len(data))


def _read_regular(target: Path, max_bytes: int, shown: str) -> bytes:
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise _Refused(f"no such file: {shown!r}") from None
    except OSError as exc:
        if exc.errno == getattr(os, "ELOOP", -1):
            raise _Refused(f"{shown!r} is a symlink, which is not allowed here") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{shown!r} is not a regular file (devices, FIFOs and directories are refused)")
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
    if target.exists() or target.is_symlink():
        info = os.lstat(target)
        if not stat.S_ISREG(info.st_mode):
            raise _Refused(f"{shown!r} exists and is not a regular file")
        if append and info.st_size + len(data) > max_bytes:
            raise _Refused(f"{shown!r} would exceed the size limit ({max_bytes} bytes)")
    if len(data) > max_bytes:
        raise _Refused(f"content too large ({len(data)} bytes, limit {max_bytes})")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.parent.resolve() != root and root not in target.parent.resolve().parents:
        raise _Refused(f"{shown!r} resolves outside the root (symlink escape)")
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if append else 0
    fd = os.open(target, flags, 0o644)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Refused(f"{shown!r} is not a regular file")
        if not append:
            os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)

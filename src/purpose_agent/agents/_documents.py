"""Reading documents for the Vault: text, Markdown and code as UTF-8, PDF through ``pypdf``.

Also the chunker: windows of words or lines with an overlap. Word windows are cut from the
original text, so newlines and indentation (code, Markdown lists) survive inside a chunk.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from purpose_agent.errors import ConfigurationError, MissingExtraError, PurposeAgentError

ChunkUnit = Literal["words", "lines"]
PDF_EXTRA = "vault"
#: Bytes looked at to tell text from binary (a NUL byte in them means binary).
_SNIFF = 8192
_WORDS = re.compile(r"\S+")


class UnreadableDocumentError(PurposeAgentError):
    """A file the Vault cannot index (binary, unreadable, not UTF-8, a damaged PDF); the
    message is the reason shown in the warning."""


@dataclass(frozen=True, slots=True)
class ChunkSpec:
    """How documents are cut: ``size`` words (or lines) per chunk, ``overlap`` shared with the next."""

    size: int = 200
    overlap: int = 40
    unit: ChunkUnit = "words"

    def __post_init__(self) -> None:
        if self.unit not in ("words", "lines"):
            raise ConfigurationError(f"chunk unit must be 'words' or 'lines', got {self.unit!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 1:
            raise ConfigurationError(f"chunk_size must be a positive integer, got {self.size!r}")
        if (
            not isinstance(self.overlap, int)
            or isinstance(self.overlap, bool)
            or not 0 <= self.overlap < self.size
        ):
            raise ConfigurationError(
                f"chunk_overlap must be an integer from 0 to chunk_size - 1 ({self.size - 1}), "
                f"got {self.overlap!r}"
            )


def chunk_text(text: str, spec: ChunkSpec) -> list[str]:
    """Cut ``text`` into overlapping windows; whitespace-only text gives no chunk."""
    step = spec.size - spec.overlap
    if spec.unit == "words":
        spans = [m.span() for m in _WORDS.finditer(text)]
        out: list[str] = []
        for start in range(0, len(spans), step):
            window = spans[start : start + spec.size]
            out.append(text[window[0][0] : window[-1][1]])
            if start + spec.size >= len(spans):
                break
        return out
    lines = text.splitlines()
    out = []
    for start in range(0, len(lines), step):
        piece = "\n".join(lines[start : start + spec.size]).strip("\n")
        if piece.strip():
            out.append(piece.rstrip())
        if start + spec.size >= len(lines):
            break
    return out


def _check_file(path: Path, max_bytes: int) -> None:
    """Refuse what is not a regular, readable file of at most ``max_bytes`` (a FIFO would block)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise UnreadableDocumentError(f"unreadable: {exc.strerror or type(exc).__name__}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableDocumentError("not a regular file")
    if st.st_size > max_bytes:
        raise UnreadableDocumentError(f"too large ({st.st_size} bytes > max_file_bytes={max_bytes})")


def read_pdf(path: Path, max_bytes: int) -> str:
    """The text of every page, pages separated by a blank line (needs the ``vault`` extra)."""
    _check_file(path, max_bytes)
    try:
        import pypdf
    except ImportError as exc:
        raise MissingExtraError("pypdf", PDF_EXTRA, "reading PDF files") from exc
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted:
            raise UnreadableDocumentError("encrypted PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableDocumentError:
        raise
    except Exception as exc:  # pypdf raises many kinds on a damaged file
        raise UnreadableDocumentError(f"unreadable PDF: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UnreadableDocumentError("PDF has no extractable text (scanned images?)")
    return text


def read_text(path: Path, max_bytes: int) -> str:
    """A UTF-8 text file (a BOM is dropped); UnreadableDocumentError for a binary, non-UTF-8
    or unreadable file."""
    _check_file(path, max_bytes)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableDocumentError(f"unreadable: {exc.strerror or type(exc).__name__}") from exc
    if b"\x00" in data[:_SNIFF]:
        raise UnreadableDocumentError("binary")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocumentError(f"not UTF-8 text (byte {exc.start})") from exc


def is_pdf(path: Path) -> bool:
    return path.suffix.lower() == ".pdf"


def walk_files(root: Path, recursive: bool, include_hidden: bool) -> Iterator[Path]:
    """Files under ``root`` in a stable order; symlinked directories are not entered."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        if not recursive:
            dirnames.clear()
        elif not include_hidden:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in sorted(filenames):
            if include_hidden or not name.startswith("."):
                yield Path(dirpath) / name


def norm_ext(ext: str) -> str:
    """A file extension as the directory walk compares it: lower case, with its dot."""
    ext = ext.strip().lower()
    return ext if ext.startswith(".") else f".{ext}"

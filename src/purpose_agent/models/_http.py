"""HTTP plumbing shared by the network backends: one pooled client per backend and event loop,
retries with backoff, timeouts, error mapping, and the offline guard used under test."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from purpose_agent.errors import (
    AuthenticationError,
    BackendError,
    ModelNotFoundError,
    NetworkBlockedError,
)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
OFFLINE_ENV = "PURPOSE_AGENT_OFFLINE"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter on transient failures (timeouts, 429, 5xx)."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_delay)
        d: float = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        return d * (0.5 + random.random() / 2)


async def _close_at_loop_shutdown(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """Suspended once started; the event loop closes it (``shutdown_asyncgens``, which
    ``asyncio.run`` and every runner call) when it shuts down, and that closes the client."""
    try:
        yield
    finally:
        await client.aclose()


@dataclass
class _Pooled:
    client: httpx.AsyncClient
    keeper: AsyncGenerator[None, None]


class ClientPool:
    """One pooled ``httpx.AsyncClient`` per backend (connections kept alive between calls).

    An ``AsyncClient`` belongs to the event loop it runs on, and the sync wrappers run each call
    in a fresh loop, so the pool keeps one client per live loop: reused by every call on that
    loop, closed by ``aclose`` or when its loop shuts down, whichever comes first."""

    def __init__(self, factory: Callable[[], httpx.AsyncClient]) -> None:
        self._factory = factory
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pooled] = (
            weakref.WeakKeyDictionary()
        )
        self.created = 0  # clients opened so far (a test checks the pooling)
        self._lock = threading.Lock()  # loops in several threads may share the backend

    async def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            pooled = self._by_loop.get(loop)
        if pooled is not None and not pooled.client.is_closed:
            return pooled.client
        client = self._factory()
        keeper = _close_at_loop_shutdown(client)
        await keeper.asend(None)  # runs to its first yield without suspending: no race in a loop
        with self._lock:
            self._by_loop[loop] = _Pooled(client, keeper)
            self.created += 1
        return client

    def clients(self) -> list[httpx.AsyncClient]:
        with self._lock:
            return [p.client for p in self._by_loop.values()]

    async def aclose(self) -> None:
        """Close every client: those of this loop here, those of another live loop on it."""
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        with self._lock:
            entries = list(self._by_loop.items())
            self._by_loop.clear()
        for loop, pooled in entries:
            if loop is current:
                await pooled.keeper.aclose()
            elif not loop.is_closed() and loop.is_running():
                done = asyncio.run_coroutine_threadsafe(pooled.keeper.aclose(), loop)
                await asyncio.wait_for(asyncio.wrap_future(done), timeout=5)
            # a loop that has shut down closed its client already


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_network_allowed(url: str) -> None:
    """Under ``PURPOSE_AGENT_OFFLINE=1`` only loopback addresses may be called."""
    if os.environ.get(OFFLINE_ENV) == "1" and not is_loopback_url(url):
        raise NetworkBlockedError(
            f"refusing to call {urlsplit(url).hostname!r}: {OFFLINE_ENV}=1 allows only 127.0.0.1/localhost "
            "(tests must use ScriptedModel, FunctionModel or a local server)"
        )


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _raise_for(resp: httpx.Response, what: str) -> None:
    body = resp.text[:500]
    if resp.status_code in (401, 403):
        raise AuthenticationError(f"{what}: the API key was rejected (HTTP {resp.status_code}): {body}")
    if resp.status_code == 404:
        raise ModelNotFoundError(f"{what}: not found (HTTP 404) - check the model id and base URL: {body}")
    raise BackendError(f"{what}: HTTP {resp.status_code}: {body}")


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    policy: RetryPolicy,
    what: str,
) -> dict[str, Any]:
    """POST with retries; returns the decoded JSON body or raises a BackendError subclass."""
    check_network_allowed(url)
    last: Exception | None = None
    for attempt in range(1, policy.attempts + 1):
        retry_after: float | None = None
        try:
            resp = await client.post(url, json=payload, headers=dict(headers), timeout=policy.timeout)
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            last = exc
        else:
            if resp.status_code < 400:
                try:
                    data = resp.json()
                except ValueError as exc:
                    raise BackendError(f"{what}: the server sent invalid JSON: {resp.text[:300]}") from exc
                if not isinstance(data, dict):
                    raise BackendError(f"{what}: expected a JSON object, got {type(data).__name__}")
                return data
            if resp.status_code not in RETRY_STATUS:
                _raise_for(resp, what)
            last = BackendError(f"{what}: HTTP {resp.status_code}: {resp.text[:300]}")
            retry_after = _retry_after(resp)
        if attempt < policy.attempts:
            await policy.sleep(policy.delay(attempt, retry_after))
    raise BackendError(f"{what}: failed after {policy.attempts} attempts: {last}") from last


async def stream_lines(
    client: httpx.AsyncClient,
    url: str,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    policy: RetryPolicy,
    what: str,
) -> AsyncGenerator[str, None]:
    """POST and yield response lines as they arrive (SSE or NDJSON).

    Failures before the first line (connection errors, timeouts, 429/5xx) are retried like
    ``post_json``. Once a line has been yielded nothing is retried: a stream that breaks later
    raises ``BackendError``, so the caller never receives a line (a token) twice."""
    check_network_allowed(url)
    sent = 0
    for attempt in range(1, policy.attempts + 1):
        try:
            async with client.stream(
                "POST", url, json=payload, headers=dict(headers), timeout=policy.timeout
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    if resp.status_code in RETRY_STATUS and attempt < policy.attempts:
                        await policy.sleep(policy.delay(attempt, _retry_after(resp)))
                        continue
                    _raise_for(resp, what)
                async for line in resp.aiter_lines():
                    if line.strip():
                        sent += 1
                        yield line
                return
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            if sent:
                raise BackendError(
                    f"{what}: the stream broke after {sent} lines ({type(exc).__name__}: {exc}); "
                    "not retried, so nothing already received is sent again"
                ) from exc
            if attempt >= policy.attempts:
                raise BackendError(f"{what}: failed after {policy.attempts} attempts: {exc}") from exc
            await policy.sleep(policy.delay(attempt))


def loads_or_none(line: str) -> dict[str, Any] | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None

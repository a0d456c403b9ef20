"""``swarm(..., executor="ray")`` on a local Ray instance (``ray.init()`` on this machine; no model
is loaded): the same results as the local executor, workers sharing one PostgreSQL memory, and a
worker that dies mid-run retried or reported, never lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _ray_local import local_ray

import purpose_agent as pa
from purpose_agent.errors import ConfigurationError
from purpose_agent.memory import MemoryStatus

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
AGENTS = HERE.parent / "unit" / "agents"


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """One local Ray instance for the module; the workers import this folder's helpers."""
    with local_ray(
        HERE, AGENTS, missing="swarm(executor='ray') needs the ray extra: run `make install-test`"
    ) as ray:
        yield ray


def _askers() -> list[Any]:
    from _ray_agents import Asker

    return [Asker(n, pa.ScriptedModel([f"reply of {n}"])) for n in ("x", "y", "z")]


def _key(results: list[pa.RunResult]) -> list[tuple[Any, ...]]:
    return [(r.task, r.output, r.success, r.phi, r.steps, r.agent, r.error) for r in results]


def test_scripted_agents_give_the_same_results_on_ray_as_locally(ray_local):
    tasks = ["a", "b", "c"]
    local = pa.swarm(tasks, _askers(), max_concurrency=2)
    on_ray = pa.swarm(tasks, _askers(), max_concurrency=2, executor="ray")
    assert _key(on_ray) == _key(local)
    assert [r.output for r in on_ray] == ["a=reply of x", "b=reply of y", "c=reply of z"]
    [exhausted] = pa.swarm(["d"], [_askers()[0]], executor="ray")  # one reply only: a second call fails
    assert exhausted.ok  # its own copy of the script starts from the first reply


def test_sparks_on_ray_share_one_postgresql_memory(ray_local, pg_url):
    from _agent_models import Fake, done

    def actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
        task = prompt.split("TASK: ")[1].split("\n")[0]
        return done(task.upper() + (" in metres" if "metric units" in prompt else ""))

    def sparks() -> list[pa.Spark]:
        store = pa.MemoryStore(pg_url, embedder=None)
        return [pa.Spark(n, model=Fake(actor).model, memory=store) for n in ("ann", "ben")]

    with pa.MemoryStore(pg_url, embedder=None) as store:
        taught = store.add("Answer in metric units", "user_preference", status="promoted", made_by="human")
    tasks = ["one", "two", "three", "four"]
    local = pa.swarm(tasks, sparks(), max_concurrency=2)
    with pa.MemoryStore(pg_url, embedder=None) as store:
        included_locally = store.get(taught).times_included
    on_ray = pa.swarm(tasks, sparks(), max_concurrency=2, executor="ray")
    assert _key(on_ray) == _key(local)
    assert [r.output for r in on_ray] == [
        "ONE in metres",
        "TWO in metres",
        "THREE in metres",
        "FOUR in metres",
    ]
    with pa.MemoryStore(pg_url, embedder=None) as store:  # the workers wrote to the shared memory
        assert included_locally == len(tasks)
        assert store.get(taught).times_included == 2 * len(tasks)
        assert store.get(taught).status is MemoryStatus.PROMOTED


def test_a_worker_that_dies_is_retried_then_reported(ray_local, tmp_path):
    from _ray_agents import Dies

    results = pa.swarm(
        ["once", "always", "fine"],
        [Dies(str(tmp_path / "died-once")), Dies(None), _askers()[0]],
        executor="ray",
    )
    assert results[0].ok and results[0].output == "survived once"  # retried on a new worker
    assert not results[1].ok and "worker" in (results[1].error or "") and "died" in (results[1].error or "")
    assert results[2].ok and results[2].output == "fine=reply of x"  # the others go on


def test_an_unknown_executor_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="unknown executor"):
        pa.swarm(["a"], _askers(), executor="dask")  # type: ignore[arg-type]


def test_an_agent_that_cannot_be_sent_is_a_clear_error(ray_local):
    class Holds:
        name = "holds"

        def __init__(self) -> None:
            self.gen = (x for x in [1])  # a generator does not pickle

        def run(self, task: str) -> str:
            return task

    with pytest.raises(ConfigurationError, match="cannot be sent to a Ray worker"):
        pa.swarm(["a"], Holds(), executor="ray")


def test_an_openai_compatible_model_is_rebuilt_on_the_worker(ray_local):
    from _ray_agents import Asker

    endpoint = pa.resolve_backend("openai:gpt-4o-mini", api_key="k", base_url="http://127.0.0.1:9/v1")
    local = pa.swarm(["a"], Asker("net", endpoint))
    [on_ray] = pa.swarm(["a"], Asker("net", endpoint), executor="ray")
    assert (
        not on_ray.ok and on_ray.error == local[0].error
    )  # the same call failed the same way, on the worker
    assert "cannot be sent" not in (on_ray.error or "")


def test_a_local_model_server_is_not_sent_to_workers(ray_local):
    from _ray_agents import Asker

    backend = pa.resolve_backend("local-server:qwen2.5-coder-1.5b")  # not started: nothing is loaded
    with pytest.raises(ConfigurationError, match="OpenAI-compatible endpoint"):
        pa.swarm(["a"], Asker("local", backend), executor="ray")

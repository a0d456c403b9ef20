"""TextWorldExpress environments share one engine (one JVM, one game at a time): games played
interleaved, or from several threads, each see exactly what they see when played alone."""

from __future__ import annotations

import importlib.util
import shutil
import threading

import pytest

from purpose_agent.core.types import Action, State

TWX = importlib.util.find_spec("textworld_express") is not None and shutil.which("java") is not None
pytestmark = pytest.mark.skipif(not TWX, reason="needs textworld-express (bench extra) and Java 17")

STEPS = 6


def _games(n: int = 3) -> list[object]:
    """``n`` training games whose first steps (as played here) differ from one another."""
    from purpose_agent.envs.textworld import GameSpec, TextWorldExpressEnvironment, game_seeds

    games, traces = [], set()
    for seed in game_seeds("cookingworld", "train")[:40]:
        env = TextWorldExpressEnvironment(GameSpec("cookingworld", seed, "train"))
        trace = tuple(_alone(env))
        if trace not in traces:
            games.append(env)
            traces.add(trace)
        if len(games) == n:
            return games
    raise AssertionError("fewer than 3 distinct cookingworld games in the first 40 training seeds")


def _pick(state: State, step: int) -> Action:
    valid = state.data["valid_actions"]
    return Action(valid[(3 * step + 1) % len(valid)])


def _alone(env: object) -> list[str]:
    state = env.reset()  # type: ignore[attr-defined]
    seen = [state.summary]
    for i in range(STEPS):
        state = env.execute(_pick(state, i), state)  # type: ignore[attr-defined]
        seen.append(state.summary)
    return seen


def test_games_played_in_turns_see_what_they_see_alone() -> None:
    games = _games()
    alone = [_alone(g) for g in games]
    states = [g.reset() for g in games]  # type: ignore[attr-defined]
    seen = [[s.summary] for s in states]
    for i in range(STEPS):
        for j, g in enumerate(games):  # each step of one game comes after a step of every other
            states[j] = g.execute(_pick(states[j], i), states[j])  # type: ignore[attr-defined]
            seen[j].append(states[j].summary)
    assert seen == alone


def test_games_played_from_threads_at_once_see_what_they_see_alone() -> None:
    games = _games()
    alone = [_alone(g) for g in games]
    got: list[list[str]] = [[] for _ in games]
    start = threading.Barrier(len(games))

    def play(j: int) -> None:
        start.wait()
        got[j] = _alone(games[j])

    threads = [threading.Thread(target=play, args=(j,)) for j in range(len(games))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got == alone

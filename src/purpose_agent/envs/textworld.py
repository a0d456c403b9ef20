"""TextWorldExpress games (cookingworld, coin, mapreader, ...) as Environments with ground truth.

Needs the ``bench`` extra (``textworld-express==1.1.0``, Java 17). Games come from the official
train / dev / test seed folds; nothing is downloaded. The valid commands of each turn are
offered as the actor's actions, so a (grammar-constrained) actor can only pick a valid one.
One JVM is shared by every environment of the process, and it holds one game at a time. Each
environment keeps the commands it has played; when another environment has used the engine
since, it resets its own game (same seed and fold) and plays them again before its next step.
The games are deterministic, so runs in several threads at once (a benchmark's concurrent test
episodes) each see exactly the game they would see alone; a replay costs milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from purpose_agent.core.environment import ActionSpec, Environment
from purpose_agent.core.types import Action, State

Fold = Literal["train", "dev", "test"]

#: small settings a 1.5B model can finish within ~10 steps
GAME_PARAMS: dict[str, str] = {
    "coin": "numLocations=3,numDistractorItems=0,includeDoors=0,limitInventorySize=0",
    "mapreader": "numLocations=3,maxDistanceApart=2,includeDoors=0,maxDistractorItemsPerLocation=0",
    "cookingworld": "numLocations=1,numIngredients=1,numDistractorItems=0,includeDoors=0,limitInventorySize=0",
}

_lock = threading.RLock()
_shared: dict[str, Any] = {}


def _engine(step_limit: int) -> Any:
    """The process-wide TextWorldExpress engine (one JVM)."""
    with _lock:
        if "env" not in _shared:
            try:
                from textworld_express import TextWorldExpressEnv
            except ImportError as exc:
                raise ImportError(
                    "TextWorldExpress needs the bench extra: pip install 'purpose-agent[bench]' (and Java 17)"
                ) from exc
            _shared["env"] = TextWorldExpressEnv(envStepLimit=step_limit)
            _shared["loaded"] = None
            _shared["owner"] = None
        return _shared["env"]


def game_seeds(game: str, fold: Fold, params: str | None = None) -> list[int]:
    """The official seeds of a fold (train / dev / test)."""
    with _lock:
        env = _load(game, params or GAME_PARAMS.get(game, ""))
        seeds = {"train": env.getValidSeedsTrain, "dev": env.getValidSeedsDev, "test": env.getValidSeedsTest}[
            fold
        ]()
        return [int(s) for s in seeds]


def _load(game: str, params: str, step_limit: int = 100) -> Any:
    env = _engine(step_limit)
    if _shared.get("loaded") != (game, params):
        env.load(gameName=game, gameParams=params)
        _shared["loaded"] = (game, params)
        _shared["owner"] = None  # loading a game ends whichever was being played
    return env


@dataclass(frozen=True)
class GameSpec:
    game: str
    seed: int
    fold: Fold
    params: str = ""

    @property
    def id(self) -> str:
        return f"twx-{self.game}-{self.fold}-{self.seed}"


class TextWorldExpressEnvironment(Environment):
    """One game. State: the observation, score (0..1), moves, and the valid commands.
    Ground truth: 1.0 when the game reports success, else the game's score (partial)."""

    def __init__(self, spec: GameSpec) -> None:
        self.spec = spec
        self.task_description = ""
        #: the commands played since the last reset (the engine is shared: see the module doc)
        self._played: list[str] = []

    def _state(self, obs: str, infos: dict[str, Any]) -> State:
        valid = sorted(str(a) for a in infos.get("validActions", []))
        score = float(infos.get("score", 0.0))
        success = bool(infos.get("tasksuccess", False))
        done = bool(infos.get("done", False)) or success or bool(infos.get("taskfailure", False))
        data = {
            "observation": obs.strip(),
            "score": score,
            "success": success,
            "failure": bool(infos.get("taskfailure", False)),
            "done": done,
            "valid_actions": valid,
        }
        summary = f"{obs.strip()}\nScore: {score:.2f}" + (" (task complete)" if success else "")
        return State(data, summary)

    def _reset_engine(self) -> tuple[Any, Any, dict[str, Any]]:
        """This game, from its start, on the shared engine (the caller holds ``_lock``)."""
        env = _load(self.spec.game, self.spec.params or GAME_PARAMS.get(self.spec.game, ""))
        obs, infos = env.reset(seed=self.spec.seed, gameFold=self.spec.fold, generateGoldPath=False)
        _shared["owner"] = self
        return env, obs, infos

    def reset(self) -> State:
        with _lock:
            _env, obs, infos = self._reset_engine()
            self._played = []
            self.task_description = str(infos.get("taskDescription", ""))
            return self._state(str(obs), infos)

    def actions(self, state: State) -> Sequence[ActionSpec]:
        return [ActionSpec(a, "") for a in state.data.get("valid_actions", [])]

    def execute(self, action: Action, state: State) -> State:
        if action.name not in state.data.get("valid_actions", []):
            return state  # DONE or an invalid command: nothing happens in the game
        with _lock:
            if _shared.get("owner") is not self:  # another game ran since: back to where this one was
                env, _obs, _infos = self._reset_engine()
                for command in self._played:
                    env.step(command)
            obs, _reward, _done, infos = _engine(100).step(action.name)
            self._played.append(action.name)
            return self._state(str(obs), infos)

    def is_terminal(self, state: State) -> bool:
        return bool(state.data.get("done"))

    def outcome(self, state: State) -> float | None:
        if state.data.get("success"):
            return 1.0
        return max(0.0, min(1.0, float(state.data.get("score", 0.0))))

"""Task sources for the learning benchmarks: each is a function seed -> tasks with splits.

A benchmark seed picks which games / instances land in each split (disjoint official folds or
templates) and the model's sampling seeds, so seeds vary both the tasks and the sampling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from purpose_agent.core.environment import Environment
from purpose_agent.evals.tasks import BenchmarkTask, Split


@dataclass(frozen=True)
class Size:
    """How many tasks per split (per game or family), how many steps a run may take."""

    train: int
    validation: int
    test: int
    max_steps: int


TWX_FOLD = {"train": "train", "validation": "dev", "test": "test"}


def textworld(
    games: Sequence[str], size: Size, params: str | None = None
) -> Callable[[int], list[BenchmarkTask]]:
    """TextWorldExpress games from the official folds: train → train, validation → dev,
    test → test. Seed ``s`` takes the ``s``-th slice of each fold. ``params``: the game
    parameters (default: ``envs.textworld.GAME_PARAMS`` of the game)."""
    from purpose_agent.envs import textworld as tw

    def build(seed: int) -> list[BenchmarkTask]:
        out: list[BenchmarkTask] = []
        for game in games:
            p = params if params is not None else tw.GAME_PARAMS.get(game, "")
            for split, n in (("train", size.train), ("validation", size.validation), ("test", size.test)):
                fold = TWX_FOLD[split]
                seeds = tw.game_seeds(game, fold, p)  # type: ignore[arg-type]
                picked = seeds[seed * n : (seed + 1) * n]
                if len(picked) < n:
                    raise ValueError(f"{game}: the {fold} fold has too few games for seed {seed} ({n} each)")
                for gs in picked:
                    spec = tw.GameSpec(game, gs, fold, p)  # type: ignore[arg-type]
                    env = tw.TextWorldExpressEnvironment(spec)
                    env.reset()  # reads the task description (milliseconds)
                    out.append(
                        BenchmarkTask(
                            spec.id,
                            env.task_description,
                            make_env=_twx_factory(spec),
                            split=split,  # type: ignore[arg-type]
                            max_steps=size.max_steps,
                            meta={"game": game, "fold": fold, "game_seed": gs, "params": p},
                        )
                    )
        return out

    return build


def _twx_factory(spec: object) -> Callable[[int], Environment]:
    from purpose_agent.envs import textworld as tw

    return lambda _seed: tw.TextWorldExpressEnvironment(spec)  # type: ignore[arg-type]


def reasoning(
    families: Sequence[str], size: Size, *, python: bool = False
) -> Callable[[int], list[BenchmarkTask]]:
    """reasoning-gym families. ``gsm_symbolic`` is split by template (generator index mod 4:
    0–1 train, 2 validation, 3 test); other families by disjoint instance seeds. With
    ``python``, the actor can run Python before it answers (task ids end in ``-py``)."""
    from purpose_agent.envs import reasoning as rg

    def build(seed: int) -> list[BenchmarkTask]:
        out: list[BenchmarkTask] = []
        for fam in families:
            by_template = fam == "gsm_symbolic"
            templates = rg.n_templates(fam) if by_template else 0
            for split, n in (("train", size.train), ("validation", size.validation), ("test", size.test)):
                for i in range(n):
                    index = 100_000 * seed + 1_000 * ("train", "validation", "test").index(split) + i
                    template = None
                    if by_template:
                        allowed = [t for t in range(templates) if _template_split(t) == split]
                        template = allowed[(seed * 7 + i) % len(allowed)]
                    env = rg.ReasoningEnvironment(fam, index, template=template)
                    tid = f"{fam}-{split}-{index}" + (f"-t{template}" if template is not None else "")
                    tid += "-py" if python else ""
                    out.append(
                        BenchmarkTask(
                            tid,
                            f"Answer the question correctly: {env.question}",
                            make_env=_rg_factory(fam, index, template, python),
                            split=split,  # type: ignore[arg-type]
                            max_steps=size.max_steps,
                            meta={"family": fam, "template": template, "python": python},
                        )
                    )
        return out

    return build


def _template_split(t: int) -> Split:
    return ("train", "train", "validation", "test")[t % 4]


def _rg_factory(fam: str, index: int, template: int | None, python: bool) -> Callable[[int], Environment]:
    from purpose_agent.envs import reasoning as rg

    return lambda _seed: rg.ReasoningEnvironment(fam, index, template=template, python=python)


def coding(size: Size) -> Callable[[int], list[BenchmarkTask]]:
    """The demo coding tasks (fixed splits: 10 train, 4 validation, 4 test); the seed rotates
    which tasks of each split are used when ``size`` asks for fewer."""
    from purpose_agent.envs import coding_tasks
    from purpose_agent.envs.coding import CodingEnvironment

    def build(seed: int) -> list[BenchmarkTask]:
        out: list[BenchmarkTask] = []
        for split, n in (("train", size.train), ("validation", size.validation), ("test", size.test)):
            pool = list(coding_tasks.split(split))
            picked = [pool[(seed + i) % len(pool)] for i in range(min(n, len(pool)))]
            for t in picked:
                out.append(
                    BenchmarkTask(
                        f"coding-{t.id}",
                        t.purpose,
                        make_env=(lambda task: lambda _s: CodingEnvironment(task))(t),
                        split=split,  # type: ignore[arg-type]
                        max_steps=size.max_steps,
                    )
                )
        return out

    return build


def humaneval(size: Size) -> Callable[[int], list[BenchmarkTask]]:
    """HumanEval with fixed splits by problem number (0–99 / 100–119 / 120–163)."""
    from purpose_agent.envs import humaneval as he

    def build(seed: int) -> list[BenchmarkTask]:
        out: list[BenchmarkTask] = []
        for split, n in (("train", size.train), ("validation", size.validation), ("test", size.test)):
            pool = he.split(split)  # type: ignore[arg-type]
            for i in range(min(n, len(pool))):
                t = pool[(seed * n + i) % len(pool)]
                out.append(
                    BenchmarkTask(
                        t.id,
                        t.purpose,
                        make_env=(lambda task: lambda _s: he.environment(task))(t),
                        split=split,  # type: ignore[arg-type]
                        max_steps=size.max_steps,
                    )
                )
        return out

    return build

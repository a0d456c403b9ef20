"""Progress bars (rich) for long benchmarks; a silent stand-in when they are off."""

from __future__ import annotations

from types import TracebackType
from typing import Any


class Progress:
    """The silent progress reporter; ``RichProgress`` draws a bar."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def start(self, name: str, total: int, already: int = 0) -> None:
        self.total, self.completed = total, already

    def describe(self, text: str) -> None:
        return None

    def advance(self) -> None:
        self.completed = getattr(self, "completed", 0) + 1


class RichProgress(Progress):
    """A rich progress bar: done / total units, elapsed and remaining time, the current unit."""

    def __init__(self) -> None:
        try:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as _RichProgress
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("progress bars need rich: pip install 'purpose-agent[bench]'") from exc
        self._bar: Any = _RichProgress(
            TextColumn("[bold]{task.fields[name]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.description}"),
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.__exit__(exc_type, exc, tb)

    def start(self, name: str, total: int, already: int = 0) -> None:
        super().start(name, total, already)
        self._task = self._bar.add_task("", total=total, completed=already, name=name)

    def describe(self, text: str) -> None:
        self._bar.update(self._task, description=text)

    def advance(self) -> None:
        super().advance()
        self._bar.advance(self._task)


def make_progress(enabled: bool) -> Progress:
    return RichProgress() if enabled else Progress()

"""The interactive wizard of ``purpose-agent`` (no arguments): describe the purpose, pick a
model (the embedded one by default), then run tasks, teach lessons and see what was learned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.prompt import Prompt

from purpose_agent._cli_ui import print_error, status_tables, step_printer, trace_costs, working

MODEL_HINTS = ("local", "local:qwen2.5-coder-0.5b", "ollama:qwen3:1.7b", "openai:gpt-4o")


class _Wizard:
    def __init__(self, console: Console, store_path: str, model: str | None) -> None:
        self.console = console
        self.store_path = store_path
        self.model_spec = model or "local"
        self.purpose = ""
        self._llm: Any = None

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def ask(self, question: str, default: str | None = None, choices: list[str] | None = None) -> str:
        if default is None:
            return str(Prompt.ask(question, console=self.console, choices=choices))
        return str(Prompt.ask(question, console=self.console, default=default, choices=choices))

    # ------------------------------------------------------------------ setup
    def pick_purpose(self) -> None:
        while not self.purpose:
            self.purpose = " ".join(self.ask("Describe the purpose of your agent").split())

    def pick_model(self) -> None:
        from purpose_agent.errors import PurposeAgentError
        from purpose_agent.models.registry import parse_spec

        self.say(f"Models: {', '.join(MODEL_HINTS)}, ... (`purpose-agent models` lists them all)")
        while True:
            spec = self.ask("Model", default=self.model_spec).strip()
            try:
                parse_spec(spec)
            except PurposeAgentError as exc:
                print_error(self.console, exc, "run")
                continue
            self.model_spec, self._llm = spec, None
            return

    def llm(self) -> Any:
        if self._llm is None:
            from purpose_agent.models.registry import resolve_backend

            with working(self.console, f"loading model {self.model_spec}..."):
                self._llm = resolve_backend(self.model_spec)
        return self._llm

    # ------------------------------------------------------------------ actions
    def run(self) -> None:
        from purpose_agent.core.environment import SimpleEnvironment
        from purpose_agent.loop.orchestrator import Orchestrator

        task = " ".join(self.ask("Task (Enter: the purpose itself)", default="").split())
        purpose = f"{self.purpose}\nTask: {task}" if task else self.purpose
        Path(self.store_path).parent.mkdir(parents=True, exist_ok=True)
        orch = Orchestrator(
            self.llm(), SimpleEnvironment(), memory=self.store_path, listeners=[step_printer(self.console)]
        )
        with working(self.console, "running..."):
            result = orch.run_task(purpose, max_steps=6)
        self.say(result.summary().splitlines()[0])
        answer = result.final_state.data.get("answer")
        if answer:
            self.say(f"answer: {answer}")
        self.say(f"trace: {result.trace_path}")

    def teach(self) -> None:
        from purpose_agent.cli import _open_store
        from purpose_agent.memory import MemoryCI

        text = " ".join(self.ask("Lesson to teach").split())
        if not text:
            return
        Path(self.store_path).parent.mkdir(parents=True, exist_ok=True)
        with _open_store(self.store_path, write=True) as store:
            decision = MemoryCI(store, replay=None).teach(text)
        self.say(f"{decision.action}: {decision.memory_id} {decision.reason}")

    def status(self) -> None:
        from purpose_agent.cli import _open_store
        from purpose_agent.core.events import default_trace_dir

        if not Path(self.store_path).exists():
            self.say(f"no memory store yet at {self.store_path}: run a task or teach a lesson first")
            return
        with _open_store(self.store_path, write=False) as store:
            report = store.status_report()
        for part in status_tables(report, trace_costs(default_trace_dir()), default_trace_dir()):
            self.console.print(part)


def run_wizard(store_path: str, model: str | None = None, console: Console | None = None) -> int:
    """The wizard's loop; returns the exit code (0 on quit or end of input)."""
    from purpose_agent.errors import PurposeAgentError

    console = console or Console(highlight=False)
    wizard = _Wizard(console, store_path, model)
    console.print(
        "Purpose Agent: describe what you want; the agent runs, is scored, and learns.", markup=False
    )
    try:
        wizard.pick_purpose()
        wizard.pick_model()
        while True:
            choice = wizard.ask(
                "What next?", default="run", choices=["run", "teach", "status", "model", "quit"]
            )
            if choice == "quit":
                break
            try:
                {
                    "run": wizard.run,
                    "teach": wizard.teach,
                    "status": wizard.status,
                    "model": wizard.pick_model,
                }[choice]()
            except (PurposeAgentError, OSError, ImportError) as exc:  # one line and the fix; go on
                print_error(console, exc, choice)
    except EOFError:
        console.print("\nend of input: bye", markup=False)
        return 0
    console.print("bye", markup=False)
    return 0

"""Inference on the embedded model: engine ceiling, constrained vs unconstrained decoding,
concurrency, reproducibility. In-process llama-cpp-python (``LocalBackend``) vs llama.cpp's own
server (``LlamaServerBackend``, "local-server:<name>").

Sections (``--sections``, comma-separated, default all):
- ceiling: ``llama-bench`` pp/tg tok/s at batch 1, and ``llama-batched-bench`` for 1/2/4
  parallel sequences (both built by ``make install`` next to llama-server);
- constrained: the same prompt with and without a JSON schema, the same output length
  (``--gen-tokens``, every reply cut by max_tokens), a warm KV prefix so timing is generation;
  per engine, median of ``--reps``; ratio constrained / unconstrained;
- concurrency: 4 different requests in sequence vs all 4 at once (``asyncio.gather``), aggregate
  completion tok/s; unconstrained and constrained; in-process and server;
- repro: per prompt and setting (greedy; temperature 0.7 with a seed), the output alone from a
  cold context (no cached prefix), alone with a warm KV prefix, after another prompt sharing the
  system prompt, and batched with 3 other requests; counts outputs that differ from the cold one.

Raw engine calls (``_generate``): no repair retry, so a reply cut by max_tokens is timed as is.
Model processes never overlap: the in-process contexts are closed before the server starts.

Usage: python benchmarks/bench_inference.py --model qwen2.5-coder-0.5b [--sections ...] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from purpose_agent.models import catalog
from purpose_agent.models.base import Message, RawCompletion, sanitize_schema
from purpose_agent.models.llama_server import LlamaServerBackend, available_cores, find_server_binary
from purpose_agent.models.local import LocalBackend

STORY = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "story": {"type": "string"}},
    "required": ["title", "story"],
}
SYSTEM = "You are a helpful writer. You answer with long, detailed texts."
TOPICS = [
    "a lighthouse keeper who finds a message in a bottle",
    "a robot learning to bake bread",
    "two rival chess players stuck in a snowed-in train",
    "a cartographer mapping a city that changes every night",
    "a beekeeper who can hear the hive think",
    "an astronaut growing tomatoes on Mars",
    "a librarian who catalogues dreams",
    "a fisherman and a talking seagull",
]


def story_messages(topic: str) -> list[Message]:
    return [
        Message("system", SYSTEM),
        Message(
            "user",
            f"Write a long story (at least 600 words) about {topic}. Reply with one JSON object "
            '{"title": "...", "story": "..."}.',
        ),
    ]


def _cpu_by_pid() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, user+system seconds) for every readable process."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    out: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return out


def _busy_seconds() -> float:
    """CPU seconds used machine-wide (all cores, not idle/iowait) since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(x) for x in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / float(os.sysconf("SC_CLK_TCK"))


class OtherLoad:
    """CPU used by processes other than this one and its children (other people's jobs on the
    machine), reported per section: a benchmark with a busy neighbour is not a measurement.
    Machine-wide busy time minus ours, so processes that exit mid-section are counted too."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0 = _busy_seconds()
        self.mine0 = self._mine()

    @staticmethod
    def _mine() -> float:
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system  # finished children too
        me = os.getpid()
        return own + sum(cpu for _pid, (ppid, cpu) in _cpu_by_pid().items() if ppid == me)  # live ones

    def percent(self) -> float:
        """Share of one core used by others since start (100 = one full core)."""
        others = (_busy_seconds() - self.busy0) - (self._mine() - self.mine0)
        return max(0.0, 100 * others / max(time.monotonic() - self.t0, 1e-6))


def wait_quiet(max_wait: float, threshold: float = 5.0) -> None:
    """Wait (up to max_wait s) until other processes used under ``threshold``% of a core for 3 s."""
    deadline = time.monotonic() + max_wait
    while True:
        probe = OtherLoad()
        time.sleep(3.0)
        busy = probe.percent()
        if busy < threshold or time.monotonic() > deadline:
            if busy >= threshold:
                say(f"  (other processes still use {busy:.0f}% of a core: numbers below are disturbed)")
            return


DISTURBED = 15.0  # % of one core used by others during a section that makes it a non-measurement


async def measured(title: str, fn: Callable[[], Awaitable[Any]], max_wait: float, attempts: int = 2) -> Any:
    """Run a section on a quiet machine; rerun it (up to ``attempts``) when other processes used
    more than DISTURBED % of a core meanwhile. Every attempt is printed, marked."""
    result: Any = None
    for attempt in range(1, attempts + 1):
        wait_quiet(max_wait)
        say(f"\n== {title}" + (f" (attempt {attempt})" if attempt > 1 else "") + " ==")
        load = OtherLoad()
        result = await fn()
        busy = load.percent()
        if busy < DISTURBED:
            say(f"  [other processes used {busy:.0f}% of one core during this section]")
            return result
        say(f"  [DISTURBED: other processes used {busy:.0f}% of one core during this section]")
    return result


def say(line: str = "") -> None:
    print(line, flush=True)


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


# ------------------------------------------------------------------------------- ceiling
def run_tool(cmd: list[str], timeout: float = 1800) -> str:
    say("$ " + " ".join(cmd))
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = out.stdout.strip()
    if out.returncode != 0:
        text += f"\n(exit {out.returncode}) {out.stderr.strip()[-1500:]}"
    return text


def ceiling(model: Path, threads: int, gen: int) -> None:
    bindir = find_server_binary().parent
    bench = bindir / "llama-bench"
    if bench.is_file():
        # --repack 1 is llama.cpp's default (weights repacked for the CPU's gemm kernels)
        cmd = [str(bench), "-m", str(model), "-t", str(threads), "-p", "512", "-n", str(gen), "-r", "3"]
        say(run_tool([*cmd, "--repack", "1,0"]))
    else:
        say(f"(no {bench}: run make install)")
    batched = bindir / "llama-batched-bench"
    if batched.is_file():
        t = str(threads)
        cmd = [str(batched), "-m", str(model), "-t", t, "-tb", t, "-c", "4096", "-b", "2048", "-ub", "512"]
        for extra in ([], ["--no-repack"]):
            say(run_tool([*cmd, "-npp", "128", "-ntg", str(gen), "-npl", "1,2,4", *extra]))
    else:
        say(f"(no {batched}: parallel ceiling measured through the server below)")


# --------------------------------------------------------------------------- engine calls
Gen = Callable[[list[Message], dict[str, Any] | None, int, float], Awaitable[RawCompletion]]


def engine_gen(backend: Any) -> Gen:
    async def gen(msgs: list[Message], schema: dict[str, Any] | None, n: int, temp: float) -> RawCompletion:
        clean = sanitize_schema(schema) if schema is not None else None
        return await backend._generate(msgs, clean, max_tokens=n, temperature=temp)  # type: ignore[no-any-return]

    return gen


async def timed(
    gen: Gen, msgs: list[Message], schema: dict[str, Any] | None, n: int
) -> tuple[RawCompletion, float]:
    t0 = time.perf_counter()
    raw = await gen(msgs, schema, n, 0.0)
    return raw, time.perf_counter() - t0


async def constrained(label: str, backend: Any, gen_tokens: int, reps: int) -> dict[str, float]:
    gen = engine_gen(backend)
    msgs = story_messages(TOPICS[0])
    rates: dict[str, list[float]] = {"free": [], "json": []}
    server_rates: dict[str, list[float]] = {"free": [], "json": []}
    lengths: dict[str, list[int]] = {"free": [], "json": []}
    for mode, schema in (("free", None), ("json", STORY)):
        await timed(gen, msgs, schema, gen_tokens)  # warm: KV prefix, grammar cache, pages
        for _ in range(reps):
            raw, dt = await timed(gen, msgs, schema, gen_tokens)
            n = raw.usage.completion_tokens
            lengths[mode].append(n)
            rates[mode].append(n / dt)
            t = getattr(backend, "last_timings", None)
            if t is not None and t.predicted_ms:
                server_rates[mode].append(1000 * (t.predicted_n or n) / t.predicted_ms)
        say(
            f"  {label:10s} {mode:4s}: {median(rates[mode]):6.1f} tok/s wall (median of {reps}; "
            f"{lengths[mode]} tokens, finish={raw.finish_reason}, processed prompt={raw.usage.processed_prompt_tokens})"
            + (f"; server decode {median(server_rates[mode]):.1f} tok/s" if server_rates[mode] else "")
        )
    ratio = median(rates["json"]) / median(rates["free"])
    say(f"  {label:10s} ratio constrained/unconstrained = {ratio:.2f} (target >= 0.85)")
    out = {"free_tok_s": median(rates["free"]), "json_tok_s": median(rates["json"]), "ratio": ratio}
    if server_rates["free"]:
        out["decode_ratio"] = median(server_rates["json"]) / median(server_rates["free"])
    return out


async def concurrency(label: str, backend: Any, gen_tokens: int) -> dict[str, float]:
    gen = engine_gen(backend)
    out: dict[str, float] = {}
    for mode, schema in (("free", None), ("json", STORY)):
        # different topics for the two rounds: no round reuses the other's KV prefix beyond the system prompt
        seq_msgs = [story_messages(t) for t in TOPICS[0:4]]
        con_msgs = [story_messages(t) for t in TOPICS[4:8]]
        await timed(gen, story_messages("warm-up"), schema, 8)
        t0 = time.perf_counter()
        seq = [await gen(m, schema, gen_tokens, 0.0) for m in seq_msgs]
        t_seq = time.perf_counter() - t0
        t0 = time.perf_counter()
        con = await asyncio.gather(*(gen(m, schema, gen_tokens, 0.0) for m in con_msgs))
        t_con = time.perf_counter() - t0
        n_seq = sum(r.usage.completion_tokens for r in seq)
        n_con = sum(r.usage.completion_tokens for r in con)
        a_seq, a_con = n_seq / t_seq, n_con / t_con
        say(
            f"  {label:10s} {mode:4s}: 4 in sequence {t_seq:5.1f} s ({a_seq:5.1f} tok/s aggregate, {n_seq} tokens); "
            f"4 concurrent {t_con:5.1f} s ({a_con:5.1f} tok/s, {n_con} tokens); speed-up {a_con / a_seq:.2f}x "
            "(target >= 2x)"
        )
        out[f"{mode}_seq_tok_s"], out[f"{mode}_con_tok_s"], out[f"{mode}_speedup"] = (
            a_seq,
            a_con,
            a_con / a_seq,
        )
    return out


# -------------------------------------------------------------------------- reproducibility
REPRO_PROMPTS = [
    [Message("system", SYSTEM), Message("user", "List five uses of a paperclip, one per line.")],
    [Message("system", SYSTEM), Message("user", "Explain in three sentences why the sky is blue.")],
    [Message("system", SYSTEM), Message("user", "Write a haiku about compilers, then explain it.")],
    [Message("system", SYSTEM), Message("user", "Describe a cat to someone who has never seen one.")],
]
OTHER = [Message("system", SYSTEM), Message("user", "Name three rivers in Europe and their lengths.")]


async def repro(label: str, backend: Any, n: int, cold: Gen, batched: bool) -> dict[str, Any]:
    """``cold`` generates with nothing reused from the KV cache."""
    gen = engine_gen(backend)
    counts: dict[str, list[int]] = {}
    for temp in (0.0, 0.7):
        for msgs in REPRO_PROMPTS:
            ref = (await cold(msgs, None, n, temp)).text
            cases = {"warm (same prompt cached)": (await gen(msgs, None, n, temp)).text}
            await gen(OTHER, None, n, temp)
            cases["after another prompt (shared system prefix)"] = (await gen(msgs, None, n, temp)).text
            cases["cold again"] = (await cold(msgs, None, n, temp)).text
            if batched:
                others = [story_messages(t) for t in TOPICS[:3]]
                res = await asyncio.gather(gen(msgs, None, n, temp), *(gen(o, None, n, temp) for o in others))
                cases["batched with 3 others"] = res[0].text
            for case, text in cases.items():
                key = f"T={temp} {case}"
                counts.setdefault(key, [0, 0])
                counts[key][0] += text != ref
                counts[key][1] += 1
    for key, (diff, total) in counts.items():
        say(f"  {label:10s} {key}: {diff}/{total} differ from the cold output")
    return {k: f"{v[0]}/{v[1]}" for k, v in counts.items()}


# --------------------------------------------------------------------------------- main
def header(model_name: str, model_path: Path) -> None:
    say(f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; command: {' '.join([sys.executable, *sys.argv])}")
    cpu = ""
    if shutil.which("lscpu"):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                cpu = line.split(":", 1)[1].strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    say(f"model {model_name}: {model_path} ({model_path.stat().st_size} B)")
    say(
        f"cores available {available_cores()}; cpu {cpu}; {platform.platform()}; python {platform.python_version()}"
    )
    try:
        import llama_cpp

        lcpp = llama_cpp.__version__
    except ImportError:
        lcpp = "absent"
    binary = find_server_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    say(f"llama-cpp-python {lcpp}; {binary}: {(version.stdout + version.stderr).strip().splitlines()[-2:]}")
    say(
        f"purpose-agent commit {commit}; load average at start {Path('/proc/loadavg').read_text().split()[:3]}"
    )


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sections = set(args.sections.split(","))
    engines = set(args.engines.split(","))
    model_path = catalog.ensure_model_file(args.model)
    threads = available_cores()
    header(args.model, model_path)
    results: dict[str, Any] = {"model": args.model, "date": time.strftime("%Y-%m-%d")}
    W = args.max_wait

    if "ceiling" in sections:

        async def ceil() -> None:
            ceiling(model_path, threads, args.gen_tokens)

        await measured("ceiling: llama-bench (batch 1) and llama-batched-bench (1/2/4 sequences)", ceil, W)

    if "inprocess" in engines and sections & {"constrained", "concurrency", "repro"}:
        local = LocalBackend(args.model, n_threads=threads)
        try:
            if "constrained" in sections:
                results["inprocess_constrained"] = await measured(
                    f"constrained vs unconstrained, in-process, {args.gen_tokens} tokens",
                    lambda: constrained("in-process", local, args.gen_tokens, args.reps),
                    W,
                )
            if "concurrency" in sections:
                results["inprocess_concurrency"] = await measured(
                    f"4 requests in sequence vs concurrent, in-process, {args.gen_tokens} tokens",
                    lambda: concurrency("in-process", local, args.gen_tokens),
                    W,
                )
            if "repro" in sections:
                say(f"\n== reproducibility, in-process, {args.repro_tokens} tokens ==")
                warm = engine_gen(local)

                async def cold_local(*a: Any) -> RawCompletion:
                    for llm in local._slots.values():
                        llm.reset()  # forget the evaluated tokens: the prompt is processed in full
                    return await warm(*a)

                results["inprocess_repro"] = await repro(
                    "in-process", local, args.repro_tokens, cold_local, False
                )
        finally:
            await local.aclose()

    if "server" in engines and sections & {"constrained", "concurrency", "repro"}:
        server = LlamaServerBackend(
            args.model,
            parallel=args.parallel,
            ctx_per_slot=args.ctx_per_slot,
            extra_args=args.server_args.split(),
        )
        t0 = time.perf_counter()
        server.start()
        say(f"\nserver: {server.server.command()!r} ready in {time.perf_counter() - t0:.1f} s")
        try:
            if "constrained" in sections:
                results["server_constrained"] = await measured(
                    f"constrained vs unconstrained, server, {args.gen_tokens} tokens",
                    lambda: constrained("server", server, args.gen_tokens, args.reps),
                    W,
                )
            if "concurrency" in sections:
                results["server_concurrency"] = await measured(
                    f"4 requests in sequence vs concurrent, server --parallel {args.parallel}",
                    lambda: concurrency("server", server, args.gen_tokens),
                    W,
                )
            if "repro" in sections:
                say(f"\n== reproducibility, server, {args.repro_tokens} tokens ==")
                warm_s = engine_gen(server)

                async def cold_server(*a: Any) -> RawCompletion:
                    server.cache_prompt = False  # the whole prompt is evaluated, nothing reused
                    try:
                        return await warm_s(*a)
                    finally:
                        server.cache_prompt = True

                results["server_repro"] = await repro("server", server, args.repro_tokens, cold_server, True)
        finally:
            await server.aclose()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--sections", default="ceiling,constrained,concurrency,repro")
    ap.add_argument("--engines", default="inprocess,server")
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--repro-tokens", type=int, default=48)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--ctx-per-slot", type=int, default=4096)
    ap.add_argument("--server-args", default="", help="extra llama-server flags, e.g. '--no-repack'")
    ap.add_argument("--max-wait", type=float, default=300, help="seconds to wait for a quiet machine")
    ap.add_argument("--json", help="also write the summary numbers to this file")
    args = ap.parse_args()
    results = asyncio.run(amain(args))
    say(f"\nload average at end {Path('/proc/loadavg').read_text().split()[:3]}")
    say("\n== summary ==")
    say(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

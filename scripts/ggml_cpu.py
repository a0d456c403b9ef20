#!/usr/bin/env python3
"""The CPU options both llama.cpp builds use (llama-cpp-python's wheel and ``llama-server``).

The build host's own instruction sets, but never Intel AMX. ``-DGGML_NATIVE=ON`` compiles with
``-march=native``, which ggml adds after ``CMAKE_C_FLAGS``, so a ``-mno-amx-*`` there is undone:
on a VM whose CPU lists AMX but whose kernel does not grant its tile state, the wheel built that
way died at its first ``ldtilecfg`` (rc 139, seen here 2026-12-03, and in CI). So native stays
off and each x86 extension ggml knows is switched on only when ``/proc/cpuinfo`` lists it.

    python scripts/ggml_cpu.py cmake-args   # ';'-joined -D options (for pip's cmake.args)
    python scripts/ggml_cpu.py check        # exit 1 if the installed llama_cpp has AMX compiled in
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# ggml option -> the cpuinfo flags it needs (all of them)
X86_OPTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("GGML_SSE42", ("sse4_2",)),
    ("GGML_AVX", ("avx",)),
    ("GGML_AVX2", ("avx2",)),
    ("GGML_FMA", ("fma",)),
    ("GGML_F16C", ("f16c",)),
    ("GGML_BMI2", ("bmi2",)),
    ("GGML_AVX_VNNI", ("avx_vnni",)),
    ("GGML_AVX512", ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")),
    ("GGML_AVX512_VBMI", ("avx512vbmi",)),
    ("GGML_AVX512_VNNI", ("avx512_vnni",)),
    ("GGML_AVX512_BF16", ("avx512_bf16",)),
)
NEVER = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")


def cpu_flags(cpuinfo: str) -> set[str]:
    """The first ``flags`` line of a ``/proc/cpuinfo`` text, as a set."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cmake_options(cpuinfo: str | None, machine: str) -> list[str]:
    """The -D options for this CPU; non-x86 hosts (no AMX there) keep ggml's native detection."""
    if machine.lower() not in {"x86_64", "amd64"} or cpuinfo is None:
        return ["-DGGML_NATIVE=ON"]
    flags = cpu_flags(cpuinfo)
    options = ["-DGGML_NATIVE=OFF"]
    for name, needs in X86_OPTIONS:
        options.append(f"-D{name}={'ON' if all(f in flags for f in needs) else 'OFF'}")
    options += [f"-D{name}=OFF" for name in NEVER]
    return options


def host_options() -> list[str]:
    path = Path("/proc/cpuinfo")
    text = path.read_text() if path.is_file() else None
    return cmake_options(text, platform.machine())


def amx_compiled(system_info: str) -> bool:
    """True when llama.cpp's system info says an AMX kernel is compiled in (``AMX_INT8 = 1``)."""
    return any(f"{part} = 1" in system_info for part in ("AMX_INT8", "AMX_TILE", "AMX_BF16"))


def check() -> int:
    import llama_cpp  # the installed wheel

    info = llama_cpp.llama_print_system_info().decode()
    if amx_compiled(info):
        print(f"llama_cpp has AMX compiled in: {info}", file=sys.stderr)
        return 1
    print(f"llama_cpp: no AMX ({info.strip()})")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["cmake-args"]:
        print(";".join(host_options()))
        return 0
    if argv == ["check"]:
        return check()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Process isolation for model-written code (PythonExecTool, the coding environments' tests):
rlimits, bubblewrap, ``unshare``; probed once, cached.

Isolation modes (``resolve_isolation``): ``auto`` and ``bwrap`` need bubblewrap and refuse with a
clear error when it is missing; ``unshare`` (network only) and ``none`` (rlimits only) run only
when asked for by name. Layers, strongest first:
- ``bwrap``: new user/pid/net/ipc/uts namespaces, read-only system dirs, a private /tmp, only the
  work directory writable, runs as uid 65534, dies with its parent.
- ``unshare -r -n``: a new user and network namespace (no network; process limits enforced even
  when the caller is root), but the host's files stay reachable.
- a pids cgroup (when one can be created, e.g. as root) caps the process count and lets every
  process of a run be killed, also ones that left the process group.
- always: rlimits (CPU, address space, file size, processes, open files, no core dumps),
  ``python -I``, a scrubbed environment, a fresh temporary directory, a killed process group.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from purpose_agent.errors import ToolError

SANDBOX_DIR = "/sandbox"
_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"

Isolation = Literal["auto", "bwrap", "unshare", "none"]
Mode = Literal["bwrap", "unshare", "none"]
ISOLATIONS: tuple[str, ...] = ("auto", "bwrap", "unshare", "none")


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_seconds: int
    memory_mb: int
    file_size_mb: int
    max_processes: int
    max_open_files: int = 256
    tmpfs_mb: int = 64


def rlimit_preexec(limits: Limits, join: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` setting the resource limits (and joining a cgroup) in the child before exec."""

    def apply() -> None:
        if join is not None:
            join()
        mem = limits.memory_mb * 1024 * 1024
        size = limits.file_size_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def base_env(home: str) -> dict[str, str]:
    """The scrubbed environment: nothing from the caller's environment is passed on."""
    return {"PATH": _SAFE_PATH, "HOME": home, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp"}


def _python_roots(python: str) -> list[str]:
    """Directories the interpreter needs, outside /usr: the venv and its base installation."""
    roots: list[str] = []
    exe = Path(python)
    candidates = [exe.parent.parent, exe.resolve().parent.parent, Path(sys.prefix), Path(sys.base_prefix)]
    for c in candidates:
        text = str(c)
        if text in ("/", "/usr") or text.startswith("/usr/") or text in roots:
            continue
        roots.append(text)
    return roots


def bwrap_command(python: str, workdir: str, *, network: bool, tmpfs_mb: int) -> list[str]:
    """The bubblewrap prefix that runs ``python`` with ``workdir`` mounted at /sandbox."""
    bwrap = shutil.which("bwrap") or "bwrap"
    cmd = [bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"]
    if network:
        cmd.append("--share-net")
    cmd += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            cmd += ["--symlink", os.readlink(top), top]
        elif p.is_dir():
            cmd += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        cmd += ["--ro-bind-try", f, f]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    cmd += ["--size", str(tmpfs_mb * 1024 * 1024), "--tmpfs", "/tmp"]
    # after the private /tmp, so an interpreter living under /tmp (a venv in a CI clone) stays visible
    for root in _python_roots(python):
        cmd += ["--ro-bind", root, root]
    cmd += ["--bind", workdir, SANDBOX_DIR, "--chdir", SANDBOX_DIR]
    cmd += ["--uid", "65534", "--gid", "65534", "--disable-userns"]
    cmd += ["--remount-ro", "/", "--clearenv"]
    for key, value in base_env(SANDBOX_DIR).items():
        cmd += ["--setenv", key, value]
    return cmd


def unshare_command(*, network: bool) -> list[str]:
    """The util-linux ``unshare`` prefix: a user namespace, plus a network one when denied."""
    return [
        shutil.which("unshare") or "unshare",
        "--user",
        "--map-root-user",
        *([] if network else ["--net"]),
    ]


def _probe(cmd: list[str], cwd: str | None = None) -> bool:
    try:
        done = subprocess.run(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=20,
            env=base_env("/tmp"),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.strip() == b"ok"


_PROBE_CODE = "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9), 1)\nexcept OSError:\n    pass\nprint('ok')"


@functools.cache
def bwrap_works(python: str) -> bool:
    """Whether bubblewrap is installed and can run ``python`` here (probed once per interpreter)."""
    if not shutil.which("bwrap") or not sys.platform.startswith("linux"):
        return False
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pa-bwrap-probe-") as tmp:
        cmd = [*bwrap_command(python, tmp, network=False, tmpfs_mb=8), python, "-I", "-c", _PROBE_CODE]
        return _probe(cmd)


@functools.cache
def unshare_works(python: str) -> bool:
    """Whether ``unshare --user --map-root-user --net`` works here (probed once per interpreter)."""
    if not shutil.which("unshare") or not sys.platform.startswith("linux"):
        return False
    return _probe([*unshare_command(network=False), python, "-I", "-c", _PROBE_CODE])


# ------------------------------------------------------------------ pids cgroup (fork bombs)
_CGROUP_V1 = Path("/sys/fs/cgroup/pids")
_CGROUP_V2 = Path("/sys/fs/cgroup")


def _try_cgroup_root(root: Path) -> bool:
    probe = root / f"purpose-agent-probe-{os.getpid()}"
    try:
        probe.mkdir()
        try:
            (probe / "pids.max").write_text("4")
        finally:
            probe.rmdir()
    except OSError:
        return False
    return True


@functools.cache
def pids_cgroup_root() -> Path | None:
    """A writable cgroup root with the pids controller (v1, or v2 with pids enabled), or None.

    RLIMIT_NPROC is not enforced for processes of host uid 0, even inside a user namespace, so
    when running as root a pids cgroup is what really bounds a fork bomb.
    """
    if not sys.platform.startswith("linux"):
        return None
    if (_CGROUP_V1 / "cgroup.procs").exists() and _try_cgroup_root(_CGROUP_V1):
        return _CGROUP_V1
    controllers = _CGROUP_V2 / "cgroup.subtree_control"
    try:
        enabled = controllers.read_text().split()
    except OSError:
        return None
    if "pids" in enabled and _try_cgroup_root(_CGROUP_V2):
        return _CGROUP_V2
    return None


class PidsCgroup:
    """A per-run pids cgroup: caps the number of processes, and kills every member at the end."""

    def __init__(self, root: Path, max_pids: int) -> None:
        self.path = root / f"purpose-agent-{os.getpid()}-{os.urandom(4).hex()}"
        self.path.mkdir()
        (self.path / "pids.max").write_text(str(max_pids))
        self.procs = str(self.path / "cgroup.procs")

    def join_self(self) -> None:
        """Called in the child before exec: move this process into the cgroup."""
        with open(self.procs, "w") as fh:
            fh.write(str(os.getpid()))

    def members(self) -> list[int]:
        try:
            return [int(x) for x in Path(self.procs).read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_all(self) -> int:
        """Freeze forking (pids.max = 0), SIGKILL every member; return how many were left."""
        with contextlib.suppress(OSError):
            (self.path / "pids.max").write_text("0")
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return len(self.members())

    def remove(self) -> bool:
        try:
            self.path.rmdir()
        except OSError:
            return False
        return True


def destroy_cgroup(group: PidsCgroup, attempts: int = 50) -> None:
    """Kill every member of ``group`` and remove it, retrying while members are still exiting."""
    import time

    for _ in range(attempts):
        if not group.kill_all() and group.remove():
            return
        time.sleep(0.02)


# ------------------------------------------------------------------ choosing the isolation
class SandboxUnavailableError(ToolError):
    """The isolation asked for cannot run here; the message says how to get it, or how to opt out."""


def _bwrap_missing(requested: str) -> str:
    where = (
        "it is missing or cannot run here"
        if sys.platform.startswith("linux")
        else f"it only exists on Linux (this is {sys.platform})"
    )
    return (
        f"isolation={requested!r} needs bubblewrap (bwrap) to keep model-written code away from this "
        f"machine's files and network, and {where}, so the code was not run. Install it with "
        "`apt-get install bubblewrap` (Debian/Ubuntu; `dnf install bubblewrap` on Fedora) and make "
        "sure unprivileged user namespaces are allowed. To run the code without that isolation on "
        "purpose, pass isolation='none' (rlimits only) or isolation='unshare' (no network only)."
    )


def resolve_isolation(requested: str, python: str) -> Mode:
    """The mode a run really gets for ``requested``; never a silent downgrade.

    ``auto`` and ``bwrap`` both mean bubblewrap or a SandboxUnavailableError naming it."""
    if requested not in ISOLATIONS:
        raise ToolError(f"unknown isolation {requested!r}: use auto, bwrap, unshare or none")
    if requested == "none":
        return "none"
    if requested == "unshare":
        if unshare_works(python):
            return "unshare"
        raise SandboxUnavailableError(
            "isolation='unshare' needs `unshare --user --map-root-user --net` (util-linux) and it "
            "cannot run here; use isolation='auto' with bubblewrap (`apt-get install bubblewrap`), "
            "or isolation='none' to run without isolation on purpose"
        )
    if bwrap_works(python):
        return "bwrap"
    raise SandboxUnavailableError(_bwrap_missing(requested))


def command_prefix(
    mode: Mode, python: str, workdir: str, *, network: bool, tmpfs_mb: int
) -> tuple[list[str], list[str], bool]:
    """The command prefix for one run in ``mode``, the isolation layers it adds to the always-on
    ones, and whether ``workdir`` is seen at SANDBOX_DIR (else the run's cwd is ``workdir``)."""
    if mode == "bwrap":
        prefix = bwrap_command(python, workdir, network=network, tmpfs_mb=tmpfs_mb)
        layers = ["bwrap", "read-only-fs", "pid-namespace", "user-namespace", "uid-65534"]
        return prefix, layers + ([] if network else ["no-network"]), True
    if mode == "unshare":
        layers = ["unshare", "user-namespace"] + ([] if network else ["no-network"])
        return unshare_command(network=network), layers, False
    return [], [], False


def isolation_summary(mode: Mode, network: bool) -> str:
    """What the isolation of ``mode`` means, in words a model (and a user) can rely on."""
    if mode == "bwrap":
        net = "network allowed" if network else "no network"
        return f"{net}, no files outside its folder"
    if mode == "unshare" and not network:
        return "no network, but NOT filesystem-isolated: it can read and write this machine's files"
    return "NOT isolated (rlimits and a timeout only): it can use the network and this machine's files"

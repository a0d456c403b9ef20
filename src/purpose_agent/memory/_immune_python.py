"""Tool misuse in Python snippets, parsed with :mod:`ast`: ``os.system`` and ``subprocess``
calls have their command analysed as shell (:mod:`._immune_shell`), ``eval``/``exec``/
``pickle.loads`` of fetched data, ``shutil.rmtree`` of the home directory, writes to sensitive
files, reverse shells and exfiltration of ``os.environ`` or key files are reported.
"""

from __future__ import annotations

import ast
import re
import shlex

from purpose_agent.memory._immune_shell import analyse_shell
from purpose_agent.memory._immune_targets import SENSITIVE_READ, SENSITIVE_WRITE, danger_path

__all__ = ["analyse_python"]


# ----------------------------------------------------------------------------- python parsing
_SHELL_CALLS = frozenset(
    {"os.system", "os.popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
     "subprocess.check_output", "subprocess.Popen", "subprocess.getoutput", "subprocess.getstatusoutput",
     "commands.getoutput", "pty.spawn", "asyncio.create_subprocess_shell", "asyncio.create_subprocess_exec",
     "os.execv", "os.execvp", "os.execl", "os.execlp", "os.spawnl", "os.spawnv", "os.startfile"}
)  # fmt: skip
_EXEC_CALLS = frozenset({"eval", "exec", "compile", "builtins.eval", "builtins.exec"})
_DESERIALISE = frozenset(
    {"pickle.loads", "pickle.load", "marshal.loads", "dill.loads", "cloudpickle.loads", "yaml.unsafe_load",
     "yaml.load", "jsonpickle.decode", "shelve.open"}
)  # fmt: skip
_FETCH = re.compile(
    r"^(?:requests|httpx|urllib3?|urllib\.request|urllib2|aiohttp|http\.client)\.|(?:^|\.)(?:urlopen|urlretrieve|"
    r"recv|recvfrom|get|request|PoolManager)$"
)
_DECODE = re.compile(
    r"(?:^|\.)(?:b64decode|b32decode|b16decode|a85decode|decode|unhexlify|fromhex|decompress)$"
)
_NET_SEND = re.compile(
    r"^(?:requests|httpx)\.(?:post|put|patch|request|get)$|(?:^|\.)(?:urlopen|Request|send|sendall|sendto|sendmail|"
    r"send_message|storbinary|post|put)$"
)
_RMTREE = frozenset(
    {"shutil.rmtree", "os.removedirs", "os.rmdir", "os.remove", "os.unlink", "pathlib.Path.unlink"}
)
_HOME_CALLS = frozenset(
    {"os.path.expanduser", "pathlib.Path.home", "Path.home", "os.getenv", "os.environ.get"}
)


class _PyVisitor(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.tainted: set[str] = set()  # names bound to fetched or decoded data
        self.secret_names: set[str] = set()  # names bound to sensitive file contents or the environment
        self.found: dict[str, float] = {}
        self.calls: set[str] = set()
        self.strings: list[str] = []

    def hit(self, name: str, severity: float) -> None:
        self.found[name] = max(severity, self.found.get(name, 0.0))

    # names -------------------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name] = f"{node.module or ''}.{a.name}".lstrip(".")

    def dotted(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else node.attr
        if isinstance(node, ast.Call):
            fn = self.dotted(node.func)
            if fn in ("__import__", "importlib.import_module") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    return arg.value
            if fn.endswith(("Path", "pathlib.Path")):
                return "pathlib.Path"
            return fn + "()"
        return ""

    def path_of(self, node: ast.AST) -> str:
        """A best-effort constant path for ``node`` (``~`` for the home directory)."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)  # type: ignore[misc]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Add):
            left, right = self.path_of(node.left), self.path_of(node.right)
            if isinstance(node.op, ast.Div):
                return f"{left.rstrip('/')}/{right}"
            return left + right
        if isinstance(node, ast.Subscript) and self.dotted(node.value) == "os.environ":
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in ("HOME", "USERPROFILE"):
                return "~"
        if isinstance(node, ast.Call):
            fn = self.dotted(node.func)
            if fn in _HOME_CALLS or fn.endswith(".home"):
                inner = self.path_of(node.args[0]) if node.args else "~"
                return (
                    "~"
                    if fn.endswith(("getenv", "environ.get")) and inner in ("HOME", "USERPROFILE")
                    else inner
                )
            if fn in ("os.path.join", "posixpath.join"):
                return "/".join(self.path_of(a) for a in node.args)
            if fn.endswith(("Path", "pathlib.Path", "PurePath")) and node.args:
                return self.path_of(node.args[0])
            if fn.endswith(("joinpath", "expanduser", "resolve", "absolute")) and isinstance(
                node.func, ast.Attribute
            ):
                base = self.path_of(node.func.value)
                return "/".join([base, *(self.path_of(a) for a in node.args)])
        if isinstance(node, ast.Attribute) and node.attr == "home":
            return "~"
        return ""

    def mentions(self, node: ast.AST, pattern: re.Pattern[str]) -> bool:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and pattern.search(self.dotted(sub.func)):
                return True
        return False

    def is_tainted(self, node: ast.AST) -> bool:
        if self.mentions(node, _FETCH) or self.mentions(node, _DECODE):
            return True
        return any(isinstance(s, ast.Name) and s.id in self.tainted for s in ast.walk(node))

    def is_secret(self, node: ast.AST) -> bool:
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Constant)
                and isinstance(sub.value, str)
                and SENSITIVE_READ.search(sub.value)
            ):
                return True
            if isinstance(sub, ast.Attribute | ast.Name) and self.dotted(sub) == "os.environ":
                return True
            if isinstance(sub, ast.Name) and sub.id in self.secret_names:
                return True
        return False

    # statements -------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if self.is_tainted(node.value):
            self.tainted.update(names)
        if self.is_secret(node.value):
            self.secret_names.update(names)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            self.strings.append(node.value)

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        fn = self.dotted(node.func)
        self.calls.add(fn)
        args = node.args
        if fn in _SHELL_CALLS and args:
            first = args[0]
            command = ""
            if isinstance(first, ast.Constant | ast.JoinedStr):
                command = self.path_of(first)
            elif isinstance(first, ast.List | ast.Tuple):
                parts = [self.path_of(e) or "X" for e in first.elts]
                if len(parts) >= 3 and parts[0].rsplit("/", 1)[-1] in ("sh", "bash") and parts[1] == "-c":
                    command = parts[2]
                else:
                    command = shlex.join(parts)
            if command:
                for name, sev in analyse_shell(command):
                    self.hit(name.replace("tm.cmd.", "tm.py.shell."), sev)
                if (
                    fn == "pty.spawn"
                    and command.rsplit("/", 1)[-1] in ("sh", "bash")
                    and "socket.socket" in self.calls
                ):
                    self.hit("tm.py.reverse_shell", 0.95)
        if fn in _EXEC_CALLS and args and self.is_tainted(args[0]):
            self.hit("tm.py.remote_exec", 0.9)
        if fn in _DESERIALISE and args and self.is_tainted(args[0]):
            self.hit("tm.py.unsafe_deserialise", 0.85)
        if fn in _RMTREE or fn.endswith((".rmtree", ".unlink", ".rmdir")):
            target = self.path_of(args[0]) if args else ""
            if not target and isinstance(node.func, ast.Attribute):
                target = self.path_of(node.func.value)
            if target and danger_path(target.rstrip("/") or "/"):
                self.hit("tm.py.delete_root", 0.95)
            elif target and SENSITIVE_READ.search(target) and "rmtree" in fn:
                self.hit("tm.py.delete_root", 0.9)
        if fn in ("open", "io.open", "builtins.open", "os.open") and args:
            target = self.path_of(args[0])
            mode = self.path_of(args[1]) if len(args) > 1 else ""
            for kw in node.keywords:
                if kw.arg == "mode":
                    mode = self.path_of(kw.value)
            if target and any(c in mode for c in "wax+") and SENSITIVE_WRITE.search(target.lstrip("~")):
                self.hit("tm.py.write_sensitive", 0.85)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
            target = self.path_of(node.func.value)
            if target and SENSITIVE_WRITE.search(target):
                self.hit("tm.py.write_sensitive", 0.85)
        if fn in ("os.chmod", "pathlib.Path.chmod") or fn.endswith(".chmod"):
            mode_node = args[1] if len(args) > 1 else (args[0] if fn.endswith(".chmod") and args else None)
            if (
                isinstance(mode_node, ast.Constant)
                and isinstance(mode_node.value, int)
                and mode_node.value & 0o002
            ):
                target = self.path_of(args[0]) if len(args) > 1 else ""
                self.hit("tm.py.chmod_world_writable", 0.9 if danger_path(target) or not target else 0.7)
        if fn in ("os.dup2",) and "socket.socket" in self.calls | {c.rstrip("()") for c in self.calls}:
            self.hit("tm.py.reverse_shell", 0.95)
        if _NET_SEND.search(fn) and (
            any(self.is_secret(a) for a in args) or any(self.is_secret(k.value) for k in node.keywords)
        ):
            self.hit("tm.py.exfiltration", 0.9)


def analyse_python(code: str) -> list[tuple[str, float]]:
    """Dangerous calls in a Python snippet, as ``(rule name, severity)`` pairs; [] if it does not parse."""
    tree: ast.AST | None = None
    for candidate in (code, code.strip().rstrip(".")):
        try:
            tree = ast.parse(candidate)
            break
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    if tree is None:
        return []
    visitor = _PyVisitor()
    try:
        visitor.visit(tree)
    except RecursionError:
        return [("tm.py.unparseable", 0.5)]
    if "socket.socket" in {c.rstrip("()") for c in visitor.calls} and (
        {"os.dup2", "pty.spawn"} & visitor.calls
        or any(s in ("/bin/sh", "/bin/bash", "sh", "bash", "-i") for s in visitor.strings)
    ):
        visitor.hit("tm.py.reverse_shell", 0.95)
    return sorted(visitor.found.items(), key=lambda kv: -kv[1])

"""Tool misuse in shell commands, judged by what they do: a command line is split as a POSIX
shell splits it (quotes, escapes, operators, groups in parentheses or backticks) into pipelines,
simple commands, arguments and redirections, and each command is judged with what runs before
and after it in its pipeline (``rm -rf /``, a download piped into a shell, ``chmod 777`` on a
system path, secrets sent over the network, reverse shells, ...). ``python -c`` code is handed
whole to the Python analysis (:mod:`._immune_python`), ``sh -c`` programs to this one again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from purpose_agent.memory._immune_targets import SENSITIVE_READ, SENSITIVE_WRITE, danger_path

__all__ = ["analyse_shell"]


# ----------------------------------------------------------------------------- vocabularies
_DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "iwr", "invoke-webrequest", "irm", "invoke-restmethod", "aria2c"}
)
_INTERPRETERS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "fish", "ash", "python", "python2", "python3", "perl", "ruby", "node",
     "php", "powershell", "pwsh", "iex", "invoke-expression", "source", "."}
)  # fmt: skip
_SENDERS = frozenset(
    {"curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "mail", "mailx", "sendmail", "openssl"}
)
_READERS = frozenset(
    {
        "cat",
        "tar",
        "zip",
        "gzip",
        "base64",
        "xxd",
        "head",
        "tail",
        "less",
        "more",
        "gpg",
        "openssl",
        "cp",
        "dd",
    }
)
_SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "fish"})
_ENV_DUMPS = frozenset({"env", "printenv", "set", "export", "history"})
_WRAPPERS = frozenset(
    {"sudo", "doas", "nohup", "time", "nice", "ionice", "command", "exec", "builtin", "xargs"}
)
_RC_FILE = re.compile(r"(?:^|/)\.(?:bashrc|bash_profile|profile|zshrc|zprofile|login|bash_login)$")
_REMOTE_FETCH = re.compile(
    r"\b(?:curl|wget|nc|ncat|iwr|invoke-webrequest)\b|/dev/tcp/|https?://", re.IGNORECASE
)
_WORLD_WRITABLE = re.compile(r"^(?:0?[0-7]?[0-7][0-7][2367]|[ugoa]*[+=][rwxXst]*w[rwxXst]*|a[+=]rwx|\+rwx)$")
_SETUID = re.compile(r"^(?:[ugoa]*\+s|[4-7][0-7]{3})$")
_DISK_DEVICE = re.compile(r"/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|mmcblk\d|disk\d|rdisk\d|mapper/)")
_CIDR_WIDE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}/(?:[89]|1\d|2[0-4])\b")

#: how a judge reports what it found: hit(rule name, severity)
_Hit = Callable[[str, float], None]


# ----------------------------------------------------------------------------- shell parsing
@dataclass(slots=True)
class _Cmd:
    name: str
    args: list[str]
    redirects: list[tuple[str, str]]
    assigns: list[str]
    wrapped: bool


_OPERATORS = frozenset({"|", "||", "&&", ";", "&", ";;", "|&", "\n"})
_REDIRECTS = frozenset({">", ">>", "<", ">&", "&>", "&>>", ">|", "<<<", "2>", "1>"})
_TRAILING = re.compile(r"(?<=[^./])[.,!?:]+$|(?<=/)[,!?:]+$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_LEX = re.compile(
    r"(?P<space>[^\S\n]+)|(?P<op>[;&|<>]+|[()`\n])|'(?P<single>[^']*)'|\"(?P<double>(?:\\.|[^\"\\])*)\""
    r"|\\(?P<escaped>.?)|(?P<bare>[^\s;&|<>()`'\"\\]+)|(?P<stray>['\"])",
    re.DOTALL,
)
_DQ_ESCAPE = re.compile(r"\\([\\\"$`\n])")  # the characters a backslash escapes inside double quotes
_MAX_NESTING = 4  # levels of sh -c "sh -c '...'" analysed
_MAX_GROUPS = 32  # nested parentheses and backticks split apart


@dataclass(frozen=True, slots=True)
class _Tok:
    text: str
    op: bool = False  # an unquoted operator: a run of ``;&|<>``, ``(``, ``)``, a backtick or a newline


def _tokens(command: str) -> list[_Tok]:
    """Words and operators of a command line, split as a POSIX shell does: quotes and backslashes
    make characters literal and are removed, so a quoted ``-c`` program comes out whole. Prose
    punctuation after a word (``rm -rf /tmp.``) is dropped unless it was quoted; a quote without
    its partner (``os.system('curl x | sh')`` read from ``curl``, an apostrophe) ends a word."""
    out: list[_Tok] = []
    word: list[str] = []
    in_word = False
    size = 0
    literal_end = 0  # length of the word up to its last quoted or escaped character

    def end_word() -> None:
        nonlocal word, in_word, size, literal_end
        if in_word:
            text = "".join(word)
            m = _TRAILING.search(text) if len(text) > 1 and text not in ("..", "./") else None
            out.append(_Tok(text[: m.start()] if m and m.start() >= literal_end else text))
        word, in_word, size, literal_end = [], False, 0, 0

    for m in _LEX.finditer(command):
        kind = m.lastgroup
        if kind in ("space", "stray"):  # a quote without its partner ends a word: code quoted in prose
            end_word()
            continue
        if kind == "op":
            end_word()
            out.append(_Tok(m.group(), op=True))
            continue
        in_word = True
        if kind == "single":
            piece, literal = m.group("single"), True
        elif kind == "double":
            piece, literal = _DQ_ESCAPE.sub(r"\1", m.group("double")), True
        elif kind == "escaped":
            piece, literal = m.group("escaped") or "\\", True
        else:
            piece, literal = m.group(), False
        word.append(piece)
        size += len(piece)
        if literal:
            literal_end = size
    end_word()
    return out


@dataclass(slots=True)
class _Group:
    """Commands being collected at one level: the whole line, or a group in parentheses or
    backticks (a subshell, ``$(...)``, ``<(...)``, or brackets in prose)."""

    opener: str
    pipelines: list[list[_Cmd]]
    words: list[str]
    redirects: list[tuple[str, str]]
    texts: list[str]  # every token, to stand for the group as one word in the command around it
    pending: str | None = None
    piped: bool = True  # the next command joins the last pipeline (at its start or after a ``|``)

    def add(self, cmds: list[_Cmd]) -> None:
        if cmds:
            if not self.piped:  # ``(a) b``: no pipe between them
                self.pipelines.append([])
            self.pipelines[-1].extend(cmds)
            self.piped = False

    def flush(self) -> None:
        cmd = _make_cmd(self.words, self.redirects)
        if cmd is not None:
            self.add([cmd])
        self.words, self.redirects = [], []


def _group(opener: str) -> _Group:
    return _Group(opener, [[]], [], [], [])


def _pipelines(tokens: list[_Tok]) -> list[list[_Cmd]]:
    """Pipelines (commands joined by ``|``) separated by the other operators. A group in
    parentheses or backticks is split on its own; inside a command it stands as one word (its
    text), as a substitution does, and in place of a command its commands join the pipeline, as
    a subshell's do. The first unmatched ``)`` closes a group opened before the text began (a
    command quoted from the middle of a line); the others separate commands."""
    done: list[list[_Cmd]] = []
    stack = [_group("")]
    wrapped = False

    def close() -> None:
        inner = stack.pop()
        inner.flush()
        done.extend(inner.pipelines)
        outer = stack[-1]
        if outer.words or outer.redirects:  # a substitution: one word of the command around it
            outer.words.append(" ".join(inner.texts))
        else:  # a subshell: its commands feed the pipeline it stands in, ``(a; b) | c``
            outer.add([c for p in inner.pipelines for c in p])
        stack[-1].texts.append(inner.opener + " ".join(inner.texts) + (")" if inner.opener == "(" else "`"))

    def close_through(opener: str) -> None:
        """Close the groups inside the innermost one opened by ``opener``, then that one."""
        while stack[-1].opener != opener:
            close()
        close()

    for tok in tokens:
        group = stack[-1]
        tok_text = tok.text
        if not tok.op:
            group.texts.append(tok_text)
            if group.pending is not None:
                group.redirects.append((group.pending, tok_text))
                group.pending = None
            else:
                group.words.append(tok_text)
            continue
        if tok_text == "`" and any(g.opener == "`" for g in stack):
            close_through("`")
            continue
        if tok_text in ("(", "`") and len(stack) <= _MAX_GROUPS:
            group.pending = None  # ``<(...)`` is a process substitution, not a file name
            stack.append(_group(tok_text))
            continue
        if tok_text == ")" and any(g.opener == "(" for g in stack):
            close_through("(")
            continue
        if tok_text == ")" and not wrapped:  # the text began inside a subshell: ``a; b) | c``
            wrapped = True
            while len(stack) > 1:
                close()
            stack.insert(0, _group(""))
            close()
            continue
        group.texts.append(tok_text)
        if tok_text in _REDIRECTS or (set(tok_text) <= set("<>&") and ">" in tok_text) or tok_text == "<":
            group.pending = tok_text
            continue
        if tok_text in _OPERATORS or set(tok_text) <= set(";&|()`"):
            group.pending = None
            group.flush()
            if tok_text not in ("|", "|&"):
                group.pipelines.append([])
            group.piped = True
            continue
        group.words.append(tok_text)
    while len(stack) > 1:
        close()
    stack[0].flush()
    done.extend(stack[0].pipelines)
    return [p for p in done if p]


def _make_cmd(words: list[str], redirects: list[tuple[str, str]]) -> _Cmd | None:
    assigns: list[str] = []
    i = 0
    wrapped = False
    while i < len(words):
        w = words[i]
        if _ASSIGN.match(w):
            assigns.append(w)
            i += 1
            continue
        base = w.rsplit("/", 1)[-1].lower()
        if base in _WRAPPERS or (base == "env" and i + 1 < len(words) and _ASSIGN.match(words[i + 1])):
            wrapped = True
            i += 1
            while i < len(words) and words[i].startswith("-"):
                i += 1  # wrapper flags (sudo -E, nice -n 5 is rare enough to ignore its value)
            continue
        break
    if i >= len(words):
        return _Cmd("", [], redirects, assigns, wrapped) if (assigns or redirects) else None
    name = words[i].rsplit("/", 1)[-1].lower()
    return _Cmd(name, words[i + 1 :], redirects, assigns, wrapped)


def _flags(args: list[str]) -> str:
    """All single-letter flags of ``args`` concatenated (``-rf -v`` → ``rfv``)."""
    return "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--") and len(a) > 1)


def analyse_shell(command: str) -> list[tuple[str, float]]:
    """Dangerous operations in one shell command line, as ``(rule name, severity)`` pairs."""
    return _analyse(command, 0)


def _analyse(command: str, depth: int) -> list[tuple[str, float]]:
    found: dict[str, float] = {}

    def hit(name: str, severity: float) -> None:
        found[name] = max(severity, found.get(name, 0.0))

    _substitutions(command, hit)
    if re.search(r"/dev/(?:tcp|udp)/", command):
        hit("tm.cmd.reverse_shell", 0.95)
    if re.search(r":\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}", command):
        hit("tm.cmd.fork_bomb", 0.95)
    for pipeline in _pipelines(_tokens(command)):
        for idx, cmd in enumerate(pipeline):
            _judge(cmd, pipeline[:idx], pipeline[idx + 1 :], hit)
            program = _shell_program(cmd) if depth < _MAX_NESTING else None
            if program:
                for sub, sev in _analyse(program, depth + 1):
                    hit(sub, sev)
    return sorted(found.items(), key=lambda kv: -kv[1])


def _shell_program(cmd: _Cmd) -> str | None:
    """The command string of ``sh -c '...'`` (``bash -lc``, ``zsh -ec``, ...): the first operand
    after options that include ``c``."""
    if cmd.name not in _SHELLS:
        return None
    has_c = False
    i = 0
    while i < len(cmd.args):
        a = cmd.args[i]
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2  # an option with a value (set -o pipefail)
            continue
        if len(a) > 1 and a[0] in "-+":
            has_c = has_c or (not a.startswith("--") and "c" in a[1:])
            i += 1
            continue
        return a if has_c else None
    return None


def _python_program(cmd: _Cmd) -> str | None:
    """The code of ``python -c '...'`` (``python3 -Ic``): the argument after the option ending in ``c``."""
    if not re.fullmatch(r"python[\d.]*", cmd.name):
        return None
    for i, a in enumerate(cmd.args[:-1]):
        if re.fullmatch(r"-[A-Za-z]*c", a):
            return cmd.args[i + 1]
    return None


def _substitutions(command: str, hit: _Hit) -> None:
    for m in re.finditer(
        r"(?:\$\(|<\(|`)\s*(?:sudo\s+)?(?P<dl>curl|wget|fetch|iwr|irm)\b", command, re.IGNORECASE
    ):
        prefix = command[: m.start()]
        if re.search(
            r"(?:^|[\s;&|(])(?:sudo\s+)?(?:eval|source|\.|(?:ba|z|da|k)?sh|python[\d.]*|perl|ruby|node|php)\b"
            r"(?:\s+-\w+)*\s*[\"']?$",
            prefix,
            re.IGNORECASE,
        ):
            hit("tm.cmd.remote_exec", 0.9)
    if re.search(r"\b(?:iex|invoke-expression)\b", command, re.IGNORECASE) and re.search(
        r"downloadstring|downloadfile|\biwr\b|invoke-webrequest|\birm\b|invoke-restmethod|net\.webclient",
        command,
        re.IGNORECASE,
    ):
        hit("tm.cmd.remote_exec", 0.9)


def _judge(cmd: _Cmd, upstream: list[_Cmd], downstream: list[_Cmd], hit: _Hit) -> None:
    name, args = cmd.name, cmd.args
    flags = _flags(args)
    plain = [a for a in args if not a.startswith("-")]
    for assign in cmd.assigns:
        if assign.upper().startswith(("LD_PRELOAD=", "LD_LIBRARY_PATH=/TMP", "DYLD_INSERT_LIBRARIES=")):
            hit("tm.cmd.preload_hijack", 0.8)
        if assign.upper().startswith(("HISTFILE=/DEV/NULL", "HISTSIZE=0")):
            hit("tm.cmd.clear_history", 0.8)
    for op, target in cmd.redirects:
        t = target.strip("'\"")
        if ">" in op:
            if SENSITIVE_WRITE.search(t) and not t.startswith("/dev/null"):
                hit("tm.cmd.write_sensitive", 0.85)
            elif _RC_FILE.search(t) and _REMOTE_FETCH.search(" ".join(args)):
                hit("tm.cmd.persistence", 0.85)
        elif op == "<" and name in _SENDERS and SENSITIVE_READ.search(t):
            hit("tm.cmd.exfiltration", 0.95)
    if name == "rm":
        recursive = "r" in flags.lower() or "--recursive" in args
        force = "f" in flags or "--force" in args
        if "--no-preserve-root" in args or ((recursive or force) and any(danger_path(a) for a in plain)):
            hit("tm.cmd.rm_root", 0.95)
        if any(a.startswith("/var/log") for a in plain):
            hit("tm.cmd.clear_logs", 0.8)
    elif name == "find":
        if plain and danger_path(plain[0]) and ("-delete" in args or ("-exec" in args and "rm" in args)):
            hit("tm.cmd.find_delete", 0.9)
    elif name in ("chmod", "chown", "chgrp"):
        recursive = "R" in flags or "--recursive" in args
        mode = plain[0] if plain else ""
        targets = plain[1:]
        danger = any(danger_path(t) or SENSITIVE_READ.search(t) for t in targets)
        if name == "chmod" and _WORLD_WRITABLE.match(mode):
            hit("tm.cmd.chmod_world_writable", 0.9 if (danger or recursive) else 0.6)
        elif (
            name == "chmod"
            and _SETUID.match(mode)
            and any(
                t.rsplit("/", 1)[-1] in {"bash", "sh", "python", "python3", "find", "vim", "cp"}
                for t in targets
            )
        ):
            hit("tm.cmd.setuid_shell", 0.9)
        elif name != "chmod" and recursive and any(danger_path(t) for t in targets):
            hit("tm.cmd.chown_root", 0.85)
    elif name == "dd":
        if any(a.startswith("of=") and _DISK_DEVICE.search(a) for a in args):
            hit("tm.cmd.dd_device", 0.9)
    elif name.startswith("mkfs") or name in ("wipefs", "fdisk", "sfdisk", "parted"):
        if name.startswith("mkfs") or name == "wipefs" or any(_DISK_DEVICE.search(a) for a in args):
            hit("tm.cmd.format_disk", 0.85)
    elif name == "shred":
        if any(_DISK_DEVICE.search(a) or danger_path(a) for a in plain):
            hit("tm.cmd.shred_device", 0.9)
    elif name in ("nc", "ncat", "netcat"):
        if ("e" in flags or "c" in flags) and any(
            a.rsplit("/", 1)[-1] in {"sh", "bash", "zsh", "cmd", "cmd.exe", "powershell"} for a in args
        ):
            hit("tm.cmd.reverse_shell", 0.95)
        if upstream and _reads_secrets(upstream):
            hit("tm.cmd.exfiltration", 0.95)
    elif name == "socat":
        if any(a.lower().startswith(("exec:", "system:")) for a in args):
            hit("tm.cmd.reverse_shell", 0.95)
    elif name in ("curl", "wget"):
        upload = {"-d", "--data", "--data-binary", "--data-raw", "--data-urlencode", "-F", "--form", "-T",
                  "--upload-file", "--post-file", "--body-file", "--post-data"}  # fmt: skip
        uploads = any(a.split("=", 1)[0] in upload or (a.startswith("-") and a[1:2] in "dFT" and len(a) > 2)
                      for a in args)  # fmt: skip
        if uploads and (
            any(SENSITIVE_READ.search(a) for a in args) or (upstream and _reads_secrets(upstream))
        ):
            hit("tm.cmd.exfiltration", 0.95)
        if downstream and any(c.name in _INTERPRETERS for c in downstream):
            hit("tm.cmd.pipe_to_shell", 0.9)
    elif name in ("scp", "rsync", "sftp"):
        remote = any(re.search(r"^[\w.-]+@[\w.-]+:|^[\w.-]+:\S*$", a) for a in plain)
        if remote and any(SENSITIVE_READ.search(a) for a in plain):
            hit("tm.cmd.exfiltration", 0.95)
    elif name in _SENDERS and upstream and _reads_secrets(upstream):
        hit("tm.cmd.exfiltration", 0.95)
    if name in _INTERPRETERS and upstream:
        if any(c.name in _DOWNLOADERS for c in upstream):
            hit("tm.cmd.pipe_to_shell", 0.9)
        elif any(c.name in ("base64", "xxd", "openssl") and ("d" in _flags(c.args) or "r" in _flags(c.args))
                 for c in upstream):  # fmt: skip
            hit("tm.cmd.decoded_exec", 0.9)
    code = _python_program(cmd)
    if code:
        # imported here: the Python analysis imports this module (its os.system commands are shell)
        from purpose_agent.memory._immune_python import analyse_python

        for sub, sev in analyse_python(code):
            hit(sub, sev)
    if name in ("bash", "sh", "zsh") and "i" in flags and any("/dev/tcp" in t for _, t in cmd.redirects):
        hit("tm.cmd.reverse_shell", 0.95)
    crontab = name == "crontab" or (name == "tee" and any("cron" in a for a in plain))
    if crontab and any(_REMOTE_FETCH.search(" ".join([c.name, *c.args])) for c in upstream):
        hit("tm.cmd.persistence", 0.85)
    if name == "tee":
        for t in plain:
            if SENSITIVE_WRITE.search(t):
                hit("tm.cmd.write_sensitive", 0.85)
    if (
        name in ("kill", "pkill")
        and ("-1" in plain or any(a in ("-1",) for a in args))
        and ("9" in flags or "-KILL" in args or "-SIGKILL" in args)
    ):
        hit("tm.cmd.kill_all", 0.85)
    if name in ("shutdown", "poweroff", "halt") and any(a in ("now", "-h", "-P", "-r", "0") for a in args):
        hit("tm.cmd.shutdown", 0.7)
    if name == "init" and plain[:1] in (["0"], ["6"]):
        hit("tm.cmd.shutdown", 0.7)
    if name == "killall5":
        hit("tm.cmd.kill_all", 0.85)
    if name == "setenforce" and plain[:1] == ["0"]:
        hit("tm.cmd.disable_security", 0.85)
    if name in ("iptables", "ip6tables") and (
        "F" in flags or "--flush" in args or ("P" in flags and "ACCEPT" in args)
    ):
        hit("tm.cmd.disable_security", 0.85)
    if name == "ufw" and plain[:1] == ["disable"]:
        hit("tm.cmd.disable_security", 0.85)
    stopping = name in ("systemctl", "service") and any(a in ("stop", "disable", "mask") for a in plain)
    if stopping and any(
        re.search(r"firewall|ufw|apparmor|auditd|selinux|fail2ban|clamav|defender", a) for a in plain
    ):
        hit("tm.cmd.disable_security", 0.85)
    if (name == "spctl" and "--master-disable" in args) or (name == "csrutil" and "disable" in plain):
        hit("tm.cmd.disable_security", 0.85)
    if name == "history" and "c" in flags:
        hit("tm.cmd.clear_history", 0.8)
    if name == "unset" and any(a.upper() == "HISTFILE" for a in plain):
        hit("tm.cmd.clear_history", 0.8)
    if name == "export" and any(a.upper().startswith(("HISTFILE=/DEV/NULL", "LD_PRELOAD=")) for a in plain):
        hit("tm.cmd.clear_history" if "HIST" in " ".join(plain).upper() else "tm.cmd.preload_hijack", 0.8)
    if name == "truncate" and any(a.startswith("/var/log") for a in plain):
        hit("tm.cmd.clear_logs", 0.8)
    if name == "su" and (not plain or plain[0] in ("root", "-")):
        hit("tm.cmd.privilege", 0.7)
    if name in ("useradd", "usermod") and (("o" in flags and "u" in flags and "0" in plain) or
                                          any(g in ("sudo", "wheel", "root", "admin") for g in plain)):  # fmt: skip
        hit("tm.cmd.privilege", 0.8)
    if name == "passwd" and plain[:1] == ["root"]:
        hit("tm.cmd.privilege", 0.75)
    forced = ("--force" in args or "f" in flags) and "--force-with-lease" not in args
    shared = not plain[2:] or any(b in ("main", "master") for b in plain[2:])
    if name == "git" and plain[:1] == ["push"] and forced and shared:
        hit("tm.cmd.force_push", 0.75)
    if name == "aws" and (("rb" in plain and "--force" in args) or ("rm" in plain and "--recursive" in args)
                          or "terminate-instances" in plain or "delete-db-instance" in plain):  # fmt: skip
        hit("tm.cmd.infra_destroy", 0.8)
    if name == "gcloud" and "delete" in plain and any(a in ("projects", "instances", "sql") for a in plain):
        hit("tm.cmd.infra_destroy", 0.8)
    if name == "kubectl" and "delete" in plain and ("--all" in args or "namespace" in plain or "ns" in plain):
        hit("tm.cmd.infra_destroy", 0.8)
    if name == "terraform" and "destroy" in plain and any(a.startswith("-auto-approve") for a in args):
        hit("tm.cmd.infra_destroy", 0.8)
    if name == "docker" and "--privileged" in args and any(re.match(r"^/:", a) for a in plain):
        hit("tm.cmd.host_mount", 0.85)
    if name in ("pip", "pip3") and ("--trusted-host" in args or any(a.startswith("http://") for a in args)):
        hit("tm.cmd.insecure_install", 0.7)
    if name in ("hydra", "medusa", "masscan", "xmrig", "minerd", "cpuminer"):
        hit("tm.cmd.attack_tool", 0.8)
    if name == "nmap" and any(_CIDR_WIDE.search(a) for a in plain):
        hit("tm.cmd.attack_tool", 0.8)
    if name == "chattr" and "+i" in args and any(a.startswith("/etc") for a in plain):
        hit("tm.cmd.disable_security", 0.8)


def _reads_secrets(cmds: list[_Cmd]) -> bool:
    for c in cmds:
        if c.name in _ENV_DUMPS and not c.args:
            return True
        if c.name in _READERS | {"find", "grep"} and any(SENSITIVE_READ.search(a) for a in c.args):
            return True
        if any(op == "<" and SENSITIVE_READ.search(t) for op, t in c.redirects):
            return True
    return False

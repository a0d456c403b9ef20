"""Tool-misuse detection that parses commands and code instead of matching phrases.

Shell commands are found in code spans and in prose (at a known command name), split with
:mod:`shlex` into pipelines, simple commands, arguments and redirections, and judged by what
they do: ``rm -rf /``, a download piped into a shell, ``chmod 777`` on a system path, secrets
sent over the network, reverse shells, writes to ``~/.ssh/authorized_keys``, firewall or
SELinux switched off, and so on. Python snippets are parsed with :mod:`ast`: ``os.system`` and
``subprocess`` calls have their command analysed as shell, ``eval``/``exec``/``pickle.loads`` of
fetched data, ``shutil.rmtree`` of the home directory, writes to sensitive files, reverse
shells and exfiltration of ``os.environ`` or key files are reported. Standard library only.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Finding", "analyse", "analyse_python", "analyse_shell"]

_MAX_CANDIDATES = 64  # command or code candidates examined per text
_MAX_CANDIDATE_CHARS = 600
_MAX_CODE_CHARS = 8_000


@dataclass(frozen=True, slots=True)
class Finding:
    """One dangerous command or call: a rule name, the span in the analysed text, a severity."""

    name: str
    start: int
    end: int
    severity: float


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
_ENV_DUMPS = frozenset({"env", "printenv", "set", "export", "history"})
_WRAPPERS = frozenset(
    {"sudo", "doas", "nohup", "time", "nice", "ionice", "command", "exec", "builtin", "xargs"}
)
_COMMANDS = (
    "rm", "find", "chmod", "chown", "chgrp", "dd", "mkfs", r"mkfs\.\w+", "wipefs", "fdisk", "sfdisk", "parted",
    "shred", "curl", "wget", "fetch", "iwr", "irm", "nc", "ncat", "netcat", "socat", "bash", "sh", "zsh", "dash",
    "python", "python3", "perl", "ruby", "node", "powershell", "pwsh", "eval", "source", "sudo", "doas", "su",
    "scp", "rsync", "sftp", "tar", "cat", "echo", "printf", "crontab", "iptables", "ip6tables", "ufw",
    "setenforce", "systemctl", "service", "kill", "killall", "killall5", "pkill", "history", "unset", "export",
    "env", "printenv", "base64", "xxd", "tee", "git", "aws", "gcloud", "az", "kubectl", "terraform", "docker",
    "pip", "pip3", "nmap", "masscan", "hydra", "medusa", "xmrig", "minerd", "cpuminer", "useradd", "usermod",
    "passwd", "chattr", "mount", "truncate", "shutdown", "poweroff", "halt", "init", "ssh", "spctl", "csrutil", r"ld_preload=\S*",
)  # fmt: skip
_COMMAND_START = re.compile(
    r"(?<![\w./\\-])(?:\$\s+)?(?P<cmd>" + "|".join(_COMMANDS) + r")(?=$|[\s;|&'\"`)])", re.IGNORECASE
)
_SENTENCE_CUT = re.compile(r"[.!?](?=\s+[A-Z\u4e00-\u9fff])|[。！？]|\s(?:then|and\s+then)\s(?!-)")
_FENCE = re.compile(r"```[^\n`]*\n?(?P<code>.*?)```", re.DOTALL)
_INLINE = re.compile(r"(?<!`)`(?P<code>[^`\n]{2,400})`(?!`)")
_PY_START = re.compile(
    r"(?<![\w.])(?:__import__\s*\(|(?:os|subprocess|shutil|pickle|marshal|socket|pty|requests|httpx|urllib\w*|"
    r"pathlib|Path|builtins|yaml|dill|cloudpickle|ctypes)\.[\w.]*\s*\(|(?:eval|exec|compile|open|getattr)\s*\(|"
    r"import\s+[\w.]+|from\s+[\w.]+\s+import\b)"
)

_Hit = Callable[[str, float], None]

_SENSITIVE_READ = re.compile(
    r"(?:\.ssh(?:/|\b)|\bid_(?:rsa|ed25519|ecdsa|dsa)\b|\.aws(?:/|\b)|\.gnupg\b|\.netrc\b|\.git-credentials\b|"
    r"\.kube/config\b|\.docker/config\.json|\.npmrc\b|\.pypirc\b|(?<![\w.])\.env\b(?!\.example|\.sample)|"
    r"/etc/(?:shadow|gshadow|passwd|sudoers|master\.passwd)\b|\.(?:bash|zsh)_history\b|\bcookies(?:\.sqlite)?\b|"
    r"\bLogin\s+Data\b|\bkeychain\b|\.password-store\b|\bcredentials(?:\.json|\.csv)?\b|\bwallet\.dat\b)",
    re.IGNORECASE,
)
_SENSITIVE_WRITE = re.compile(
    r"(?:authorized_keys\b|\.ssh/|/etc/(?!\S*\.example)\S+|^/proc/sys|^/(?:usr/)?s?bin/|^/boot/|^/lib\w*/|/var/spool/cron|"
    r"^/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|mmcblk\d|disk\d))",
    re.IGNORECASE,
)
_RC_FILE = re.compile(r"(?:^|/)\.(?:bashrc|bash_profile|profile|zshrc|zprofile|login|bash_login)$")
_REMOTE_FETCH = re.compile(
    r"\b(?:curl|wget|nc|ncat|iwr|invoke-webrequest)\b|/dev/tcp/|https?://", re.IGNORECASE
)
_SYSTEM_DIR = re.compile(
    r"^(?:/|/\*|/\.|\*|\.\./?\*?|~/?\*?|\$\{?HOME\}?/?\*?|%USERPROFILE%\\?\*?|[A-Za-z]:\\?\*?|"
    r"/(?:etc|usr|var|home|boot|bin|sbin|lib\w*|opt|root|dev|sys|proc|srv|mnt|media|Users|System|Library|"
    r"Applications|private)(?:/[^/\s]*)?/?\*?|~/\.(?:ssh|aws|gnupg|config)/?\*?|/var/log\S*)$"
)
_WORLD_WRITABLE = re.compile(r"^(?:0?[0-7]?[0-7][0-7][2367]|[ugoa]*[+=][rwxXst]*w[rwxXst]*|a[+=]rwx|\+rwx)$")
_SETUID = re.compile(r"^(?:[ugoa]*\+s|[4-7][0-7]{3})$")
_DISK_DEVICE = re.compile(r"/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|mmcblk\d|disk\d|rdisk\d|mapper/)")
_CIDR_WIDE = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}/(?:[89]|1\d|2[0-4])\b")


def _danger_path(token: str) -> bool:
    t = token.strip("'\"")
    return bool(_SYSTEM_DIR.match(t)) or t == "--no-preserve-root"


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
_TRAILING = re.compile(r"(?<=[^./])[.,!?:)]+$|(?<=/)[,!?:)]+$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _tokens(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        raw = list(lexer)
    except ValueError:  # unbalanced quotes in prose: a rough split keeps the analysis going
        raw = re.findall(r"[;&|<>]+|[^\s;&|<>]+", command.replace("'", " ").replace('"', " "))
    return [_TRAILING.sub("", t) if len(t) > 1 and t not in ("..", "./") else t for t in raw]


def _pipelines(tokens: list[str]) -> list[list[_Cmd]]:
    """Pipelines (commands joined by ``|``) separated by the other operators."""
    pipelines: list[list[_Cmd]] = [[]]
    words: list[str] = []
    redirects: list[tuple[str, str]] = []
    pending: str | None = None

    def flush() -> None:
        nonlocal words, redirects
        cmd = _make_cmd(words, redirects)
        if cmd is not None:
            pipelines[-1].append(cmd)
        words, redirects = [], []

    for tok in tokens:
        if pending is not None:
            redirects.append((pending, tok))
            pending = None
            continue
        if tok in _REDIRECTS or ((tok and set(tok) <= set("<>&") and ">" in tok) or tok == "<"):
            pending = tok
            continue
        if tok in _OPERATORS or (tok and set(tok) <= set(";&|")):
            flush()
            if tok not in ("|", "|&"):
                pipelines.append([])
            continue
        words.append(tok)
    flush()
    return [p for p in pipelines if p]


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
    return sorted(found.items(), key=lambda kv: -kv[1])


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
            if _SENSITIVE_WRITE.search(t) and not t.startswith("/dev/null"):
                hit("tm.cmd.write_sensitive", 0.85)
            elif _RC_FILE.search(t) and _REMOTE_FETCH.search(" ".join(args)):
                hit("tm.cmd.persistence", 0.85)
        elif op == "<" and name in _SENDERS and _SENSITIVE_READ.search(t):
            hit("tm.cmd.exfiltration", 0.95)
    if name == "rm":
        recursive = "r" in flags.lower() or "--recursive" in args
        force = "f" in flags or "--force" in args
        if "--no-preserve-root" in args or ((recursive or force) and any(_danger_path(a) for a in plain)):
            hit("tm.cmd.rm_root", 0.95)
        if any(a.startswith("/var/log") for a in plain):
            hit("tm.cmd.clear_logs", 0.8)
    elif name == "find":
        if plain and _danger_path(plain[0]) and ("-delete" in args or ("-exec" in args and "rm" in args)):
            hit("tm.cmd.find_delete", 0.9)
    elif name in ("chmod", "chown", "chgrp"):
        recursive = "R" in flags or "--recursive" in args
        mode = plain[0] if plain else ""
        targets = plain[1:]
        danger = any(_danger_path(t) or _SENSITIVE_READ.search(t) for t in targets)
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
        elif name != "chmod" and recursive and any(_danger_path(t) for t in targets):
            hit("tm.cmd.chown_root", 0.85)
    elif name == "dd":
        if any(a.startswith("of=") and _DISK_DEVICE.search(a) for a in args):
            hit("tm.cmd.dd_device", 0.9)
    elif name.startswith("mkfs") or name in ("wipefs", "fdisk", "sfdisk", "parted"):
        if name.startswith("mkfs") or name == "wipefs" or any(_DISK_DEVICE.search(a) for a in args):
            hit("tm.cmd.format_disk", 0.85)
    elif name == "shred":
        if any(_DISK_DEVICE.search(a) or _danger_path(a) for a in plain):
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
            any(_SENSITIVE_READ.search(a) for a in args) or (upstream and _reads_secrets(upstream))
        ):
            hit("tm.cmd.exfiltration", 0.95)
        if downstream and any(c.name in _INTERPRETERS for c in downstream):
            hit("tm.cmd.pipe_to_shell", 0.9)
    elif name in ("scp", "rsync", "sftp"):
        remote = any(re.search(r"^[\w.-]+@[\w.-]+:|^[\w.-]+:\S*$", a) for a in plain)
        if remote and any(_SENSITIVE_READ.search(a) for a in plain):
            hit("tm.cmd.exfiltration", 0.95)
    elif name in _SENDERS and upstream and _reads_secrets(upstream):
        hit("tm.cmd.exfiltration", 0.95)
    if name in _INTERPRETERS and upstream:
        if any(c.name in _DOWNLOADERS for c in upstream):
            hit("tm.cmd.pipe_to_shell", 0.9)
        elif any(c.name in ("base64", "xxd", "openssl") and ("d" in _flags(c.args) or "r" in _flags(c.args))
                 for c in upstream):  # fmt: skip
            hit("tm.cmd.decoded_exec", 0.9)
    if name in ("python", "python2", "python3") and "-c" in args:
        code = args[args.index("-c") + 1] if args.index("-c") + 1 < len(args) else ""
        for sub, sev in analyse_python(code):
            hit(sub, sev)
    if name in ("bash", "sh", "zsh") and "i" in flags and any("/dev/tcp" in t for _, t in cmd.redirects):
        hit("tm.cmd.reverse_shell", 0.95)
    crontab = name == "crontab" or (name == "tee" and any("cron" in a for a in plain))
    if crontab and any(_REMOTE_FETCH.search(" ".join([c.name, *c.args])) for c in upstream):
        hit("tm.cmd.persistence", 0.85)
    if name == "tee":
        for t in plain:
            if _SENSITIVE_WRITE.search(t):
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
        if c.name in _READERS | {"find", "grep"} and any(_SENSITIVE_READ.search(a) for a in c.args):
            return True
        if any(op == "<" and _SENSITIVE_READ.search(t) for op, t in c.redirects):
            return True
    return False


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
                and _SENSITIVE_READ.search(sub.value)
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
            if target and _danger_path(target.rstrip("/") or "/"):
                self.hit("tm.py.delete_root", 0.95)
            elif target and _SENSITIVE_READ.search(target) and "rmtree" in fn:
                self.hit("tm.py.delete_root", 0.9)
        if fn in ("open", "io.open", "builtins.open", "os.open") and args:
            target = self.path_of(args[0])
            mode = self.path_of(args[1]) if len(args) > 1 else ""
            for kw in node.keywords:
                if kw.arg == "mode":
                    mode = self.path_of(kw.value)
            if target and any(c in mode for c in "wax+") and _SENSITIVE_WRITE.search(target.lstrip("~")):
                self.hit("tm.py.write_sensitive", 0.85)
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
            target = self.path_of(node.func.value)
            if target and _SENSITIVE_WRITE.search(target):
                self.hit("tm.py.write_sensitive", 0.85)
        if fn in ("os.chmod", "pathlib.Path.chmod") or fn.endswith(".chmod"):
            mode_node = args[1] if len(args) > 1 else (args[0] if fn.endswith(".chmod") and args else None)
            if (
                isinstance(mode_node, ast.Constant)
                and isinstance(mode_node.value, int)
                and mode_node.value & 0o002
            ):
                target = self.path_of(args[0]) if len(args) > 1 else ""
                self.hit("tm.py.chmod_world_writable", 0.9 if _danger_path(target) or not target else 0.7)
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


# ----------------------------------------------------------------------------- candidates
def _balanced_end(text: str, start: int, limit: int) -> int:
    """End of the call expression whose first ``(`` is at or after ``start`` (or -1)."""
    i = text.find("(", start, start + 80)
    if i < 0:
        return -1
    depth = 0
    quote = ""
    end = min(len(text), start + limit)
    while i < end:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _shell_candidates(text: str) -> Iterator[tuple[int, int]]:
    for line in re.finditer(r"[^\n]+", text):
        pos = line.start()
        for m in _COMMAND_START.finditer(text, line.start(), line.end()):
            if m.start() < pos:
                continue
            end = min(line.end(), m.start() + _MAX_CANDIDATE_CHARS)
            cut = _SENTENCE_CUT.search(text, m.end(), end)
            if cut:
                end = cut.start()
            yield m.start(), end
            pos = end


_ANYWHERE = (
    ("tm.cmd.fork_bomb", re.compile(r":\s*\(\s*\)\s*\{\s*:\s*\|\s*:\s*&\s*\}\s*;\s*:")),
    ("tm.cmd.reverse_shell", re.compile(r"/dev/(?:tcp|udp)/[\w.-]{1,253}/\d{1,5}")),
)


def analyse(text: str) -> list[Finding]:
    """Dangerous commands and calls found anywhere in ``text`` (code spans and prose)."""
    out: dict[str, Finding] = {}
    budget = _MAX_CANDIDATES
    for name, pattern in _ANYWHERE:
        m = pattern.search(text)
        if m:
            out[name] = Finding(name, m.start(), m.end(), 0.95)

    def add(results: list[tuple[str, float]], start: int, end: int) -> None:
        for name, sev in results:
            if name not in out:
                out[name] = Finding(name, start, end, sev)

    for m in _FENCE.finditer(text):
        if budget <= 0:
            break
        budget -= 1
        code = m.group("code")[:_MAX_CODE_CHARS]
        add(analyse_python(code), m.start("code"), m.end("code"))
        for line in code.splitlines():
            if line.strip():
                add(analyse_shell(line[:_MAX_CANDIDATE_CHARS]), m.start("code"), m.end("code"))
    for m in _INLINE.finditer(text):
        if budget <= 0:
            break
        budget -= 1
        add(analyse_shell(m.group("code")), m.start("code"), m.end("code"))
        add(analyse_python(m.group("code")), m.start("code"), m.end("code"))
    for start, end in _shell_candidates(text):
        if budget <= 0:
            break
        budget -= 1
        add(analyse_shell(text[start:end]), start, end)
    for m in _PY_START.finditer(text):
        if budget <= 0:
            break
        budget -= 1
        if m.group().startswith(("import", "from")):
            line_end = text.find("\n", m.start())
            end = len(text) if line_end < 0 else line_end
            end = min(end, m.start() + _MAX_CODE_CHARS)
            snippet = text[m.start() : end]
            results = analyse_python(snippet)
            cut = len(snippet)
            for _ in range(4):  # prose after the code: retry up to each of the last closing brackets
                if results:
                    break
                cut = snippet.rfind(")", 0, cut)
                if cut < 0:
                    break
                results = analyse_python(snippet[: cut + 1])
            add(results, m.start(), end)
            continue
        end = _balanced_end(text, m.start(), _MAX_CODE_CHARS)
        if end > 0:
            add(analyse_python(text[m.start() : end]), m.start(), end)
    return sorted(out.values(), key=lambda f: (f.start, -f.severity))

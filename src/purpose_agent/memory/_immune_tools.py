"""Tool-misuse detection that parses commands and code instead of matching phrases.

Shell commands are found in code spans and in prose (at a known command name), split as a
POSIX shell splits them into pipelines, simple commands, arguments and redirections (a quoted
``python -c`` or ``sh -c`` program is analysed whole), and judged by what they do:
``rm -rf /``, a download piped into a shell, ``chmod 777`` on a system path, secrets
sent over the network, reverse shells, writes to ``~/.ssh/authorized_keys``, firewall or
SELinux switched off, and so on. Python snippets are parsed with :mod:`ast`: ``os.system`` and
``subprocess`` calls have their command analysed as shell, ``eval``/``exec``/``pickle.loads`` of
fetched data, ``shutil.rmtree`` of the home directory, writes to sensitive files, reverse
shells and exfiltration of ``os.environ`` or key files are reported. Standard library only.

The parts: :mod:`._immune_shell` (shell commands), :mod:`._immune_python` (Python snippets),
:mod:`._immune_targets` (the sensitive paths both look for); this module finds the commands and
code in a text and reports each as a ``Finding``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from purpose_agent.memory._immune_python import analyse_python
from purpose_agent.memory._immune_shell import analyse_shell

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


# ----------------------------------------------------------------------------- candidate finders
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

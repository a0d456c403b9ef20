"""The files and directories whose reading, writing or deletion is dangerous: shared by the
shell (:mod:`._immune_shell`) and Python (:mod:`._immune_python`) analyses of tool misuse."""

from __future__ import annotations

import re

__all__ = ["SENSITIVE_READ", "SENSITIVE_WRITE", "danger_path"]

#: secrets a command or call must not read and send: keys, credentials, shadow files, histories
SENSITIVE_READ = re.compile(
    r"(?:\.ssh(?:/|\b)|\bid_(?:rsa|ed25519|ecdsa|dsa)\b|\.aws(?:/|\b)|\.gnupg\b|\.netrc\b|\.git-credentials\b|"
    r"\.kube/config\b|\.docker/config\.json|\.npmrc\b|\.pypirc\b|(?<![\w.])\.env\b(?!\.example|\.sample)|"
    r"/etc/(?:shadow|gshadow|passwd|sudoers|master\.passwd)\b|\.(?:bash|zsh)_history\b|\bcookies(?:\.sqlite)?\b|"
    r"\bLogin\s+Data\b|\bkeychain\b|\.password-store\b|\bcredentials(?:\.json|\.csv)?\b|\bwallet\.dat\b)",
    re.IGNORECASE,
)
#: files whose change compromises the system: SSH keys, /etc, binaries, boot, raw disks
SENSITIVE_WRITE = re.compile(
    r"(?:authorized_keys\b|\.ssh/|/etc/(?!\S*\.example)\S+|^/proc/sys|^/(?:usr/)?s?bin/|^/boot/|^/lib\w*/|/var/spool/cron|"
    r"^/dev/(?:sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|mmcblk\d|disk\d))",
    re.IGNORECASE,
)
_SYSTEM_DIR = re.compile(
    r"^(?:/|/\*|/\.|\*|\.\./?\*?|~/?\*?|\$\{?HOME\}?/?\*?|%USERPROFILE%\\?\*?|[A-Za-z]:\\?\*?|"
    r"/(?:etc|usr|var|home|boot|bin|sbin|lib\w*|opt|root|dev|sys|proc|srv|mnt|media|Users|System|Library|"
    r"Applications|private)(?:/[^/\s]*)?/?\*?|~/\.(?:ssh|aws|gnupg|config)/?\*?|/var/log\S*)$"
)


def danger_path(token: str) -> bool:
    """A system or home directory (or ``--no-preserve-root``): never a target to delete or open up."""
    t = token.strip("'\"")
    return bool(_SYSTEM_DIR.match(t)) or t == "--no-preserve-root"

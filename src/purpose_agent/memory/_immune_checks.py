"""The rule type of the immune system's regex layer, and the checks a match must pass.

A ``Rule`` is one compiled, bounded regex with its conditions; ``rule()`` builds one (the tables
are in :mod:`._immune_rules`). A check is the ``Rule.check`` of a rule whose regex alone would
flag too much: a card number must pass Luhn, a secret must look random (entropy) and not be a
placeholder, an e-mail must not be on a reserved domain, and so on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "PI",
    "PL",
    "SM",
    "SO",
    "TM",
    "Rule",
    "card_check",
    "conn_check",
    "email_check",
    "home_check",
    "password_check",
    "phone_check",
    "regex",
    "rm_check",
    "rule",
    "secret_value_check",
]

PI = "prompt_injection"
SM = "score_manipulation"
TM = "tool_misuse"
PL = "privacy_leak"
SO = "scope_overreach"
CATEGORIES = (PI, SM, TM, PL, SO)

_I = re.IGNORECASE


@dataclass(frozen=True, slots=True)
class Rule:
    """One detection rule.

    ``requires`` / ``forbids`` are searched in the sentence around the match;
    ``negatable`` drops a match preceded by a negation ("never", "do not", ...);
    ``reach`` marks a scope claim ("team" / "global") judged against the lesson's scope;
    ``skip_kinds`` lists memory kinds for which the rule does not apply.
    """

    category: str
    name: str
    pattern: re.Pattern[str]
    severity: float = 0.8
    negatable: bool = False
    reach: str | None = None
    skip_kinds: frozenset[str] = frozenset()
    requires: tuple[re.Pattern[str], ...] = ()
    forbids: tuple[re.Pattern[str], ...] = ()
    check: Callable[[re.Match[str]], bool] | None = None
    sentence_evidence: bool = False


def regex(pattern: str, flags: int = _I) -> re.Pattern[str]:
    """``pattern`` compiled, case-insensitive unless ``flags`` say otherwise."""
    return re.compile(pattern, flags)


def rule(
    category: str, name: str, pattern: str, severity: float = 0.8, *, flags: int = _I, **kw: object
) -> Rule:
    """A ``Rule`` of ``pattern`` (compiled with ``flags``); ``kw`` are its other fields."""
    return Rule(category, name, regex(pattern, flags), severity, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- validators
def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_TEST_CARDS = frozenset({"4242424242424242", "4000056655665556", "5555555555554444", "378282246310005"})


def card_check(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    if digits in _TEST_CARDS:  # processors' published test numbers
        return False
    if not 13 <= len(digits) <= 19 or digits[0] not in "3456" or len(set(digits)) < 2:
        return False
    return _luhn(digits)


def _entropy(s: str) -> float:
    counts: dict[str, int] = {}
    for c in s:
        counts[c] = counts.get(c, 0) + 1
    n = len(s)
    return -sum(k / n * math.log2(k / n) for k in counts.values())


_PLACEHOLDER = regex(
    r"^(?:os\.|env|getenv|process\.env|settings\.|config\.|\$|\{|<|\[|%|\*{3}|x{4}|your|my[_-]?|example|"
    r"dummy|fake|test|changeme|placeholder|redacted|none|null|secret|password|token|api[_-]?key|\.\.\.)"
)


def secret_value_check(m: re.Match[str]) -> bool:
    val = m.group("val")
    if _PLACEHOLDER.search(val):
        return False
    has_digit = any(c.isdigit() for c in val)
    has_alpha = any(c.isalpha() for c in val)
    return has_digit and has_alpha and _entropy(val) >= 3.0


_COMMON_VALUES = frozenset(
    [
        "required",
        "needed",
        "set",
        "stored",
        "hashed",
        "missing",
        "wrong",
        "incorrect",
        "correct",
        "valid",
        "invalid",
        "not",
        "the",
        "a",
        "an",
        "too",
        "different",
        "changed",
        "reset",
        "expired",
        "empty",
        "blank",
        "weak",
        "strong",
        "optional",
        "mandatory",
        "visible",
        "hidden",
        "encrypted",
        "secure",
        "long",
        "short",
        "given",
        "sent",
        "saved",
        "used",
        "shown",
        "ignored",
        "checked",
        "case-sensitive",
        "unknown",
    ]
)


def password_check(m: re.Match[str]) -> bool:
    val = m.group("val").rstrip(".")
    quoted = bool(m.group("q"))
    if len(val) < 4 or val.lower() in _COMMON_VALUES or _PLACEHOLDER.search(val):
        return False
    has_special = any(c.isdigit() or (not c.isalnum() and c not in "-'") for c in val)
    return quoted or has_special


_GENERIC_USERS = frozenset(
    [
        "user",
        "username",
        "users",
        "me",
        "you",
        "your_name",
        "yourname",
        "your-name",
        "name",
        "example",
        "runner",
        "ubuntu",
        "root",
        "shared",
        "guest",
        "public",
        "default",
        "all\\",
        "users",
        "admin",
        "someone",
        "somebody",
        "x",
        "foo",
        "bar",
        "$user",
        "jdoe",
    ]
)


def home_check(m: re.Match[str]) -> bool:
    return m.group("user").lower() not in _GENERIC_USERS


_RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})


def email_check(m: re.Match[str]) -> bool:
    domain = m.group().rpartition("@")[2].lower()
    if domain in _RESERVED_DOMAINS or domain.endswith(tuple("." + d for d in _RESERVED_DOMAINS)):
        return False
    return domain.rpartition(".")[2] not in _RESERVED_TLDS


def phone_check(m: re.Match[str]) -> bool:
    num = m.group("num") if "num" in m.re.groupindex else m.group()
    digits = re.sub(r"\D", "", num)
    if not 9 <= len(digits) <= 15 or len(set(digits)) < 3:
        return False
    return num.lstrip().startswith(("+", "0", "(")) or bool(re.search(r"\d[\s.-]\d", num))


def conn_check(m: re.Match[str]) -> bool:
    pw = m.group("pw")
    return pw.lower() not in {
        "password",
        "pass",
        "pwd",
        "secret",
        "***",
        "xxx",
        "changeme",
    } and not pw.startswith(("{", "<", "$", "%"))


def rm_check(m: re.Match[str]) -> bool:
    flags = m.group("flags")
    return bool(re.search(r"-\s?[a-zA-Z]*[rR]|--recursive", flags))

"""``CalculatorTool``: arithmetic through an AST whitelist, never ``eval``.

Allowed: int/float literals, + - * / // % **, unary + and -, parentheses, the functions in
``FUNCTIONS`` and the constants in ``CONSTANTS``. Exponents, result sizes, input length and
expression size are bounded, so hostile input is refused quickly.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from purpose_agent.tools.base import BaseTool, ToolResult

Number = int | float

CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _round(x: Number, ndigits: Number = 0) -> Number:
    if not isinstance(ndigits, int) or abs(ndigits) > 15:
        raise _CalcError("round() digits must be an integer between -15 and 15")
    return round(x) if ndigits == 0 else round(x, ndigits)


def _log(x: Number, base: Number = math.e) -> float:
    return math.log(x, base)


FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan,
    "asin": math.asin, "acos": math.acos, "atan": math.atan, "exp": math.exp,
    "log": _log, "ln": math.log, "log10": math.log10, "log2": math.log2,
    "abs": abs, "round": _round, "min": min, "max": max,
    "floor": math.floor, "ceil": math.ceil, "hypot": math.hypot,
}  # fmt: skip

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class _CalcError(Exception):
    """A refusal with a message for the model."""


@dataclass(frozen=True, slots=True)
class CalculatorLimits:
    max_chars: int = 500
    max_nodes: int = 200
    max_digits: int = 1000  # integer results above 10**max_digits are refused
    max_exponent: int = 10_000
    max_args: int = 32


class _Evaluator:
    def __init__(self, limits: CalculatorLimits) -> None:
        self.limits = limits
        self.max_bits = int(limits.max_digits * 3.33) + 1

    def check(self, value: Any) -> Number:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _CalcError(f"result is not a number: {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _CalcError("result is not finite (overflow or infinity)")
        if isinstance(value, int) and value.bit_length() > self.max_bits:
            raise _CalcError(f"result too large (more than {self.limits.max_digits} digits)")
        return value

    def eval(self, node: ast.AST) -> Number:
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise _CalcError(f"only numbers are allowed, not {node.value!r:.40}")
            return self.check(node.value)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise _CalcError(f"unknown name {node.id!r:.40} (constants: {', '.join(CONSTANTS)})")
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return self.check(_UNARY[type(node.op)](self.eval(node.operand)))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Pow):
                self._check_pow(left, right)
            return self.check(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _CalcError(f"{type(node).__name__} is not allowed; only arithmetic is supported")

    def _check_pow(self, base: Number, exp: Number) -> None:
        if abs(exp) > self.limits.max_exponent:
            raise _CalcError(f"exponent too large (limit {self.limits.max_exponent})")
        if base == 0 and exp < 0:
            raise _CalcError("zero cannot be raised to a negative power")
        big = isinstance(base, int) and isinstance(exp, int) and abs(base) > 1 and exp > 0
        if big and math.log2(abs(base)) * exp > self.max_bits:
            raise _CalcError(f"result too large (more than {self.limits.max_digits} digits)")
        if base < 0 and isinstance(exp, float) and not exp.is_integer():
            raise _CalcError("a negative number cannot be raised to a fractional power")

    def _call(self, node: ast.Call) -> Number:
        if not isinstance(node.func, ast.Name):
            raise _CalcError(
                f"calling {type(node.func).__name__} is not allowed; only arithmetic is supported"
            )
        if node.func.id not in FUNCTIONS:
            raise _CalcError(f"unknown function {node.func.id!r:.40} (allowed: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise _CalcError("keyword arguments are not allowed")
        if not node.args or len(node.args) > self.limits.max_args:
            raise _CalcError(f"{node.func.id}() needs 1 to {self.limits.max_args} arguments")
        args = [self.eval(a) for a in node.args]
        return self.check(FUNCTIONS[node.func.id](*args))


def evaluate(expression: str, limits: CalculatorLimits | None = None) -> Number:
    """Evaluate ``expression``; raise ValueError with a clear message when refused."""
    lim = limits or CalculatorLimits()
    text = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not text:
        raise ValueError("empty expression")
    if len(text) > lim.max_chars:
        raise ValueError(f"expression too long ({len(text)} characters, limit {lim.max_chars})")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"not a valid arithmetic expression: {getattr(exc, 'msg', exc)}") from None
    except (RecursionError, MemoryError):
        raise ValueError("expression too deeply nested") from None
    if sum(1 for _ in ast.walk(tree)) > lim.max_nodes:
        raise ValueError(f"expression too complex (limit {lim.max_nodes} syntax nodes)")
    try:
        return _Evaluator(lim).eval(tree)
    except _CalcError as exc:
        raise ValueError(str(exc)) from None
    except ZeroDivisionError:
        raise ValueError("division by zero") from None
    except OverflowError:
        raise ValueError("result too large (overflow)") from None
    except (ValueError, TypeError) as exc:  # math domain errors, bad argument counts
        raise ValueError(f"math error: {exc}") from None
    except RecursionError:
        raise ValueError("expression too deeply nested") from None


def _format(value: Number) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


class CalculatorTool(BaseTool):
    """Evaluates an arithmetic expression safely."""

    def __init__(self, name: str = "calculator", limits: CalculatorLimits | None = None) -> None:
        self.name = name
        self.limits = limits or CalculatorLimits()
        self.description = (
            "Evaluate an arithmetic expression, e.g. '(2 + 3) * 4 ** 2 / sqrt(16)'. Supports + - * / // % **, "
            "parentheses, pi, e and the functions " + ", ".join(FUNCTIONS) + "."
        )
        self.parameters = {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "the arithmetic expression"}},
            "required": ["expression"],
            "additionalProperties": False,
        }
        self.timeout = None

    async def _arun(self, **kwargs: Any) -> ToolResult:
        expression: str = kwargs["expression"]
        try:
            value = evaluate(expression, self.limits)
        except ValueError as exc:
            return ToolResult.failure(f"calculator: {exc}", kind="refused")
        return ToolResult.success(_format(value), value)

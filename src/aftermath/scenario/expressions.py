"""The safe expression language of rates and outcomes.

Text is parsed by Python's `ast` in 'eval' mode and every node is checked against a whitelist:
numbers, names, arithmetic, comparisons, `and`/`or`/`not`, and calls of a few functions by name.
No attribute access, subscripts, lambdas, comprehensions or strings get through, and the text is
never handed to `eval`/`exec`: the checked tree is turned into a tree of numpy closures, once.
"""

from __future__ import annotations

import ast
import difflib
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from aftermath.units import DIMENSIONLESS, Unit

MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_EXPONENT = 64
MAX_LITERAL = 1e12

Evaluator = Callable[[Any], np.ndarray]
"""A compiled expression: takes the engine's per-step environment, returns an array."""

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
}
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
FUNCTIONS = {
    "min": (2, None),
    "max": (2, None),
    "exp": (1, 1),
    "log": (1, 1),
    "sqrt": (1, 1),
    "abs": (1, 1),
    "where": (3, 3),
}


class ExpressionError(ValueError):
    """The expression is not allowed or does not make sense; the message says why."""


@dataclass(frozen=True)
class Symbol:
    """What a name in an expression refers to: its unit and the dimensions it varies over."""

    kind: str
    unit: Unit
    dims: tuple[str, ...] = ()


def _describe(node: ast.AST) -> str:
    kinds = {
        ast.Attribute: "attribute access ('.')",
        ast.Subscript: "indexing ('[...]')",
        ast.Lambda: "lambda",
        ast.Constant: "a string or other non-numeric literal",
        ast.IfExp: "'... if ... else ...' (use where(condition, a, b))",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Starred: "'*' unpacking",
        ast.NamedExpr: "':=' assignment",
        ast.Mod: "'%'",
        ast.FloorDiv: "'//'",
        ast.BitAnd: "'&'",
        ast.BitOr: "'|'",
        ast.BitXor: "'^'",
        ast.LShift: "'<<'",
        ast.RShift: "'>>'",
        ast.MatMult: "'@'",
        ast.Invert: "'~'",
        ast.Is: "'is'",
        ast.IsNot: "'is not'",
        ast.In: "'in'",
        ast.NotIn: "'not in'",
        ast.Await: "await",
        ast.JoinedStr: "an f-string",
    }
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    return type(node).__name__


def parse_expression(text: object) -> ast.Expression:
    """Parse and whitelist-check an expression; raise ExpressionError saying what is not allowed."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ExpressionError("an expression must be a number or a text")
    source = str(text).strip()
    if not source:
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as exc:
        shown = source if len(source) <= 60 else f"{source[:60]}..."
        raise ExpressionError(f"cannot parse {shown!r}: {getattr(exc, 'msg', exc)}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply") from None
    _check(tree.body, 0)
    return tree


def _check(node: ast.AST, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"{_describe(node)} is not allowed")
        if abs(node.value) > MAX_LITERAL:  # compared exactly: float() of a 400-digit integer overflows
            shown = repr(node.value) if len(repr(node.value)) <= 20 else f"with {len(repr(node.value))} digits"
            raise ExpressionError(f"the literal {shown} is larger than {MAX_LITERAL:g}")
        return
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise ExpressionError(f"names starting with '_' are not allowed ({node.id!r})")
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(f"the operator {_describe(node.op)} is not allowed")
        if isinstance(node.op, ast.Pow):
            exponent = node.right
            if isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, (ast.USub, ast.UAdd)):
                exponent = exponent.operand
            if (
                isinstance(exponent, ast.Constant)
                and isinstance(exponent.value, (int, float))
                and abs(exponent.value) > MAX_EXPONENT
            ):
                shown = repr(exponent.value) if len(repr(exponent.value)) <= 20 else "given"
                raise ExpressionError(f"the exponent {shown} is too large (at most {MAX_EXPONENT})")
        _check(node.left, depth + 1)
        _check(node.right, depth + 1)
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd, ast.Not)):
            raise ExpressionError(f"the operator {_describe(node.op)} is not allowed")
        _check(node.operand, depth + 1)
        return
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value, depth + 1)
        return
    if isinstance(node, ast.Compare):
        for op in node.ops:
            if type(op) not in _COMPARE:
                raise ExpressionError(f"the comparison {_describe(op)} is not allowed")
        for value in [node.left, *node.comparators]:
            _check(value, depth + 1)
        return
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise ExpressionError(f"{_describe(node.func)} is not allowed in an expression")
        if node.func.id not in FUNCTIONS:
            raise ExpressionError(
                f"calling {node.func.id!r} is not allowed; the functions are {', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords:
            raise ExpressionError(f"{node.func.id}() takes no keyword arguments")
        low, high = FUNCTIONS[node.func.id]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            wanted = str(low) if low == high else f"at least {low}"
            raise ExpressionError(f"{node.func.id}() takes {wanted} arguments, got {count}")
        for arg in node.args:
            _check(arg, depth + 1)
        return
    raise ExpressionError(f"{_describe(node)} is not allowed in an expression")


def names_in(tree: ast.Expression) -> list[str]:
    """Names an expression refers to (function names excluded), in order of first use."""
    nodes = list(ast.walk(tree))
    functions = {id(n.func) for n in nodes if isinstance(n, ast.Call)}
    seen: dict[str, None] = {}
    for node in nodes:
        if isinstance(node, ast.Name) and id(node) not in functions:
            seen.setdefault(node.id, None)
    return list(seen)


def check_names(tree: ast.Expression, symbols: Mapping[str, Symbol]) -> None:
    """Every name must be known; suggest the closest known name for a typo."""
    for name in names_in(tree):
        if name not in symbols:
            close = difflib.get_close_matches(name, list(symbols), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ExpressionError(f"unknown name {name!r}{hint}")


def infer_unit(tree: ast.Expression, symbols: Mapping[str, Symbol]) -> Unit:
    """The unit of an expression; raise ExpressionError on adding apples to oranges."""
    return _unit(tree.body, symbols)


def _is_zero(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value == 0


def _is_months_against_literal(a: ast.AST, b: ast.AST) -> bool:
    """`t >= 12`: t is months since the start, so a number compared with it is a number of months."""
    pair = {type(a), type(b)}
    names = [n.id for n in (a, b) if isinstance(n, ast.Name)]
    return pair == {ast.Name, ast.Constant} and names == ["t"]


def _same(a: Unit, b: Unit, what: str, nodes: tuple[ast.AST, ast.AST]) -> Unit:
    # A literal 0 fits any unit: max(rate, 0) is meaningful.
    if _is_zero(nodes[0]):
        return b
    if _is_zero(nodes[1]):
        return a
    if not a.same_dimension(b):
        raise ExpressionError(f"{what} mixes units: {a.describe()} and {b.describe()}")
    return a


def _unit(node: ast.AST, symbols: Mapping[str, Symbol]) -> Unit:
    if isinstance(node, ast.Constant):
        return DIMENSIONLESS
    if isinstance(node, ast.Name):
        return symbols[node.id].unit
    if isinstance(node, ast.UnaryOp):
        inner = _unit(node.operand, symbols)
        if isinstance(node.op, ast.Not):
            return DIMENSIONLESS
        return inner
    if isinstance(node, ast.BinOp):
        left, right = _unit(node.left, symbols), _unit(node.right, symbols)
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return _same(left, right, f"'{ast.unparse(node)}'", (node.left, node.right))
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if not right.dimensionless:
            raise ExpressionError(f"the exponent in '{ast.unparse(node)}' must be dimensionless")
        if left.dimensionless:
            return left
        if isinstance(node.right, ast.Constant) and float(node.right.value).is_integer():
            return left ** int(node.right.value)
        raise ExpressionError(
            f"'{ast.unparse(node)}' raises a quantity with units to a non-integer power"
        )
    if isinstance(node, ast.Compare):
        values = [node.left, *node.comparators]
        for a, b in itertools.pairwise(values):
            if _is_months_against_literal(a, b):
                continue
            _same(_unit(a, symbols), _unit(b, symbols), f"'{ast.unparse(node)}'", (a, b))
        return DIMENSIONLESS
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _unit(value, symbols)
        return DIMENSIONLESS
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    name = node.func.id
    units = [_unit(arg, symbols) for arg in node.args]
    if name in ("exp", "log"):
        if not units[0].dimensionless:
            raise ExpressionError(f"{name}() needs a dimensionless argument, got {units[0].describe()}")
        return DIMENSIONLESS
    if name == "sqrt":
        if units[0].time % 2 or units[0].persons % 2:
            raise ExpressionError(f"sqrt() of {units[0].describe()} has no unit")
        return Unit(units[0].time // 2, units[0].persons // 2, units[0].scale**0.5)
    if name == "abs":
        return units[0]
    args = node.args
    if name == "where":
        return _same(units[1], units[2], f"'{ast.unparse(node)}'", (args[1], args[2]))
    result, first = units[0], args[0]
    for unit, arg in zip(units[1:], args[1:], strict=True):
        result = _same(result, unit, f"'{ast.unparse(node)}'", (first, arg))
        if _is_zero(first):
            first = arg
    return result


def compile_expression(
    tree: ast.Expression, resolve: Callable[[str], Evaluator]
) -> Evaluator:
    """Turn a checked tree into a closure; `resolve(name)` gives the closure that reads a name."""
    return _compile(tree.body, resolve)


def _compile(node: ast.AST, resolve: Callable[[str], Evaluator]) -> Evaluator:
    if isinstance(node, ast.Constant):
        value = np.float64(node.value)
        return lambda env: value
    if isinstance(node, ast.Name):
        return resolve(node.id)
    if isinstance(node, ast.UnaryOp):
        inner = _compile(node.operand, resolve)
        if isinstance(node.op, ast.USub):
            return lambda env: np.negative(inner(env))
        if isinstance(node.op, ast.Not):
            return lambda env: np.logical_not(inner(env)).astype(np.float64)
        return inner
    if isinstance(node, ast.BinOp):
        op = _BINARY[type(node.op)]
        left, right = _compile(node.left, resolve), _compile(node.right, resolve)
        return lambda env: op(left(env), right(env))
    if isinstance(node, ast.Compare):
        parts = [_compile(v, resolve) for v in [node.left, *node.comparators]]
        ops = [_COMPARE[type(o)] for o in node.ops]

        def compare(env: Any) -> np.ndarray:
            values = [p(env) for p in parts]
            result = ops[0](values[0], values[1])
            for i in range(1, len(ops)):
                result = np.logical_and(result, ops[i](values[i], values[i + 1]))
            return result.astype(np.float64)

        return compare
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, resolve) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolean(env: Any) -> np.ndarray:
            result = parts[0](env) != 0
            for part in parts[1:]:
                result = combine(result, part(env) != 0)
            return result.astype(np.float64)

        return boolean
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    args = [_compile(a, resolve) for a in node.args]
    name = node.func.id
    if name == "where":
        cond, yes, no = args
        return lambda env: np.where(cond(env) != 0, yes(env), no(env))
    if name in ("min", "max"):
        fold = np.minimum if name == "min" else np.maximum

        def extreme(env: Any) -> np.ndarray:
            result = args[0](env)
            for arg in args[1:]:
                result = fold(result, arg(env))
            return result

        return extreme
    unary = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs}[name]
    (arg,) = args
    return lambda env: unary(arg(env))

"""Read a scenario file: YAML with line numbers -> pydantic -> cross-field checks.

Every failure becomes one ScenarioError naming the file, the line, the field path and what was
expected; nothing else escapes for a bad file.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml as libyaml
from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scanner import RoundTripScanner, ScannerError

from aftermath.errors import FieldPath, ScenarioError
from aftermath.scenario.catalogue import DEFAULT_SCENARIO, shipped_scenarios
from aftermath.scenario.fastyaml import FAST_LOADER, MAX_NESTING, fast_document
from aftermath.scenario.schema import NAME_PATTERN, Scenario
from aftermath.scenario.submodels import scenario_class
from aftermath.scenario.validate import validate_scenario

MAX_FILE_BYTES = 20_000_000
"""Refused before reading further: a scenario file is at most 20 MB (comments included)."""
MAX_VALUES = 50_000
"""Refused before the full parse: at most 50,000 values (YAML scalars: names, numbers, texts, labels), ten times
the default scenario's 5,100. The line-numbering YAML reader takes about 0.1 ms per value."""


def resolve_scenario_path(reference: str | Path | None) -> Path:
    """A path, or the name of a shipped scenario; None means the default scenario."""
    shipped = shipped_scenarios()
    if reference is None:
        return shipped[DEFAULT_SCENARIO]
    text = str(reference)
    if text in shipped and not Path(text).exists():
        return shipped[text]
    path = Path(text)
    if not path.exists():
        names = ", ".join(sorted(shipped))
        raise ScenarioError(
            "no such file or shipped scenario",
            expected=f"a path to a YAML file or one of: {names}",
            file=text,
        )
    if not path.is_file():
        raise ScenarioError("this is not a file", expected="a YAML scenario file", file=text)
    return path


def load_scenario(reference: str | Path | None = None) -> Scenario:
    """Load and fully validate a scenario from a path or a shipped name."""
    path = resolve_scenario_path(reference)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read the file ({exc.strerror})", file=path) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError("the file is too large", expected="under 20 MB", file=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            "the file is not UTF-8 text", expected="text saved as UTF-8", file=path, line=_line_of_byte(data, exc.start)
        ) from None
    return parse_scenario(text, path)


def _line_of_byte(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def parse_scenario(text: str, file: str | Path = "<string>") -> Scenario:
    """Validate scenario text; `file` is only used to name the place in errors.

    A valid file is read by libyaml's C parser with YAML 1.2 scalars (`fast_document`, about 10 times
    faster than ruamel's); a file it cannot vouch for, or one that fails a check, is read again by the line-numbering
    reader, whose document gives every error its line: the messages are those of the line-numbered path.
    """
    text = _without_comment_lines(text, file)  # also refuses more than MAX_VALUES values
    fast = fast_document(text)
    if fast is not None:
        try:
            return _validated(fast, file)
        except ScenarioError:
            pass  # reported below, with its line
    return _validated(_read_yaml(text, file), file)


def _validated(document: Any, file: str | Path) -> Scenario:
    """The scenario of a YAML document; raises ScenarioError (with a line if the document is ruamel's)."""
    _refuse_bidi_controls(document, file)
    try:
        scenario = scenario_class().model_validate(document)
    except ValidationError as exc:
        raise _first_pydantic_error(exc, document).located(file, None) from None
    except RecursionError:
        raise ScenarioError("the file is nested too deeply", file=file) from None
    try:
        validate_scenario(scenario)
    except ScenarioError as exc:
        raise exc.located(file, line_of(document, exc.path)) from None
    scenario._source = str(file)
    return scenario


class _Scanner(RoundTripScanner):
    """Refuses deep nesting at once: ruamel's scanner is quadratic in bracket depth, its parser recursive."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:
        self._check_depth(len(self.flow_context))
        super().fetch_flow_collection_start(TokenClass, to_push)

    def add_indent(self, column: int) -> bool:
        self._check_depth(len(self.indents))
        return super().add_indent(column)

    def _check_depth(self, depth: int) -> None:
        if depth >= MAX_NESTING:
            raise ScannerError(None, None, f"nested more than {MAX_NESTING} levels deep", self.reader.get_mark())


class _Constructor(RoundTripConstructor):
    """Gives a value ruamel cannot build (a 30 February, a 5,000-digit number) the line it is on."""

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except ValueError as exc:
            shown = f"{node.value[:40]!r}" if isinstance(node.value, str) else "this value"
            reason = str(exc).split(";")[0]
            raise ConstructorError(None, None, f"cannot read {shown}: {reason}", node.start_mark) from None


#: ruamel's wording of common mistakes -> (what was wrong, what was expected).
_YAML_PROBLEMS = (
    (re.compile(r"found character '\\t'"), "a tab character", "indentation with spaces, not tabs"),
    (re.compile(r"^expected <block end>"), "this line is not indented like the lines around it",
     "each key of a mapping (and each '-' of a list) at the same indentation"),
    (re.compile(r"^found duplicate key \"(.+?)\" with value"), "the key {0!r} is given twice",
     "each key once in a mapping"),
    (re.compile(r"^mapping values are not allowed here"), "a ':' inside a value",
     "quotes around a text that contains ': '"),
    (re.compile(r"^(cannot read .*)"), "{0}", "a valid date (YYYY-MM) or number"),
    (re.compile(r"^found unexpected end of stream"), "{context} that starts here is never closed",
     "a closing quote or bracket"),
)


def _yaml_error(exc: MarkedYAMLError, file: str | Path) -> ScenarioError:
    """One plain line for a YAML syntax error, at the line where the mistake is."""
    problem = (exc.problem or exc.context or "malformed YAML").strip()
    mark = exc.problem_mark or exc.context_mark
    expected = "valid YAML (check indentation and quotes)"
    for pattern, message, wanted in _YAML_PROBLEMS:
        match = pattern.search(problem)
        if match:
            context = (exc.context or "a value").strip().removeprefix("while scanning ").replace("scalar", "text")
            if "{context}" in message and exc.context_mark is not None:
                mark = exc.context_mark
            problem, expected = message.format(*match.groups(), context=context), wanted
            break
    line = mark.line + 1 if mark is not None else None
    return ScenarioError(f"malformed YAML: {problem}", expected=expected, file=file, line=line)


_COMMENT_LINE = re.compile(r"^[ \t]*#.*$", re.MULTILINE)


def _without_comment_lines(text: str, file: str | Path) -> str:
    """`text` with each line that is only a comment emptied (the line count kept), and no more than MAX_VALUES
    values; raises ScenarioError beyond that.

    ruamel's line-numbering reader walks comments character by character in Python (a 1 MB file of comments took
    16 s); libyaml's C scanner finds where the tokens are in a fraction of that. A '#' line inside a token (a
    block text, a multi-line quoted text) is part of that text and kept. Where libyaml stops at a syntax error,
    lines from there on are kept as they are, and ruamel reports the error in its words.
    """
    inside: list[tuple[int, int]] = []  # (first, last) line of each token that spans lines
    values, last_line = 0, None
    try:
        for token in libyaml.scan(text, Loader=FAST_LOADER):
            if token.end_mark.line > token.start_mark.line:
                inside.append((token.start_mark.line, token.end_mark.line))
            if isinstance(token, libyaml.ScalarToken):
                values += 1
                if values > MAX_VALUES:
                    raise ScenarioError(
                        f"the file holds more than {MAX_VALUES:,} values", expected="a smaller scenario (split "
                        "strata into fewer labels, or the scenario into several)", file=file,
                        line=token.start_mark.line + 1,
                    )
    except libyaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        last_line = mark.line if mark is not None else 0
    kept = {line for first, last in inside for line in range(first, last + 1)}
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if last_line is not None and number >= last_line:
            break
        if number not in kept and _COMMENT_LINE.match(line):
            lines[number] = ""
    return "\n".join(lines)


def _read_yaml(text: str, file: str | Path) -> Any:
    """The line-numbered (ruamel round-trip) document of `text`, whose comment lines are already emptied."""
    yaml = YAML(typ="rt")
    yaml.Scanner = _Scanner
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        raise _yaml_error(exc, file) from None
    except ReaderError as exc:
        raise ScenarioError(
            f"the character #x{exc.character:04x} is not allowed in YAML", expected="printable text",
            file=file, line=text.count("\n", 0, exc.position) + 1,
        ) from None
    except (YAMLError, RecursionError, ValueError) as exc:
        raise ScenarioError(f"malformed YAML: {str(exc).splitlines()[0]}", file=file) from None
    if document is None:
        raise ScenarioError(
            "the scenario is empty", expected="a mapping with name, title, time, compartments and flows",
            file=file, line=1,
        )
    if not isinstance(document, dict):
        raise ScenarioError(
            f"the top level is {_shown(document)}", expected="a mapping of fields",
            file=file, line=1,
        )
    return document


BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Unicode's explicit bidirectional formatting characters (UAX #9; the 'Trojan Source' characters)."""


def _refuse_bidi_controls(document: Any, file: str | Path) -> None:
    """Refuse names, labels and texts holding bidirectional controls: a right-to-left override makes a report
    show other text than the file says (e.g. a label read backwards), so none may reach a report or the store.

    Right-to-left scripts themselves (Arabic, Hebrew) need no control characters and are accepted.
    """
    stack: list[tuple[Any, FieldPath]] = [(document, ())]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            for text, is_key in ((key, True), (value, False)):
                found = next((c for c in text if c in BIDI_CONTROLS), None) if isinstance(text, str) else None
                if found is not None:
                    at = path if is_key else (*path, key)  # a bad key is named escaped, not in the path
                    what = f"the name {key!r}" if is_key else "the text"
                    raise ScenarioError(
                        f"{what} holds the invisible bidirectional control U+{ord(found):04X}", at,
                        expected="text without bidirectional controls (they can make text display as something "
                        "it does not say)", file=file, line=line_of(document, (*path, key)),
                    )
            stack.append((value, (*path, key)))


def line_of(document: Any, path: FieldPath) -> int | None:
    """The 1-based line of the deepest part of `path` present in the ruamel document."""
    node, line = document, 1
    for part in path:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and str(part) in map(str, node):
            key = next(k for k in node if str(k) == str(part))  # a YAML date key is a date, its path a text
            if lc is not None:
                line = lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                line = lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _data_path(document: Any, loc: tuple[Any, ...], missing: bool = False) -> FieldPath:
    """Drop pydantic's tags ('float', 'dict[str,any]', '[key]') that are not keys of the data.

    A name absent from the data is kept only as the last part of a 'missing' error: the missing field.
    """
    path: list[str | int] = []
    node = document
    for index, part in enumerate(loc):
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if (isinstance(node, dict) and part in node) or in_list:
            path.append(part)
            node = node[part]
        elif not isinstance(part, str) or (missing and index == len(loc) - 1):
            path.append(part)
            node = None
    return tuple(path)


def _fields_at(path: FieldPath) -> list[str]:
    """Field names the schema allows at `path` (for 'unknown field' hints)."""
    model: Any = scenario_class()
    for part in path:
        model = _unwrap(model)
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(str(part)) or next(
                (f for f in model.model_fields.values() if f.alias == part), None
            )
            if field is None:
                return []
            model = field.annotation
        else:
            args = typing.get_args(model)
            model = args[-1] if args else None
    model = _unwrap(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
            annotation = models[0] if models else members[0]
        else:
            return annotation


#: Pydantic's type errors as what the field wanted.
_WANTED_TYPES = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a text",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def _in_words(error: Any, value: Any) -> tuple[str, str] | None:
    """A pydantic error as (what was wrong, what was expected); None keeps pydantic's own message."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in ("dict_type", "model_type", "model_attributes_type") and isinstance(value, list):
        return ("a list where a mapping is expected",
                "a mapping of names to entries: 'NAME:' keys on their own lines, not '- ' items")
    if kind in _WANTED_TYPES:
        return f"wrong type: {_shown(value)}", _WANTED_TYPES[kind]
    if kind == "literal_error":
        choices = str(ctx["expected"])
        return f"{_shown(value)} is not allowed", f"one of {choices}" if " or " in choices else choices
    if kind == "string_pattern_mismatch":
        rule = "letters, digits and '_', starting with a letter" if ctx["pattern"] == NAME_PATTERN else (
            f"a text matching {ctx['pattern']}"
        )
        return f"{_shown(value)} is not a valid name", rule
    if kind == "too_short":
        return "it is empty", f"at least {ctx['min_length']} entry"
    if kind == "too_long":
        return f"{ctx['actual_length']} entries", f"at most {ctx['max_length']}"
    if kind in ("greater_than", "greater_than_equal"):
        sign, bound = (">", ctx["gt"]) if kind == "greater_than" else (">=", ctx["ge"])
        return f"{_shown(value)} is too small", f"a number {sign} {bound}"
    return None


def _shown(value: Any) -> str:
    """A value as the analyst wrote it, in a few words."""
    tag = getattr(getattr(value, "tag", None), "value", None)
    if tag:
        return f"a value tagged {tag.replace('tag:yaml.org,2002:', '!!')}"
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}" + ("..." if len(value) > 40 else "")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the value {str(value)[:40]}"


def _first_pydantic_error(exc: ValidationError, document: Any) -> ScenarioError:
    errors = exc.errors(include_url=False)
    first = _unknown_key_first(errors, document)
    path = _data_path(document, tuple(first["loc"]), first["type"] == "missing")
    same_place = [e for e in errors if _data_path(document, tuple(e["loc"]), e["type"] == "missing") == path]
    line = line_of(document, path)
    value = _value_at(document, path)
    if first["type"] == "extra_forbidden":
        allowed = _fields_at(path[:-1])
        missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing"
                   and _data_path(document, tuple(e["loc"][:-1])) == path[:-1]]
        synonym = [f for f in _SYNONYMS.get(str(path[-1]), ()) if f in allowed]
        close = synonym or difflib.get_close_matches(str(path[-1]), allowed, n=1) or missing[:1]
        return ScenarioError(
            f"unknown field {path[-1]!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
            path,
            expected=(f"one of: {', '.join(allowed)}" if allowed else "")
            + (f"; {' and '.join(repr(m) for m in missing)} missing here" if missing else "") or None,
            line=line,
        )
    if first["type"] == "missing":
        return ScenarioError("missing required field", path, line=line)
    if isinstance(value, float) and not math.isfinite(value):
        return ScenarioError(f"{value!r} is not a finite number", path, expected="a finite number", line=line)
    if "[key]" in first["loc"]:
        return ScenarioError(f"the key {path[-1]!r} is not a name", path, expected="a text name", line=line)
    described = [_in_words(error, value) for error in same_place]
    if all(described):
        problems = dict.fromkeys(problem for problem, _ in described)  # type: ignore[misc]
        wanted = dict.fromkeys(expected for _, expected in described)  # type: ignore[misc]
        return ScenarioError(" or ".join(problems), path, expected=" or ".join(wanted), line=line)
    messages = []
    for error in same_place:
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if message not in messages:
            messages.append(message)
    if len(messages) > 1:
        wanted = "; or ".join(m.removeprefix("Input should be ") for m in messages)
        return ScenarioError(f"wrong type: {_shown(value)}", path, expected=wanted, line=line)
    return ScenarioError(messages[0], path, line=line)


#: Words analysts write for a field that has another name here (checked against the fields allowed at the place).
_SYNONYMS = {
    "share": ("fraction",), "proportion": ("fraction",), "kind": ("interpolation", "type"),
    "values": ("points", "value"), "series": ("points",), "formula": ("rate", "expr"), "expression": ("expr",),
    "units": ("unit",), "source": ("sources",), "dimensions": ("dims",), "strata": ("dims",),
}


def _unknown_key_first(errors: list[Any], document: Any) -> Any:
    """The error to report: an unknown key before a 'missing' one in the same mapping, since a misspelt or
    misremembered key (`share:` for `fraction:`) is the usual cause of the missing field."""
    first = errors[0]
    if first["type"] != "missing":
        return first
    parent = _data_path(document, tuple(first["loc"][:-1]))
    return next((e for e in errors if e["type"] == "extra_forbidden"
                 and _data_path(document, tuple(e["loc"]))[:-1] == parent), first)


def _value_at(document: Any, path: FieldPath) -> Any:
    node = document
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node

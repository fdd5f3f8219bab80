"""Read a scenario file: YAML with line numbers -> pydantic -> cross-field checks.

Every failure becomes one ScenarioError naming the file, the line, the field path and what was
expected; nothing else escapes for a bad file.
"""

from __future__ import annotations

import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from aftermath.errors import FieldPath, ScenarioError
from aftermath.scenario.schema import Scenario
from aftermath.scenario.validate import validate_scenario

DEFAULT_SCENARIO = "isis_after_caliphate"
MAX_FILE_BYTES = 20_000_000


def shipped_scenarios() -> dict[str, Path]:
    """Scenario files that come with the package, by name."""
    folder = resources.files("aftermath.scenarios")
    return {
        Path(item.name).stem: Path(str(item))
        for item in folder.iterdir()
        if item.name.endswith((".yaml", ".yml"))
    }


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
        raise ScenarioError("the file is not UTF-8 text", file=path, line=_line_of_byte(data, exc.start)) from None
    return parse_scenario(text, path)


def _line_of_byte(data: bytes, offset: int) -> int:
    return data[:offset].count(b"\n") + 1


def parse_scenario(text: str, file: str | Path = "<string>") -> Scenario:
    """Validate scenario text; `file` is only used to name the place in errors."""
    document = _read_yaml(text, file)
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as exc:
        raise _first_pydantic_error(exc, document).located(file, None) from None
    except RecursionError:
        raise ScenarioError("the file is nested too deeply", file=file) from None
    try:
        validate_scenario(scenario)
    except ScenarioError as exc:
        raise exc.located(file, line_of(document, exc.path)) from None
    return scenario


def _read_yaml(text: str, file: str | Path) -> Any:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = (exc.problem or exc.context or "malformed YAML").strip()
        raise ScenarioError(
            f"malformed YAML: {problem}", expected="valid YAML (check indentation and quotes)",
            file=file, line=line,
        ) from None
    except (YAMLError, RecursionError, ValueError) as exc:
        raise ScenarioError(f"malformed YAML: {exc}", file=file) from None
    if document is None:
        raise ScenarioError(
            "the scenario is empty", expected="a mapping with name, title, time, compartments and flows",
            file=file, line=1,
        )
    if not isinstance(document, dict):
        raise ScenarioError(
            f"the top level is a {type(document).__name__}", expected="a mapping of fields",
            file=file, line=1,
        )
    return document


def line_of(document: Any, path: FieldPath) -> int | None:
    """The 1-based line of the deepest part of `path` present in the ruamel document."""
    node, line = document, 1
    for part in path:
        lc = getattr(node, "lc", None)
        if isinstance(node, dict) and part in node:
            if lc is not None:
                line = lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            if lc is not None:
                line = lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _data_path(document: Any, loc: tuple[Any, ...]) -> FieldPath:
    """Drop pydantic's union tags ('float', 'dict[str,any]') that are not keys of the data."""
    path: list[str | int] = []
    node = document
    for part in loc:
        if (isinstance(node, dict) and part in node) or (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)):
            path.append(part)
            node = node[part]
        elif isinstance(node, (dict, list)) or not isinstance(part, str):
            path.append(part)
            node = None
    return tuple(path)


def _fields_at(path: FieldPath) -> list[str]:
    """Field names the schema allows at `path` (for 'unknown field' hints)."""
    model: Any = Scenario
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


def _first_pydantic_error(exc: ValidationError, document: Any) -> ScenarioError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = _data_path(document, tuple(first["loc"]))
    same_place = [e for e in errors if _data_path(document, tuple(e["loc"])) == path]
    if first["type"] == "extra_forbidden":
        allowed = _fields_at(path[:-1])
        return ScenarioError(
            f"unknown field {path[-1]!r}",
            path,
            expected=f"one of: {', '.join(allowed)}" if allowed else None,
            line=line_of(document, path),
        )
    if first["type"] == "missing":
        return ScenarioError("missing required field", path, line=line_of(document, path))
    messages = []
    for error in same_place:
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if message not in messages:
            messages.append(message)
    if len(messages) > 1:
        wanted = "; or ".join(m.removeprefix("Input should be ") for m in messages)
        return ScenarioError(
            f"wrong type ({type(_value_at(document, path)).__name__})",
            path, expected=wanted, line=line_of(document, path),
        )
    return ScenarioError(messages[0], path, line=line_of(document, path))


def _value_at(document: Any, path: FieldPath) -> Any:
    node = document
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node

"""The fast YAML reader: libyaml's C parser with YAML 1.2's reading of plain scalars, for valid files.

Kept apart from the loader (which imports pydantic, numpy and the line-numbering reader) so that listing the
shipped scenarios' titles imports only PyYAML and ruamel's resolver table.
"""

from __future__ import annotations

import re
from typing import Any

import yaml as libyaml
from ruamel.yaml import resolver as ruamel_resolver

MAX_NESTING = 50
"""Refused: mappings and lists nested more than 50 levels deep."""
FAST_LOADER = getattr(libyaml, "CSafeLoader", libyaml.SafeLoader)  # PyYAML built without libyaml: slower, same


class _FastLoader(FAST_LOADER):
    """libyaml's parser resolving plain scalars as the line-numbering reader (ruamel, YAML 1.2) does, for the
    simple forms a scenario uses (decimal numbers, true/false, null, YYYY-MM-DD dates, '<<' merge keys); any
    other scalar that YAML 1.2 reads as more than a text is `_UNSURE`: the file goes to the line-numbering
    reader. On the default scenario it took 0.14 s CPU against 0.98 s for ruamel's round trip (a loaded machine)."""

    yaml_implicit_resolvers: dict = {}  # noqa: RUF012  (PyYAML's class-level table, replaced, not shared)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict:
        keys = [self.construct_object(key, deep=True) for key, _ in node.value if key.tag != _MERGE]
        if len(set(map(repr, keys))) < len(keys):  # PyYAML keeps the last of a duplicate key; ruamel refuses it
            raise _Unsure("a duplicate key")
        return super().construct_mapping(node, deep)


class _Unsure(Exception):
    """The fast reader leaves this file to the line-numbering reader."""


def _unsure(loader: Any, node: Any) -> None:
    raise _Unsure(node.value)


_UNSURE = "tag:aftermath,2026:unsure"
_MERGE = "tag:yaml.org,2002:merge"
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    ("float", r"^[-+]?(?:[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+|[0-9]+[eE][-+]?[0-9]+)$", "-+0123456789."),
    ("timestamp", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "0123456789"),
    ("merge", r"^<<$", "<"),
):
    _FastLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))
for _versions, _tag, _regexp, _first in ruamel_resolver.implicit_resolvers:
    if (1, 2) in _versions:  # whatever else YAML 1.2 reads as a number, date, merge key...: unsure
        _FastLoader.add_implicit_resolver(_UNSURE, _regexp, _first)
_FastLoader.add_constructor(_UNSURE, _unsure)


def fast_document(text: str) -> Any:
    """The document read by `_FastLoader`, or None where only the line-numbering reader can be trusted with
    it: a syntax error, a duplicate key, a %YAML directive, an unusual scalar, deep nesting, not a mapping."""
    if "%YAML" in text:
        return None
    try:
        document = libyaml.load(text, Loader=_FastLoader)
    except (libyaml.YAMLError, _Unsure, ValueError, TypeError, RecursionError):
        return None
    if not isinstance(document, dict) or _depth(document) > MAX_NESTING // 2:
        return None
    return document


def _depth(node: Any) -> int:
    """How deeply mappings and lists nest in a document."""
    items = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
    return 0 if items is None else 1 + max(map(_depth, items), default=0)


def top_level_text(text: str, key: str) -> str | None:
    """The text given to a top-level `key`, read from the file's first events only: parsing stops at the key's
    value, so the rest of the file is neither read nor checked (for listings, not for loading). None where the
    fast reader would be unsure (see `fast_document`), the top level is not a mapping, the key is missing, or its
    value is not a text."""
    if "%YAML" in text:
        return None
    loader = _FastLoader(text)
    depth, found, expect_key = 0, False, True
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, libyaml.AliasEvent):
                return None  # an alias is checked only by composing the whole document
            if isinstance(event, libyaml.CollectionStartEvent):
                if (depth == 0 and not isinstance(event, libyaml.MappingStartEvent)) or (depth == 1 and expect_key):
                    return None  # not a mapping at the top, or a collection as a key
                depth += 1
            elif isinstance(event, libyaml.CollectionEndEvent):
                depth -= 1
                expect_key = expect_key or depth == 1
                if depth == 0:
                    return None
            elif depth == 1 and isinstance(event, libyaml.ScalarEvent) and expect_key:
                found, expect_key = _construct(loader, event) == key, False
            elif depth == 1 and isinstance(event, libyaml.NodeEvent):
                if found:
                    value = _construct(loader, event) if isinstance(event, libyaml.ScalarEvent) else None
                    loader.check_event()  # the value's own end is found by scanning on
                    return value if isinstance(value, str) else None
                expect_key = True
    except (libyaml.YAMLError, _Unsure, ValueError, TypeError):
        return None
    finally:
        loader.dispose()
    return None


def _construct(loader: _FastLoader, event: libyaml.ScalarEvent) -> Any:
    """A scalar event's value, its plain text resolved as `_FastLoader` resolves it."""
    tag = event.tag if event.tag not in (None, "!") else loader.resolve(libyaml.ScalarNode, event.value, event.implicit)
    node = libyaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
    return loader.construct_object(node, deep=True)

"""The import rules of docs/architecture.md: data flows one way, no module imports a higher layer,
and the import graph has no circle.

Read from the source (every `import`, at module level, inside a function or under TYPE_CHECKING),
so an import that only runs on some path still counts.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import networkx as nx

import aftermath
from aftermath.scenario.submodels import registered

PACKAGE = Path(aftermath.__file__).parent

LAYERS: tuple[tuple[str, ...], ...] = (
    # evidence, scenarios: shipped data
    ("errors", "units", "files", "resources", "formatting", "evidence", "scenarios"),
    ("scenario",),
    ("model",),
    ("engines",),
    ("summary", "results"),
    ("network", "homefront"),  # sub-models: they plug into the core (scenario, model, engines) from above
    ("experiments",),
    ("store",),
    ("experiments.runner", "fitcheck", "scoring", "inference", "decisions"),
    ("report",),
    ("dashboard",),
    ("cli", "__main__"),
)
"""Lowest first. A module belongs to the longest prefix listed; it may import its own layer and lower ones.
A package's `__init__` is its public face and ranks with its highest module (`aftermath.experiments`
re-exports the runner). The package root (`aftermath/__init__.py`) is the public API and registers the
shipped sub-models: it is above every layer and nothing imports it."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> set[str]:
    """The aftermath modules `path` imports (a `from X import y` names X.y when that is a module)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {target for target in found if target.startswith("aftermath.")}


@cache
def graph_nodes() -> list[str]:
    return [module_name(path) for path in PACKAGE.rglob("*.py")]


@cache
def graph() -> nx.DiGraph:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges = nx.DiGraph()
    edges.add_nodes_from(name for name in modules if name != "aftermath")
    for name, path in modules.items():
        if name == "aftermath":
            continue
        for target in imports(path, name):
            while target not in modules:  # `from aftermath.x import function` -> aftermath.x
                target = target.rpartition(".")[0]
            if target != name and target != "aftermath" and not name.startswith(target + "."):
                edges.add_edge(name, target)
    return edges


@cache
def layer(module: str) -> int:
    """The layer of a module (a package: of its highest module)."""
    if (PACKAGE.parent.joinpath(*module.split(".")) / "__init__.py").exists():
        inside = [name for name in graph_nodes() if name.startswith(module + ".")]
        return max([_own_layer(module), *map(layer, inside)])
    return _own_layer(module)


def _own_layer(module: str) -> int:
    relative = module.removeprefix("aftermath.")
    matches = [
        (len(prefix), rank)
        for rank, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if relative == prefix or relative.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS here and to docs/architecture.md"
    return max(matches)[1]


def test_no_module_imports_a_higher_layer():
    edges = graph()
    upward = [
        f"{source} (layer {LAYERS[layer(source)]}) imports {target} (layer {LAYERS[layer(target)]})"
        for source, target in edges.edges
        if layer(target) > layer(source)
    ]
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_circle():
    circles = [sorted(component) for component in nx.strongly_connected_components(graph()) if len(component) > 1]
    assert not circles, circles


def test_the_core_names_no_sub_model():
    """scenario, model and engines reach sub-models only through the registry: no name, attribute or
    string in their code is a registered sub-model's section name."""
    names = {submodel.name for submodel in registered()}
    assert names, "the shipped sub-models register when aftermath is imported"
    core = [module for module in graph() if layer(module) <= layer("aftermath.engines")]
    for module in core:
        path = PACKAGE.parent.joinpath(*module.split("."))
        tree = ast.parse((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text("utf-8"))
        for node in ast.walk(tree):
            used = (
                node.attr if isinstance(node, ast.Attribute)
                else node.id if isinstance(node, ast.Name)
                else node.value if isinstance(node, ast.Constant)
                else None
            )
            assert used not in names, f"{module} line {node.lineno} names the sub-model {used!r}"


def test_the_rules_catch_an_upward_import(tmp_path):
    """The checker itself: a scenario module that imports the model is an upward edge."""
    source = tmp_path / "aftermath" / "scenario"
    source.mkdir(parents=True)
    (source / "bad.py").write_text("from aftermath.model.compile import compile_model\nfrom . import schema\n")
    found = imports(source / "bad.py", "aftermath.scenario.bad")
    assert {"aftermath.model.compile", "aftermath.scenario.schema"} <= found
    assert layer("aftermath.model.compile") > layer("aftermath.scenario.bad")

"""The package's imports point down the layers, and no modules import each other in a circle.

Layers, lowest first (a module may import its own layer and those below, never above):

    foundation  errors, state, procfs, secretfile, printable, units, probe, config/
    adapters    systemd/, graph/, llm/          (each a port and its adapters)
    pipeline    pipeline/                       (one document: parse, chunk, analyse, store)
    run         run/                            (one job: inventory, plan, runner, ledger)
    report      report/                         (progress, journal, status, metrics, alerts)
    lifecycle   lifecycle/                      (the service around a run)
    entry       daemon/, cli/, __main__

Every import counts, also one inside a function: a lazy import that runs up a layer is
the same dependency, only hidden. The adapters of one layer do not import each other.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lexi_maint"

LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {
            "__init__",
            "errors",
            "state",
            "procfs",
            "secretfile",
            "printable",
            "units",
            "probe",
            "config",
        }
    ),
    frozenset({"systemd", "graph", "llm"}),
    frozenset({"pipeline"}),
    frozenset({"run"}),
    frozenset({"report"}),
    frozenset({"lifecycle"}),
    frozenset({"daemon", "cli", "__main__"}),
)
SIBLINGS_APART = frozenset({"systemd", "graph", "llm"})  # adapters never import each other


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The lexi_maint modules `name` imports (a `from X import y` names X.y if a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("lexi_maint"))
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, target] if target else base)
            if not target.startswith("lexi_maint"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield sub if sub in known else target


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(module: str) -> int:
    name = top(module)
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    raise AssertionError(f"{module}: {name} is in no layer; add it to LAYERS in {__file__}")


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: {t for t in imports(name, path, known) if t in known and t != name}
        for name, path in found.items()
    }


def test_every_import_points_down_or_sideways_within_its_package() -> None:
    wrong = []
    for source, targets in sorted(graph().items()):
        for target in sorted(targets):
            if layer(target) > layer(source):
                wrong.append(f"{source} -> {target} (runs up a layer)")
            elif top(source) != top(target) and {top(source), top(target)} <= SIBLINGS_APART:
                wrong.append(f"{source} -> {target} (one adapter package imports another)")
    assert not wrong, "\n".join(wrong)


def test_no_modules_import_each_other_in_a_circle() -> None:
    edges = graph()
    circles = [c for c in strongly_connected(edges) if len(c) > 1]
    assert not circles, "\n".join(" <-> ".join(sorted(c)) for c in circles)


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def test_the_checker_sees_an_upward_import_and_a_circle() -> None:
    """The checks themselves can fail: a made-up graph with both faults is caught."""
    assert layer("lexi_maint.errors") < layer("lexi_maint.run.job") < layer("lexi_maint.cli.main")
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert sorted(map(sorted, (c for c in strongly_connected(edges) if len(c) > 1))) == [
        ["a", "b", "c"]
    ]


# Each of these libraries is reached through its adapter only (the modules' docstrings
# say so): a second importer would spread its exceptions and its quirks past the one place
# that translates them.
ADAPTED = {
    "pypdf": {"lexi_maint.pipeline.pdf"},
    "pystemd": {"lexi_maint.systemd.dbus"},
    "falkordb": {"lexi_maint.graph.falkordb"},
    "redis": {"lexi_maint.graph.falkordb", "lexi_maint.graph.falkorserver"},
    "neo4j": {"lexi_maint.graph.neo4jbolt"},
}


def third_party(path: Path) -> set[str]:
    """The top-level names of the libraries a module imports (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def stray_importers(libraries: dict[str, set[str]], found: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} imports {library} (only {', '.join(sorted(libraries[library]))} may)"
        for module, imported in sorted(found.items())
        for library in sorted(imported & set(libraries))
        if module not in libraries[library]
    ]


def test_each_adapted_library_is_imported_by_its_adapter_only() -> None:
    found = {name: third_party(path) for name, path in modules().items()}
    assert not stray_importers(ADAPTED, found), "\n".join(stray_importers(ADAPTED, found))
    for library, adapters in ADAPTED.items():  # the adapters named are real importers
        for adapter in adapters:
            assert library in found[adapter], f"{adapter} no longer imports {library}"


def test_the_checker_sees_a_stray_importer() -> None:
    found = {"lexi_maint.pipeline.pdf": {"pypdf"}, "lexi_maint.run.job": {"pypdf", "json"}}
    assert stray_importers({"pypdf": {"lexi_maint.pipeline.pdf"}}, found) == [
        "lexi_maint.run.job imports pypdf (only lexi_maint.pipeline.pdf may)"
    ]

"""planlab's import graph: no cycles, and the layers import only downwards.

Every ``import`` of every module of ``planning``, ``simulator``, ``executor`` and
``experiments`` counts, also those inside functions (a lazy import that closes a
cycle is still a cycle: two modules that need each other are one concept split in
two); only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("planning", "simulator", "executor", "experiments")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of planlab's packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _type_checking_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imported_modules(tree: ast.AST, modules: set[str]) -> set[str]:
    """The planlab modules ``tree`` imports (a name of a package that is itself a module counts as that module)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if _type_checking_only(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif node.module in modules:
                    found.add(node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found | lazy_exports(tree, modules)


def lazy_exports(tree: ast.AST, modules: set[str]) -> set[str]:
    """The modules a package's PEP 562 ``__getattr__`` imports by name: the keys of its ``_EXPORTS`` table.

    (``planning/__init__`` imports its public names on first use through ``importlib``,
    which the import statements above do not show; the table says where each comes from.)
    """
    found: set[str] = set()
    for node in getattr(tree, "body", []):
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS" and isinstance(node.value, ast.Dict):
            found.update(k.value for k in node.value.keys
                         if isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value in modules)
    return found


def import_graph() -> nx.DiGraph:
    files = module_files()
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        for target in imported_modules(ast.parse(path.read_text(), str(path)), set(files)):
            if target != name:
                graph.add_edge(name, target)
    return graph


def test_no_module_imports_itself_back_through_others() -> None:
    graph = import_graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


#: What each layer may import of planlab (prefixes); everything else is a layering error.
ALLOWED = {
    "planning": ("planning",),
    "simulator": ("simulator", "planning"),
    "executor": ("executor", "planning"),
    "experiments": PACKAGES,
}
#: The planning vocabulary's sub-packages the engines must not depend on: the simulator interprets
#: plans, it does not make them (planners) or read workflows from files (sources).
ENGINE_FORBIDDEN = ("planning.planners", "planning.sources")


def test_layers_import_only_downwards() -> None:
    graph = import_graph()
    wrong = [(a, b) for a, b in graph.edges if not b.startswith(ALLOWED[a.split(".")[0]])]
    assert not wrong, f"imports against the layering: {wrong}"


def test_the_simulator_depends_only_on_the_planning_vocabulary() -> None:
    graph = import_graph()
    wrong = [(a, b) for a, b in graph.edges if a.startswith("simulator") and b.startswith(ENGINE_FORBIDDEN)]
    assert not wrong, f"the simulator imports planners or workflow sources: {wrong}"


def test_the_vocabulary_does_not_import_its_sub_packages() -> None:
    """planning's top-level modules (the vocabulary) are below the workflow sources and the planners.

    (A trace validates its history rows against the history schema of :mod:`planning.costs.history`,
    which imports nothing but the errors: the one edge from the vocabulary into a sub-package.)
    """
    graph = import_graph()
    files = module_files()
    top = {m for m, p in files.items() if m.startswith("planning.") and m.count(".") == 1 and p.name != "__init__.py"}
    above = ("planning.sources", "planning.planners")
    wrong = [(a, b) for a, b in graph.edges if a in top and b.startswith(above)]
    assert not wrong, f"vocabulary modules importing a sub-package: {wrong}"


def test_the_lazy_public_names_are_edges_of_the_graph() -> None:
    """``planning``'s lazily imported names count as imports, so a cycle through them would be seen."""
    graph = import_graph()
    assert {"planning.costs.cost_model", "planning.sources.loading", "planning.workflow"} <= set(graph["planning"])

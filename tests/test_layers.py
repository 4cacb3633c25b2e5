"""The import rules of the house, read from the source with `ast` (every import, also those inside
functions, which hide cycles; only `if TYPE_CHECKING:` blocks are left out):

    api → workflow → states,  workflow → notifications → storage,  demo → workflow;
    states and storage import nothing of the service, notifications neither workflow nor api,
    workflow never api or demo; no cycles between workflow's (or api's) parts;
    and everything is imported through the one installed namespace, `jinqiu.*`.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "workflow", "states", "notifications", "storage", "demo")
SOURCES = (*PACKAGES, "tests", "bench")


def python_files(folder: str) -> Iterator[Path]:
    yield from sorted((ROOT / folder).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return "jinqiu." + ".".join(parts) if parts[0] in PACKAGES else ".".join(parts)


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every absolute import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from jinqiu.workflow import cases` imports a module
                yield node.lineno, f"{node.module}.{alias.name}"


KNOWN_MODULES = {module_name(p) for folder in PACKAGES for p in python_files(folder)}


def service_imports(folder: str) -> Iterator[tuple[str, int, str]]:
    """(importing module, line, imported service module) for one folder's files."""
    for path in python_files(folder):
        for line, target in imports_of(path):
            if target in KNOWN_MODULES:
                yield module_name(path), line, target


@pytest.mark.parametrize("folder", SOURCES)
def test_the_packages_are_imported_only_as_jinqiu(folder: str) -> None:
    bare = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in python_files(folder)
        for line, target in imports_of(path)
        if target.split(".")[0] in PACKAGES
    ]
    assert not bare, "import through the jinqiu namespace:\n" + "\n".join(bare)


FORBIDDEN = {
    "states": (
        "jinqiu.api",
        "jinqiu.workflow",
        "jinqiu.notifications",
        "jinqiu.storage",
        "jinqiu.demo",
    ),
    "storage": (
        "jinqiu.api",
        "jinqiu.workflow",
        "jinqiu.notifications",
        "jinqiu.states",
        "jinqiu.demo",
    ),
    "notifications": ("jinqiu.api", "jinqiu.workflow", "jinqiu.demo"),
    "workflow": ("jinqiu.api", "jinqiu.demo"),
    "api": ("jinqiu.demo.synthetic", "jinqiu.demo.units"),  # the CLI may start the demo, no more
}


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_run_one_way(folder: str) -> None:
    wrong = [
        f"{source}:{line} imports {target}"
        for source, line, target in service_imports(folder)
        if target.startswith(FORBIDDEN[folder])
    ]
    assert not wrong, f"{folder}/ may not import these:\n" + "\n".join(wrong)


def part_of(module: str) -> str:
    """The unit a cycle is counted between: jinqiu.workflow.cases.engine → jinqiu.workflow.cases,
    jinqiu.workflow.errors → jinqiu.workflow.errors (a module of its own)."""
    return ".".join(module.split(".")[:3])


def cycles(folder: str) -> list[list[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    prefix = f"jinqiu.{folder}."
    for source, _line, target in service_imports(folder):
        a, b = part_of(source), part_of(target)
        if a != b and b.startswith(prefix) and a.startswith(prefix):
            graph[a].add(b)
    # Tarjan's strongly connected components: every component of more than one part is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    "folder",
    [
        "workflow",
        "api",
        "notifications",
        "states",
        "storage",
    ],
)
def test_no_cycles_between_the_parts_of_a_package(folder: str) -> None:
    assert cycles(folder) == []

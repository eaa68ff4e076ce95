"""No import cycles among the scripts of scripts/ and bench/. They import each other as top-level modules (each
folder is put on sys.path), which import-linter's graph of packages cannot see, so the graph is read here from
their import statements, lazy imports inside functions included."""
import ast
from pathlib import Path
from typing import Dict, List, Set

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sibling_imports(folder: Path) -> Dict[str, Set[str]]:
    """{module: the modules of the same folder it imports anywhere in its source}."""
    names = {path.stem for path in folder.glob("*.py")}
    graph: Dict[str, Set[str]] = {}
    for path in sorted(folder.glob("*.py")):
        found: Set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
        graph[path.stem] = (found & names) - {path.stem}
    return graph


def find_cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import cycle as [a, b, ..., a], or [] where there is none (depth-first search)."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    path: List[str] = []

    def visit(module: str) -> List[str]:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state:
                cycle = visit(imported)
                if cycle:
                    return cycle
        path.pop()
        state[module] = 2
        return []

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            if cycle:
                return cycle
    return []


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a"}}) == []


@pytest.mark.parametrize("folder", ["scripts", "bench"])
def test_no_import_cycle(folder):
    graph = sibling_imports(ROOT / folder)
    assert graph, folder
    cycle = find_cycle(graph)
    assert not cycle, f"{folder}/ has an import cycle: {' -> '.join(cycle)}"

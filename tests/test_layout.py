"""The package's layout: no import cycle among bert's modules (imports inside functions counted: a lazy import is
still a dependency), no module over 450 lines, and the import forms the package docstrings show."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from support import REPO

PACKAGE = REPO / "bert"
MAX_LINES = 450


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the bert modules it imports anywhere in its body (top level, functions, TYPE_CHECKING blocks);
    ``from bert.x import name`` counts as importing ``bert.x.name`` when that is a module, else ``bert.x``."""
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_bert_modules_lazy_imports_included() -> None:
    graph = import_graph()
    assert len(graph) > 60 and graph["bert.pretrained"] >= {"bert.weights", "bert.precision"}  # lazy one included
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_made_of_lazy_imports() -> None:
    """The check above can fail: a made-up graph with the old model → pretrained → quantize → model circle."""
    graph = {"bert.model": {"bert.pretrained"}, "bert.pretrained": {"bert.quantize"},
             "bert.quantize": {"bert.model"}, "bert.config": set()}
    assert cycles(graph) == [["bert.model", "bert.pretrained", "bert.quantize"]]


def test_no_module_is_over_450_lines() -> None:
    lengths = {module_name(path): len(path.read_text(encoding="utf-8").splitlines()) for path in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_the_tokenizer_package_exports_its_tokenizer_as_its_docstring_shows() -> None:
    code = "from bert.tokenizer import BertTokenizer, FastTokenizer; print(BertTokenizer.__name__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "BertTokenizer", done.stderr

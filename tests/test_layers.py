"""The package layout: no import cycles (imports inside functions count), and each subpackage imports
only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "smmflow"

#: lowest first; a module may import its own layer and the layers before it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("constants", "tables", "io", "config", "native_blas"),
    ("chem",),
    ("geometry",),
    ("xtb",),
    ("dft",),
    ("abinitio",),
    ("ml",),
    ("stages",),
    ("cli",),
)


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py")}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """smmflow modules imported anywhere in the file (top level or inside functions)."""
    out: set[str] = set()
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return {d for d in out if d in known and d not in (name, "smmflow")}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for i, layer in enumerate(LAYERS):
        if top in layer:
            return i
    raise AssertionError(f"{module}: not in any layer of tests/test_layers.py")


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imported(m, p, set(mods)) for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in g:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_every_subpackage_imports_only_lower_layers():
    bad = [f"{m} imports {d}" for m, deps in graph().items() for d in deps
           if m != "smmflow" and layer_of(d) > layer_of(m)]
    assert bad == []


@pytest.mark.parametrize("module", ["smmflow.stages.casscf", "smmflow.abinitio.casscf"])
def test_layer_of_known_modules(module):
    assert 0 < layer_of(module) < len(LAYERS)

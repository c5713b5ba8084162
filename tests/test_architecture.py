"""The plan of the package: no import cycles, short import chains, modules of readable size.

The import graph is read with ``ast`` from the source (nothing is imported): every ``import`` and
``from ... import`` inside ``vfxinsert/``, at module level and inside functions, relative and
absolute; only ``if TYPE_CHECKING:`` blocks are left out (never executed: names for annotations).
``python tests/test_architecture.py`` prints the measures (floors, chain, sizes).
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "vfxinsert"
MAX_CHAIN = 10
MAX_LINES = 600


def module_files(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package (``__init__`` names its package)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (module level and inside functions)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node.test)
                   for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:   # `import a.b.c` of a name inside a.b.c
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@lru_cache(maxsize=1)
def import_graph() -> dict[str, frozenset[str]]:
    files = module_files()
    names = set(files)
    return {name: frozenset(imports_of(name, path, names)) for name, path in files.items()}


def find_cycle(graph) -> list[str] | None:
    """One import cycle (as a list of modules, first repeated at the end), or None."""
    state: dict[str, int] = {}   # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def longest_chain(graph) -> list[str]:
    """The longest import chain (a module, one it imports, one that imports, ...) of an acyclic graph."""
    best: dict[str, list[str]] = {}

    def chain(node):
        if node not in best:
            tails = [chain(dep) for dep in graph[node]]
            best[node] = [node] + max(tails, key=len, default=[])
        return best[node]

    return max((chain(n) for n in sorted(graph)), key=len)


def test_package_init_files_import_nothing_of_the_package():
    # importing vfxinsert.a.b runs vfxinsert/a/__init__.py first: keeping those empty keeps the graph honest
    graph = import_graph()
    files = module_files()
    assert {n: sorted(graph[n]) for n, p in files.items() if p.name == "__init__.py" and graph[n]} == {}


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_longest_import_chain_is_short():
    chain = longest_chain(import_graph())
    assert len(chain) <= MAX_CHAIN, " -> ".join(chain)


def test_no_module_is_too_long():
    sizes = {name: len(path.read_text().splitlines()) for name, path in module_files().items()}
    assert {n: s for n, s in sizes.items() if s > MAX_LINES} == {}


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert longest_chain({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == ["a", "b", "c"]


def test_imports_are_resolved_relative_absolute_and_inside_functions(tmp_path):
    pkg = tmp_path / "vfxinsert"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nfrom ..a import x\n"
                                      "if TYPE_CHECKING:\n    from . import e\n\ndef f():\n"
                                      "    import vfxinsert.sub.c\n    from . import d\n")
    (pkg / "sub" / "c.py").write_text("")
    (pkg / "sub" / "d.py").write_text("")
    (pkg / "sub" / "e.py").write_text("")
    files = module_files(pkg)
    assert imports_of("vfxinsert.sub.b", files["vfxinsert.sub.b"], set(files)) == \
        {"vfxinsert.a", "vfxinsert.sub.c", "vfxinsert.sub.d"}


def _floors(graph) -> int:
    """Import floors: levels of the graph's condensation (a cycle is one floor)."""
    index = {n: i for i, n in enumerate(sorted(graph))}
    low, stack, on, sccs, counter = {}, [], set(), [], [0]

    def strong(v):  # Tarjan
        index_v = low[v] = counter[0] = counter[0] + 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in low:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], low[w])
        if low[v] == index_v:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            sccs.append(frozenset(comp))

    low = {}
    for v in sorted(graph, key=index.get):
        if v not in low:
            strong(v)
    of = {n: c for c in sccs for n in c}
    cgraph = {c: {of[d] for n in c for d in graph[n]} - {c} for c in sccs}
    return len(longest_chain(cgraph)), [sorted(c) for c in sccs if len(c) > 1]


if __name__ == "__main__":
    g = import_graph()
    floors, cycles = _floors(g)
    sizes = sorted(((len(p.read_text().splitlines()), n) for n, p in module_files().items()), reverse=True)
    print(f"modules {len(g)}, floors {floors}, strongly connected groups {cycles}")
    print("cycle:", find_cycle(g))
    if not cycles:
        chain = longest_chain(g)
        print(f"longest chain {len(chain)}: {' -> '.join(chain)}")
    print("largest modules:", sizes[:5])

"""The package's imports run one way: core <- arrays <- signals <- files <- shell.

Every import statement of every module under ``src/tomoalign`` is parsed (not executed),
function-level ones included, so a circle cannot hide in a function body. The layer of each
module is declared in :data:`LAYERS`; a new module must be placed there before the test
passes, which is the point: its author decides where it belongs. See the README's
"Architecture".
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "tomoalign"

#: Layers from the bottom up; a module may import only from its own layer or those below.
#: Entries are module names or package prefixes (``"tomoalign.estimate"`` covers
#: ``tomoalign.estimate._dispatch``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "core",
        (
            "tomoalign._backend",
            "tomoalign._validation",
            "tomoalign._numerics",
            "tomoalign._warnings",
            "tomoalign._progress",
            "tomoalign._paths",
        ),
    ),
    (
        "arrays",
        (
            "tomoalign.shifts",
            "tomoalign.geometry",
            "tomoalign.simulate",
            "tomoalign.metrics",
            "tomoalign._profiles",
            "tomoalign._background",
            "tomoalign.reconstruction",
            "tomoalign.estimate",
            "tomoalign.formats",
        ),
    ),
    ("signals", ("tomoalign.signals", "tomoalign.align")),
    ("files", ("tomoalign.io", "tomoalign.datasets")),
    ("shell", ("tomoalign.cli", "tomoalign.__main__")),
    ("api", ("tomoalign",)),
]

#: Third-party packages that the layers below "signals" must not import.
SIGNAL_LIBRARIES = ("hyperspy", "matplotlib")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the most specific entry that covers ``module``."""
    best, best_len = None, -1
    for index, (_name, entries) in enumerate(LAYERS):
        for entry in entries:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > best_len:
                best, best_len = index, len(entry)
    if best is None:
        raise AssertionError(f"{module} has no layer: add it to LAYERS in {__file__}")
    return best


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(module: str) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every import in ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                continue  # annotations only; never executed
            inner = top and not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            )
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    source = ".".join([*base, child.module] if child.module else base)
                else:
                    source = child.module or ""
                found.append((source, child.lineno, top))
                for alias in child.names:  # ``from pkg import submodule``
                    candidate = f"{source}.{alias.name}"
                    if candidate in MODULES:
                        found.append((candidate, child.lineno, top))
            visit(child, inner)

    visit(tree, True)
    return found


def _internal_edges() -> dict[str, set[str]]:
    """Module -> the tomoalign modules it imports, with the packages those sit in.

    Importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__`` first, so they count too,
    except the packages that hold the importing module (they are already being imported).
    """
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module in MODULES:
        for target, _line, _top in imports_of(module):
            if target != "tomoalign" and not target.startswith("tomoalign."):
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                # A package that holds ``module`` is already being imported: no new edge.
                if name in MODULES and name != module and not module.startswith(name + "."):
                    edges[module].add(name)
    return edges


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_do_not_reach_up(module):
    mine = layer_of(module)
    upward = []
    for target, line, _top in imports_of(module):
        if target.startswith("tomoalign.") and layer_of(target) > mine:
            upward.append(f"line {line}: {target} ({LAYERS[layer_of(target)][0]})")
    assert not upward, (
        f"{module} ({LAYERS[mine][0]}) imports from a layer above it: {'; '.join(upward)}"
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_tomoalign_imports_sit_at_module_level(module):
    """A function-level import of the package is how circles hide; there are none."""
    hidden = [
        f"line {line}: {target}"
        for target, line, top in imports_of(module)
        if not top and (target == "tomoalign" or target.startswith("tomoalign."))
    ]
    assert not hidden, f"{module} imports tomoalign inside a function: {'; '.join(hidden)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_arrays_never_import_hyperspy(module):
    if layer_of(module) > layer_of("tomoalign.estimate"):
        return
    bad = [
        f"line {line}: {target}"
        for target, line, _top in imports_of(module)
        if target.split(".")[0] in SIGNAL_LIBRARIES
    ]
    assert not bad, f"{module} is below the signal layer but imports {'; '.join(bad)}"


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``edges`` (module -> imported modules), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycles():
    cycle = find_cycle(_internal_edges())
    assert cycle is None, f"import cycle: {' -> '.join(cycle or [])}"


def test_the_checks_can_fail():
    """Fed a circle through a package ``__init__`` and an upward import, the checks see them."""
    edges = _internal_edges()
    assert find_cycle(edges) is None
    edges["tomoalign._profiles"].add("tomoalign.estimate")  # estimate imports _profiles
    assert find_cycle(edges) is not None
    assert layer_of("tomoalign.signals.tilt_series") > layer_of("tomoalign.estimate._dispatch")
    with pytest.raises(AssertionError, match="has no layer"):
        layer_of("tomoalign_other.module")


@pytest.mark.parametrize(
    "module",
    ["tomoalign", "tomoalign.estimate", "tomoalign.shifts", "tomoalign.simulate"],
)
def test_the_array_layer_does_not_load_hyperspy(module):
    code = (
        f"import sys, {module}\n"
        "import tomoalign\n"
        "tomoalign.estimate_shifts  # a public array name, resolved on first use\n"
        "assert 'hyperspy' not in sys.modules, 'hyperspy was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]

"""The layers of the package, read from its import statements: what may import what, and no cycles.

docs/architecture.md draws the same picture. Every `import gymserve...` in a module, at the top or
inside a function, is an edge; a layer may import only the layers listed for it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import gymserve

PACKAGE_ROOT = Path(gymserve.__file__).resolve().parent

# Each layer (a module prefix) and the prefixes it may import besides itself. `gymserve` (the root
# package, for `__version__`) and `gymserve.common` are open to every layer.
ALLOWED_IMPORTS: dict[str, tuple[str, ...]] = {
    "gymserve.common": (),
    "gymserve.envs": (),
    "gymserve.policies": (),
    "gymserve.pretrained": ("gymserve.policies",),
    "gymserve.tf_agents": ("gymserve.policies",),
    "gymserve.agents": ("gymserve.policies", "gymserve.envs", "gymserve.tf_agents"),
    "gymserve.serving.v1": (),
    "gymserve.serving.client": ("gymserve.serving.v1", "gymserve.policies"),
    "gymserve.serving": ("gymserve.policies",),
    "gymserve.tuning": ("gymserve.agents", "gymserve.policies", "gymserve.envs"),
    "gymserve.cli": ("gymserve",),
    "gymserve.__main__": ("gymserve.cli",),
}
OPEN_TO_ALL = ("gymserve.common",)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The gymserve modules `path` imports anywhere in its body (`from X import name` counts as X)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "gymserve" or name.startswith("gymserve.")}


MODULES = {
    module_name(path): imported_modules(path)
    for path in sorted(PACKAGE_ROOT.rglob("*.py"))
    if not path.name.endswith(("_pb2.py", "_pb2_grpc.py"))
}


def layer_of(module: str) -> str:
    """The most specific layer prefix that `module` falls under."""
    matches = [layer for layer in ALLOWED_IMPORTS if module == layer or module.startswith(layer + ".")]
    assert matches, f"{module} belongs to no layer: add its folder to ALLOWED_IMPORTS and the docs"
    return max(matches, key=len)


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("module", [name for name in MODULES if name != "gymserve"])
def test_a_module_imports_only_the_layers_below_it(module: str):
    layer = layer_of(module)
    allowed = (layer, *ALLOWED_IMPORTS[layer], *OPEN_TO_ALL)
    wrong = sorted(
        name for name in MODULES[module] if name != "gymserve" and not any(within(name, p) for p in allowed)
    )
    assert not wrong, f"{module} ({layer}) imports {wrong}; it may import only {allowed}"


def test_no_two_modules_import_each_other_even_through_others():
    known = set(MODULES)
    edges = {
        module: {name for name in imports if name in known and name != module}
        for module, imports in MODULES.items()
    }
    # A package importing its own submodules (to re-export them) is how packages work, not a cycle.
    for module, targets in edges.items():
        edges[module] = {t for t in targets if not within(module, t) and not within(t, module)}
    cycles = strongly_connected_components(edges)
    assert not cycles, f"import cycles: {cycles}"


def strongly_connected_components(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns only the components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in edges:
        if node not in index:
            visit(node)
    return found


def test_every_folder_says_what_it_holds():
    for init in PACKAGE_ROOT.rglob("__init__.py"):
        if init.parent.name == "v1":
            continue
        docstring = ast.get_docstring(ast.parse(init.read_text()))
        assert docstring, f"{init.relative_to(PACKAGE_ROOT.parent)} has no opening docstring"

"""The house rules of DESIGN.md section 3, checked on the source: each floor uses only the floors
below it (no import circles), argparse lives in ``mixopt/cli`` only, no module over 300 lines and
no function over 60 lines of code (docstrings aside) outside the family factories."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mixopt"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        out[name] = ast.parse(path.read_text())
    return out


def _imports(tree: ast.Module, modules) -> set[str]:
    deps = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        deps.update(n for n in names if n in modules)
    return deps


def _cycle(graph: dict) -> list | None:
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return None


def test_no_import_circles():
    modules = _modules()
    # a package's __init__ importing its own submodules is how packages work, not a circle
    graph = {m: {d for d in _imports(t, modules) if d != m and not (d.startswith(m + ".") and m in
                                                                   ("mixopt", "mixopt.cli", "mixopt.optimizers",
                                                                    "mixopt.families"))}
             for m, t in modules.items()}
    assert _cycle(graph) is None, _cycle(graph)
    # power: a circle is found where there is one
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_argparse_only_in_the_cli():
    for name, tree in _modules().items():
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "argparse" not in imported or name.startswith("mixopt.cli"), name


def test_modules_and_functions_stay_small():
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        assert len(lines) <= 300, f"{path.name}: {len(lines)} lines"
        if path.parent.name == "families":
            continue  # a family factory closes over its static sizes: one function by design
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]  # the docstring
                size = (body[-1].end_lineno - body[0].lineno + 1) if body else 0
                assert size <= 60, f"{path.name}: {node.name} has {size} lines of code"

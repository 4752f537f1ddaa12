"""The import graph of kprim_tools is acyclic: every import, function-level ones included."""

import ast
import os
import unittest

PACKAGE = "kprim_tools"
PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), PACKAGE)


def modules():
    """Names of the package's modules (``__init__`` for the package itself)."""
    return sorted(f[:-3] for f in os.listdir(PACKAGE_DIR) if f.endswith(".py"))


def imported(module, known):
    """The package modules ``module`` imports anywhere in its source (``__init__`` for names
    taken from the package itself)."""
    with open(os.path.join(PACKAGE_DIR, module + ".py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), module)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE:
                    out.add(parts[1] if len(parts) > 1 and parts[1] in known else "__init__")
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                continue
            if node.level == 1:
                parts = node.module.split(".") if node.module else []
            elif node.module and node.module.split(".")[0] == PACKAGE:
                parts = node.module.split(".")[1:]
            else:
                continue
            if parts:
                out.add(parts[0] if parts[0] in known else "__init__")
            else:
                out.update(a.name if a.name in known else "__init__" for a in node.names)
    out.discard(module)
    return out


def graph():
    """``{module: set of package modules it imports}``."""
    known = set(modules())
    return {m: imported(m, known) for m in known}


def cycle(edges):
    """One import cycle of ``edges`` as a list of modules (first repeated last), or ``None``."""
    state = {}

    def visit(node, path):
        """Depth-first search from ``node``; the cycle found, or ``None``."""
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return None


class ImportGraphTest(unittest.TestCase):
    """Leaf modules at the bottom, the command line at the top, no cycle in between."""

    def test_graph_is_acyclic(self):
        found = cycle(graph())
        self.assertIsNone(found, "import cycle: " + " -> ".join(found or []))

    def test_nothing_imports_the_command_line(self):
        importers = sorted(m for m, deps in graph().items() if "cli" in deps)
        self.assertEqual(importers, [], "cli is the top of the graph")

    def test_cycle_finder(self):
        self.assertEqual(cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}))

    def test_function_level_imports_count(self):
        edges = graph()
        self.assertIn("plots", edges["cli"], "cli imports plots inside a function")
        self.assertIn("results", edges["plots"], "from . import results as res")
        self.assertIn("__init__", edges["results"], "from . import KbenchError")


if __name__ == "__main__":
    unittest.main()

"""The package's layers: no import circle, and no module importing one of a higher layer.

Every `import` and `from ... import` of `albert_tf` is read from the source (function-level imports
included, since a lazy import is still a dependency), mapped to the module it names, and checked against
the layer table of docs/architecture.md.
"""
import ast
import os

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "albert_tf")
# Lowest first; a module belongs to the first layer with a prefix that names it (its package __init__
# files included). A module may import its own layer and lower ones.
LAYERS = [
    ("base", ["albert_tf.fileio", "albert_tf.configs", "albert_tf.metrics", "albert_tf.optimization",
              "albert_tf.core.settings", "albert_tf.core.cli", "albert_tf.data.tfrecord", "albert_tf.data.parallel",
              "albert_tf.data.cache", "albert_tf.data.text_checks", "albert_tf.sentencepiece_rules", "albert_tf.lazy_names",
              "albert_tf.tasks.glue.names", "albert_tf.tasks.glue.settings", "albert_tf.tasks.race.settings",
              "albert_tf.tasks.squad.settings", "albert_tf.tasks.pretraining.settings"]),
    ("formats", ["albert_tf.checkpoints.tf1", "albert_tf.checkpoints.hf_format", "albert_tf.checkpoints.hub_format",
                 "albert_tf.checkpoints.source"]),
    ("text and models", ["albert_tf.tokenization", "albert_tf.in_graph_tokenizer", "albert_tf.modeling"]),
    ("loaders and records", ["albert_tf.checkpoints", "albert_tf.data"]),
    ("exports", ["albert_tf.export", "albert_tf.preprocessing"]),
    ("run machinery", ["albert_tf.core"]),
    ("tasks", ["albert_tf.tasks"]),
    ("programs", ["albert_tf.runs", "albert_tf.demo", "albert_tf.scripts", "albert_tf.squad_eval",
                  "albert_tf.squad_postprocess", "albert_tf.__init__", "albert_tf"]),
]
# Compatibility modules of documented command lines: they re-export a task package's module.
SHIMS = {"albert_tf.data.squad_split"}


def _modules() -> dict[str, str]:
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path[:-3], ROOT).replace(os.sep, ".")
                found[module[: -len(".__init__")] if module.endswith(".__init__") else module] = path
    return found


def _imports(module: str, path: str, modules: dict[str, str]) -> set[str]:
    package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        target = next((n for n in names if n in modules and n != module), None)
        if target:
            out.add(target)
    return out


def _layer(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of the table")


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {m: _imports(m, p, modules) for m, p in modules.items()}


def test_no_import_circle(graph):
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, circles


def test_no_module_imports_a_higher_layer(graph):
    upward = [f"{m} ({LAYERS[_layer(m)][0]}) -> {t} ({LAYERS[_layer(t)][0]})"
              for m, targets in graph.items() if m not in SHIMS for t in targets if _layer(t) > _layer(m)]
    assert not upward, upward


def test_tasks_never_import_the_driver(graph):
    assert not [m for m, targets in graph.items() if m.startswith("albert_tf.tasks") and "albert_tf.core.driver" in targets]

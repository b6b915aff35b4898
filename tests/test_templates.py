"""The chapter templates tell, pdlib computes: one skeleton and no logic in the notebooks.

Every template in ``notebooks/`` is: a title (Markdown, ``# ...``), Markdown
that introduces the chapter, the ``parameters`` cell papermill replaces (plain
assignments, the study's common parameters first), one setup cell of imports
tagged ``remove-input`` (hidden in the book), then the content. Code cells
only call :mod:`pdlib` and display: no function or class definitions, no
training, no parsing of arm names (``split``, regular expressions); the
tables and sentences come from tested functions (:mod:`pdlib.report`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest

from pdlib import pipeline

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: Parameters every chapter receives from the pipeline (pdlib.pipeline.plan), in this order.
COMMON_PARAMETERS = ["profile", "config_name", "manifest_dir", "twin_dir", "results_dir", "cache_dir", "seeds",
                     "overrides"]

#: Names whose call in a template would train or pretrain a model.
TRAINING_NAMES = {"train", "pretrain", "run_arm", "run_arm_from_manifest", "train_member", "train_member_target",
                  "run_member", "progressive_distill", "pretrained_weights", "fit", "backward", "step"}

#: String methods that take a name apart.
PARSING_METHODS = {"split", "rsplit", "partition", "rpartition", "startswith", "endswith", "removeprefix",
                   "removesuffix", "extract", "findall", "match", "fullmatch"}

#: Modules a template must not import: the training code and regular expressions.
FORBIDDEN_MODULES = {"re", "pdlib.train", "pdlib.pretrain", "pdlib.distill"}


def _code(path: Path) -> list[tuple[int, nbformat.NotebookNode]]:
    notebook = nbformat.read(path, as_version=4)
    return [(i, c) for i, c in enumerate(notebook.cells) if c.cell_type == "code"]


def _problems(path: Path) -> list[str]:
    """Everything in a template that breaks the skeleton or computes what pdlib should."""
    notebook = nbformat.read(path, as_version=4)
    cells, name = notebook.cells, path.name
    problems = []
    title = re.sub(r"^\([a-z0-9-]+\)=\n", "", cells[0].source) if cells else ""  # a MyST target may precede it
    if not cells or cells[0].cell_type != "markdown" or not title.startswith("# "):
        problems.append(f"{name}: the first cell must be the Markdown title ('# ...')")
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    if len(code) < 2:
        return problems + [f"{name}: needs a parameters cell and a setup cell"]
    parameters, setup = cells[code[0]], cells[code[0] + 1]
    if "parameters" not in parameters.metadata.get("tags", []):
        problems.append(f"{name}: the first code cell must be tagged 'parameters'")
    assigned = [t.id for node in ast.parse(parameters.source).body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)]
    if not all(isinstance(node, ast.Assign) for node in ast.parse(parameters.source).body):
        problems.append(f"{name}: the parameters cell must hold assignments only")
    if assigned[:len(COMMON_PARAMETERS)] != COMMON_PARAMETERS:
        problems.append(f"{name}: the parameters cell must start with {COMMON_PARAMETERS}, has {assigned}")
    if setup.cell_type != "code" or setup.metadata.get("tags", []) != ["remove-input"]:
        problems.append(f"{name}: the cell after the parameters must be the setup cell, tagged only 'remove-input'")
    for node in ast.parse(setup.source).body:
        inner = node.body if isinstance(node, ast.With) else [node]  # quieting a third-party import warning
        if not all(isinstance(n, (ast.Import, ast.ImportFrom)) or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call))
                   for n in inner):
            problems.append(f"{name}: the setup cell holds more than imports (line {node.lineno})")
    for index in code[2:]:
        tree = ast.parse(cells[index].source)
        where = f"{name} cell {index}"
        if "hide-input" not in cells[index].metadata.get("tags", []):
            problems.append(f"{where}: content code cells are tagged 'hide-input'")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                problems.append(f"{where}: defines a function or class (move it into pdlib)")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                problems.append(f"{where}: imports belong in the setup cell")
    for index in code:
        tree = ast.parse(cells[index].source)
        where = f"{name} cell {index}"
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called in TRAINING_NAMES:
                    problems.append(f"{where}: calls {called}() (chapters read results; the pipeline trains)")
                if isinstance(func, ast.Attribute) and called in PARSING_METHODS:
                    problems.append(f"{where}: parses a string with .{called}() (use the arms' attributes)")
            if isinstance(node, ast.keyword) and node.arg == "regex":
                problems.append(f"{where}: uses a regular expression")
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) else [])
            problems += [f"{where}: imports {m}" for m in modules if m in FORBIDDEN_MODULES]
    return problems


def test_every_chapter_of_the_pipeline_has_a_template():
    assert sorted(template for _, template, _ in pipeline.CHAPTERS) == [p.name for p in TEMPLATES]


@pytest.mark.parametrize("path", TEMPLATES, ids=[p.stem for p in TEMPLATES])
def test_template_follows_the_skeleton_and_only_calls_pdlib(path):
    assert _problems(path) == []


def test_the_check_finds_logic_in_a_template(tmp_path):
    notebook = nbformat.read(TEMPLATES[0], as_version=4)
    index = _code(TEMPLATES[0])[2][0]
    notebook.cells[index].source = (
        "def model_of(arm):\n    return arm.split('_')[1]\n"
        "record = train.run_arm_from_manifest('pd_b7')\n")
    notebook.cells.insert(index, nbformat.v4.new_code_cell("import re", metadata={"tags": ["hide-input"]}))
    bad = tmp_path / "bad.ipynb"
    nbformat.write(notebook, str(bad))
    problems = "\n".join(_problems(bad))
    assert "defines a function" in problems and "parses a string with .split()" in problems
    assert "calls run_arm_from_manifest()" in problems and "imports re" in problems
    assert "imports belong in the setup cell" in problems
    notebook.cells[0].source = "Intro without a title"
    setup = _code(TEMPLATES[0])[1][0]
    notebook.cells[setup].metadata["tags"] = ["hide-input"]
    nbformat.write(notebook, str(bad))
    problems = "\n".join(_problems(bad))
    assert "Markdown title" in problems and "tagged only 'remove-input'" in problems

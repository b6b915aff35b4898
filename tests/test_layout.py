"""The repository's layout and the files that must agree with each other.

Checks the top-level items of the design, the book's configuration links,
that pyproject.toml and environment.yml list the same packages with the same
bounds, that CI runs exactly the README's test command, that notebook
templates carry no outputs, that the citation and publishing metadata are
complete, and that no file in git is over 5 MB.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

import pdlib

ROOT = Path(__file__).resolve().parents[1]

#: Top-level items of the design card (folders end with "/").
TOP_LEVEL = (
    "book/", "notebooks/", "pdlib/", "data_manifest/", "tests/", "benchmarks/", "tools/", ".ci/",
    "_config.yml", "_toc.yml", "environment.yml", "pyproject.toml", "README.md", "Makefile",
    ".ci/run", "CITATION.cff", ".github/workflows/book.yml", "constraints.txt",
)

#: conda package name -> pip distribution name, where they differ.
CONDA_TO_PIP = {"pytorch": "torch"}

#: conda entries that are not Python distributions of pyproject.toml.
CONDA_ONLY = {"python", "pip"}

#: Nothing in git may be larger than this (house rule).
MAX_FILE_BYTES = 5 * 1024 * 1024

#: Cell tags that fold or remove a code cell's source in the book. myst-nb
#: has no global "hide all code" switch, so every code cell carries one.
HIDING_TAGS = {"hide-input", "hide-cell", "remove-input", "remove-cell"}


# --------------------------------------------------------------------------
# helpers (plain functions so that the drift checks can be tested on edited copies)


def pyproject_requirements(text: str) -> dict[str, SpecifierSet]:
    """Name -> version bounds of the runtime dependencies plus the ``test`` extra."""
    project = tomllib.loads(text)["project"]
    lines = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("test", []))
    requirements = {}
    for line in lines:
        requirement = Requirement(line)
        requirements[canonicalize_name(requirement.name)] = requirement.specifier
    return requirements


_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*$")


def conda_requirements(text: str) -> tuple[dict[str, SpecifierSet], str | None]:
    """Name (as pip calls it) -> bounds of environment.yml's conda packages, and its python spec."""
    environment = yaml.safe_load(text)
    requirements, python = {}, None
    for entry in environment["dependencies"]:
        if not isinstance(entry, str):  # the nested `pip:` list installs pdlib itself
            continue
        match = _CONDA_SPEC.match(entry)
        if match is None:
            raise ValueError(f"environment.yml: cannot read the dependency {entry!r}")
        name, spec = match.group(1).lower(), match.group(2).replace(" ", "")
        if re.match(r"^=[^=]", spec):  # conda's fuzzy "=3.11" means "==3.11.*"
            spec = "=" + spec + ".*"
        if name == "python":
            python = spec
        if name in CONDA_ONLY:
            continue
        requirements[canonicalize_name(CONDA_TO_PIP.get(name, name))] = SpecifierSet(spec)
    return requirements, python


def dependency_drift(pyproject_text: str, environment_text: str) -> list[str]:
    """Every difference between pyproject.toml's and environment.yml's package lists."""
    pip = pyproject_requirements(pyproject_text)
    conda, python = conda_requirements(environment_text)
    problems = []
    for name in sorted(set(pip) - set(conda)):
        problems.append(f"{name}: in pyproject.toml ({pip[name]}) but not in environment.yml")
    for name in sorted(set(conda) - set(pip)):
        problems.append(f"{name}: in environment.yml ({conda[name]}) but not in pyproject.toml")
    for name in sorted(set(pip) & set(conda)):
        if pip[name] != conda[name]:
            problems.append(f"{name}: pyproject.toml says {pip[name] or 'any'}, environment.yml says {conda[name] or 'any'}")
    requires_python = SpecifierSet(tomllib.loads(pyproject_text)["project"].get("requires-python", ""))
    if python is None:
        problems.append("python: environment.yml pins no python version")
    else:
        pinned = re.sub(r"[^0-9.]", "", python.split(",")[0]).rstrip(".")
        if Version(pinned) not in requires_python:
            problems.append(f"python: environment.yml's {python} is outside requires-python {requires_python}")
    return problems


def readme_getting_started_commands(readme: str) -> list[str]:
    """Commands of the first shell code block under the README's "Getting started" heading."""
    section = re.search(r"^##+\s*Getting started\s*$(.*?)(?=^##?\s|\Z)", readme, re.M | re.S)
    assert section, "README.md has no 'Getting started' section"
    block = re.search(r"```(?:bash|sh|shell|console)?\n(.*?)```", section.group(1), re.S)
    assert block, "README.md's 'Getting started' section has no code block"
    commands = []
    for line in block.group(1).splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if command and not command.startswith("#"):
            commands.append(command)
    return commands


def script_commands(script: str) -> list[str]:
    """Commands of a shell script, leaving out comments, shell options and changes of folder."""
    commands = []
    for line in script.splitlines():
        command = re.sub(r"\s+#.*$", "", line).strip()
        if not command or command.startswith("#") or re.match(r"^(set|cd)\s", command):
            continue
        commands.append(command)
    return commands


# --------------------------------------------------------------------------
# layout


def test_top_level_items_exist():
    missing = []
    for item in TOP_LEVEL:
        path = ROOT / item.rstrip("/")
        if item.endswith("/") and not path.is_dir() or not item.endswith("/") and not path.is_file():
            missing.append(item)
    assert not missing, f"missing from the repository root: {missing}"


def test_book_config_and_toc_are_links_to_the_top_level_files():
    for name in ("_config.yml", "_toc.yml"):
        link = ROOT / "book" / name
        assert link.is_symlink(), f"book/{name} must be a symbolic link to ../{name}"
        assert os.readlink(link) == f"../{name}", f"book/{name} points to {os.readlink(link)!r}, not ../{name}"
        assert link.resolve() == (ROOT / name).resolve()


def test_book_builds_with_notebook_execution_off():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["sphinx"]["config"]["nb_execution_mode"] == "off"
    assert config["bibtex_bibfiles"] == ["references.bib"]
    assert (ROOT / "book" / "references.bib").is_file()
    assert config["sphinx"]["config"]["numfig"] is True


# --------------------------------------------------------------------------
# pyproject.toml and environment.yml


def test_environment_yml_lists_the_same_packages_and_bounds_as_pyproject():
    drift = dependency_drift((ROOT / "pyproject.toml").read_text(), (ROOT / "environment.yml").read_text())
    assert not drift, "pyproject.toml and environment.yml disagree:\n" + "\n".join(drift)


def test_dependency_drift_is_detected():
    pyproject = (ROOT / "pyproject.toml").read_text()
    environment = (ROOT / "environment.yml").read_text()
    assert '"numpy>=1.26,<3"' in pyproject and "- scipy>=1.11" in environment and "- pytorch>=" in environment

    # A bound changed on one side only.
    drift = dependency_drift(pyproject.replace('"numpy>=1.26,<3"', '"numpy>=1.26,<2"'), environment)
    assert len(drift) == 1 and drift[0].startswith("numpy:")

    # A package missing on one side, and conda's pytorch read as pip's torch.
    drift = dependency_drift(pyproject, environment.replace("  - scipy>=1.11\n", ""))
    assert drift == ["scipy: in pyproject.toml (>=1.11) but not in environment.yml"]
    torch_line = next(line for line in environment.splitlines() if "pytorch" in line)
    drift = dependency_drift(pyproject, environment.replace(torch_line, torch_line.replace("pytorch", "torchx")))
    assert sorted(problem.split(":")[0] for problem in drift) == ["torch", "torchx"]

    # A python pin outside requires-python.
    drift = dependency_drift(pyproject, environment.replace("- python=3.11", "- python=3.9"))
    assert drift and drift[0].startswith("python:")


# --------------------------------------------------------------------------
# CI and the README


def test_ci_runs_exactly_the_readme_test_command():
    commands = readme_getting_started_commands((ROOT / "README.md").read_text())
    assert commands == ["make book", "make test"], commands
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert script_commands(text) == ["make test"]


def test_makefile_has_the_readme_targets():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:", makefile, re.M))
    for command in readme_getting_started_commands((ROOT / "README.md").read_text()):
        assert command.split()[0] == "make" and command.split()[1] in targets, command


def test_publishing_workflow_tests_builds_and_deploys_the_book():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert trigger["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]

    def steps(job):
        return jobs[job]["steps"]

    def runs(job):
        return [step["run"].strip() for step in steps(job) if "run" in step]

    def uses(job):
        return [step["uses"].split("@")[0] for step in steps(job) if "uses" in step]

    readme = readme_getting_started_commands((ROOT / "README.md").read_text())
    test_job = next(name for name in jobs if "make test" in runs(name))
    build_job = next(name for name in jobs if any(run.startswith("make book") for run in runs(name)))
    assert test_job != build_job, "tests and the book build run as separate jobs"
    assert "make test" in readme and any(run.startswith("make book") for run in runs(build_job))
    for job in (test_job, build_job):
        python = next(step for step in steps(job) if step.get("uses", "").startswith("actions/setup-python"))
        assert str(python["with"]["python-version"]) == "3.11"
    upload = next(step for step in steps(build_job) if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "book/_build/html"
    deploy_job = next(name for name in jobs if "actions/deploy-pages" in uses(name))
    assert set(jobs[deploy_job]["needs"]) == {test_job, build_job}
    assert jobs[deploy_job]["permissions"] == {"pages": "write", "id-token": "write"}


# --------------------------------------------------------------------------
# notebooks


def test_notebook_templates_have_no_outputs_a_parameters_cell_and_folded_code():
    folder = ROOT / "notebooks"
    assert folder.is_dir()
    problems = []
    for path in sorted(folder.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        name = path.relative_to(ROOT)
        tagged = [cell for cell in notebook.cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
        if len(tagged) != 1 or tagged[0].cell_type != "code":
            problems.append(f"{name}: needs exactly one code cell tagged 'parameters', has {len(tagged)}")
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            if cell.get("outputs"):
                problems.append(f"{name}: cell {index} has outputs")
            if cell.get("execution_count") is not None:
                problems.append(f"{name}: cell {index} has an execution count")
            if not HIDING_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                problems.append(f"{name}: code cell {index} is not folded in the book (tag it 'hide-input')")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# citation metadata


def test_citation_cff_cites_the_paper_and_describes_this_software():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "type", "version", "license", "repository-code"):
        assert citation.get(key), f"CITATION.cff lacks {key!r}"
    assert citation["type"] == "software"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert str(citation["version"]) == version, "CITATION.cff's version must follow pyproject.toml"
    assert citation["repository-code"].startswith("https://")

    paper = citation["preferred-citation"]
    assert paper["type"] == "article" and paper["journal"] == "Scientific Reports"
    assert paper["year"] == 2025 and paper["volume"] == 15 and paper["month"] == 5
    assert str(paper["date-published"]) == "2025-05-16"
    assert all(set(author) == {"family-names", "given-names"} for author in paper["authors"])

    # The same authors, in the same order, as the book's bibliography entry.
    bib = (ROOT / "book" / "references.bib").read_text()
    entry = re.search(r"@article\{han2025pd,(.*?)\n\}", bib, re.S).group(1)
    bib_authors = re.search(r"author\s*=\s*\{(.*?)\},\n", entry, re.S).group(1).split(" and ")
    assert [a["family-names"] + ", " + a["given-names"] for a in paper["authors"]] == bib_authors
    title = re.search(r"title\s*=\s*\{(.*?)\},\n", entry, re.S).group(1).replace("{", "").replace("}", "")
    assert " ".join(paper["title"].split()) == title


# --------------------------------------------------------------------------
# size


def test_no_file_in_git_is_over_5_mb():
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    # Tracked files, plus new files that git does not ignore (they are about to be committed).
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    too_big = []
    for name in filter(None, listed):
        path = ROOT / name
        if path.is_file() and not path.is_symlink() and path.stat().st_size > MAX_FILE_BYTES:
            too_big.append(f"{name} ({path.stat().st_size / 2**20:.1f} MiB)")
    assert listed and not too_big, f"files over 5 MB in git: {too_big}"


# --------------------------------------------------------------------------- the package's layout


def _pdlib_imports(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported pdlib module, inside a function) for every import statement of a module."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(sub) for sub in ast.walk(node) if sub is not node}
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pdlib":
            names = ([a.name for a in node.names] if node.module == "pdlib" else [node.module.split(".")[1]])
        elif isinstance(node, ast.Import):
            names = [a.name.split(".")[1] for a in node.names if a.name.startswith("pdlib.")]
        for name in names:
            if (path.parent / f"{name}.py").is_file():
                found.append((node.lineno, name, id(node) in inside))
    return found


#: pdlib imports inside a function body, each with the reason it is there
#: (a heavy dependency the importing module must not load for all callers).
LAZY_IMPORTS = {
    # the command line loads a stage only when its command is asked for (no torch for check-manifest)
    ("cli", "models"): "fetch-weights loads timm/torch only when asked",
    # planning a study (Snakefile parse, check-stale) must not load torch; running a member does
    ("pipeline", "infer"): "torch", ("pipeline", "models"): "torch", ("pipeline", "pretrain"): "torch",
    ("pipeline", "runs"): "torch", ("pipeline", "train"): "torch", ("pipeline", "slices"): "torch",
    ("pipeline", "twin"): "the twin generator (pydicom writer) only for sweep twins",
    # check-manifest stays light (no pydicom) unless it checks the studies' DICOM headers
    ("manifest", "dicom"): "pydicom only when check_manifest reads the DICOM headers of the study folders",
}


def test_modules_import_only_earlier_stages_and_the_data_flow_is_told_once():
    pdlib_dir = ROOT / "pdlib"
    order = [m for _, modules in pdlib.STAGES for m in modules]
    assert len(order) == len(set(order))
    on_disk = {p.stem for p in pdlib_dir.glob("*.py")} - {"__init__", "__main__"}
    assert on_disk == set(order), f"not in pdlib.STAGES: {sorted(on_disk - set(order))}; " \
                                  f"listed but absent: {sorted(set(order) - on_disk)}"
    problems = []
    for module in order:
        for line, name, lazy in _pdlib_imports(pdlib_dir / f"{module}.py"):
            if name != module and order.index(name) > order.index(module):
                problems.append(f"pdlib/{module}.py:{line} imports {name}, a later stage")
            if lazy and (module, name) not in LAZY_IMPORTS:
                problems.append(f"pdlib/{module}.py:{line} imports {name} inside a function")
    assert not problems, "\n".join(problems)
    # ARCHITECTURE.md lists the modules stage by stage in the same order
    text = (ROOT / "ARCHITECTURE.md").read_text()
    table = text[text.index("## Stages"):]
    positions = [table.find(f"`pdlib.{m}`") for m in order]
    assert -1 not in positions, [m for m, p in zip(order, positions) if p == -1]
    assert positions == sorted(positions), "ARCHITECTURE.md lists the modules in another order than pdlib.STAGES"

"""Provenance: what produced a result, and whether it is stale.

Every executed notebook and every run folder records a *stamp*::

    {"pdlib_version": ..., "git_commit": ..., "code_hash": ..., "code": {file: hash, ...},
     "manifest_hash": ..., "parameters": {...}}

A stamp covers only the code its result depends on, its *code scope*, so
that restyling a figure does not retrain a model:

1. The scope starts from *roots*: the ``pdlib`` modules a notebook template
   imports, or the function that trains a member
   (:func:`function_code_digests`, which also follows the same-module
   functions it calls).
2. :func:`import_closure` adds every ``pdlib`` module those roots import,
   transitively, wherever the import statement stands (module level or
   inside a function: the closure is conservative).
3. :func:`data_files_read` adds the package data files (``pdlib/data/*``)
   whose names appear in a module of the closure.
4. Each file is hashed on its own: Python files by the *meaning* of their
   source (:func:`source_hash`: the abstract syntax tree with docstrings
   removed, so comments, docstrings and formatting never make a result
   stale), data files byte for byte. The stamp keeps the per-file hashes
   (``code``), so a stale result names the files that changed, and their
   combined digest (``code_hash``).

Modules that only keep the pipeline's books (:data:`NOT_RESULT_CODE`:
provenance itself, the command line, the package's ``__init__`` that holds
the version) are never part of a scope. A result is stale when a file of its
scope changed, when its ``manifest_hash`` differs from the current one, or
when its parameters differ from the ones the pipeline would use now.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import subprocess
from pathlib import Path
from typing import Callable, Iterable, Mapping

import pdlib
from pdlib import paths

#: The package whose modules a scope follows.
PACKAGE = "pdlib"

#: Modules whose code does not influence any result (they only keep the
#: pipeline's books or hold the version string); never part of a code scope.
NOT_RESULT_CODE = frozenset({"provenance.py", "cli.py", "__main__.py", "__init__.py"})


def _package_dir(package_dir: str | Path | None) -> Path:
    return Path(package_dir) if package_dir is not None else Path(pdlib.__file__).parent


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def _node_hash(node: ast.AST) -> str:
    return hashlib.sha256(ast.dump(_strip_docstrings(node), annotate_fields=False).encode()).hexdigest()


#: Memo of per-file results keyed by (path, size, modification time): a
#: pipeline asks for the same scopes once per target.
_MEMO: dict[tuple, object] = {}


def _memo(kind: str, path: Path, compute):
    st = path.stat()
    key = (kind, str(path), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        _MEMO[key] = compute()
    return _MEMO[key]


def source_hash(path: str | Path) -> str:
    """sha256 of one Python file's syntax tree without docstrings or comments."""
    path = Path(path)
    return _memo("hash", path, lambda: _node_hash(ast.parse(path.read_text(encoding="utf-8"))))


# --------------------------------------------------------------------------- which files a result depends on


def module_file(name: str, package_dir: str | Path | None = None) -> Path | None:
    """The file of module ``name`` (``"pdlib.slices"``) inside the package, or None."""
    package_dir = _package_dir(package_dir)
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = package_dir.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py") if len(parts) > 1 else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir).with_suffix("")
    parts = [PACKAGE, *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(node: ast.AST, *, current: str, is_package: bool, package_dir: Path) -> dict[str, str]:
    """``{bound name: pdlib module}`` for every import statement inside ``node``.

    ``from pdlib.x import y`` binds ``y`` to ``pdlib.x`` (or to ``pdlib.x.y``
    when that is a module); relative imports are resolved against ``current``.
    """
    bound: dict[str, str] = {}
    package = current if is_package else current.rpartition(".")[0]
    for sub in ast.walk(node):
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                if alias.name.split(".")[0] == PACKAGE:
                    target = alias.name if alias.asname else PACKAGE
                    bound[alias.asname or PACKAGE] = target
                    bound.setdefault(f"<import {alias.name}>", alias.name)
        elif isinstance(sub, ast.ImportFrom):
            if sub.level:
                base = package.split(".")
                base = base[: len(base) - (sub.level - 1)] if sub.level > 1 else base
                source = ".".join(base + ([sub.module] if sub.module else []))
            else:
                source = sub.module or ""
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in sub.names:
                child = f"{source}.{alias.name}"
                bound[alias.asname or alias.name] = child if module_file(child, package_dir) else source
    return bound


def _modules_of(path: Path, package_dir: Path) -> set[str]:
    def compute():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        return set(_imported_modules(tree, current=_module_name(path, package_dir),
                                     is_package=path.name == "__init__.py", package_dir=package_dir).values())

    return _memo(f"imports:{package_dir}", path, compute)


def import_closure(roots: Iterable[str], package_dir: str | Path | None = None) -> list[Path]:
    """Files of the ``pdlib`` modules ``roots`` import, transitively, roots included.

    Parent packages of a module (``pdlib/x/__init__.py`` for ``pdlib.x.y``)
    are included, since importing a module runs them. Modules of
    :data:`NOT_RESULT_CODE` at the package's top are left out.
    """
    package_dir = _package_dir(package_dir)
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(2, len(parts)):  # parent packages below pdlib itself
            todo.append(".".join(parts[:i]))
        path = module_file(name, package_dir)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo.extend(_modules_of(path, package_dir))
    return sorted(p for p in seen if not (p.parent == package_dir and p.name in NOT_RESULT_CODE))


def data_files_read(files: Iterable[Path], package_dir: str | Path | None = None) -> list[Path]:
    """Package data files (``pdlib/data/*``) named in the source of ``files``."""
    data_dir = _package_dir(package_dir) / "data"
    if not data_dir.is_dir():
        return []
    sources = "\n".join(Path(f).read_text(encoding="utf-8") for f in files)
    return sorted(p for p in data_dir.iterdir() if p.is_file() and p.name in sources)


def _digests(files: Iterable[Path], package_dir: Path) -> dict[str, str]:
    files = list(files)
    out = {}
    for path in files:
        out[f"{PACKAGE}/{path.relative_to(package_dir).as_posix()}"] = source_hash(path)[:16]
    for path in data_files_read(files, package_dir):
        out[f"{PACKAGE}/{path.relative_to(package_dir).as_posix()}"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return dict(sorted(out.items()))


def module_code_digests(roots: Iterable[str], package_dir: str | Path | None = None) -> dict[str, str]:
    """``{file: hash}`` of the import closure of ``roots`` and the package data it reads."""
    package_dir = _package_dir(package_dir)
    return _digests(import_closure(roots, package_dir), package_dir)


def function_code_digests(func: Callable | str, package_dir: str | Path | None = None) -> dict[str, str]:
    """``{file: hash}`` of the code a ``pdlib`` function's computation reaches.

    ``func`` is the function, or ``"pdlib.module:function"`` looked up in
    ``package_dir`` (a copy of the package, in tests).

    The function's own source, and that of the same-module functions it
    calls (recorded as ``pdlib/<module>.py::<function>``), plus the import
    closure of every ``pdlib`` module it refers to, through the module's
    imports or its own. The rest of its module is not part of the scope, so
    the pipeline's planning code can change without retraining anything.
    """
    package_dir = _package_dir(package_dir).resolve()
    if isinstance(func, str):
        module, _, name = func.partition(":")
        path = module_file(module, package_dir)
        if path is None:
            raise ValueError(f"{func}: no module {module} in {package_dir}")
    else:
        path, name = Path(inspect.getsourcefile(func)).resolve(), func.__name__
    own, modules = _memo(f"function:{name}:{package_dir}", path,
                         lambda: _function_scope(path, name, package_dir))
    return dict(sorted({**module_code_digests(sorted(modules), package_dir), **own}.items()))


def _function_scope(path: Path, name: str, package_dir: Path) -> tuple[dict[str, str], set[str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    current = _module_name(path, package_dir)
    module_level = _imported_modules(
        ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[]),
        current=current, is_package=path.name == "__init__.py", package_dir=package_dir)
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if name not in defs:
        raise ValueError(f"{name} is not a top-level function of {path}")
    rel = f"{PACKAGE}/{path.relative_to(package_dir).as_posix()}"
    own, modules, todo = {}, set(), [name]
    while todo:
        name = todo.pop()
        if f"{rel}::{name}" in own or name not in defs:
            continue
        node = defs[name]
        own[f"{rel}::{name}"] = _node_hash(node)[:16]
        local = _imported_modules(node, current=current, is_package=False, package_dir=package_dir)
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        modules.update(local.values())
        modules.update(module_level[n] for n in used if n in module_level)
        todo.extend(n for n in used if n in defs)
    return own, modules


def notebook_modules(template: str | Path) -> list[str]:
    """The ``pdlib`` modules a notebook's code cells import."""
    import nbformat  # notebooks only; keeps this module light for training processes

    nb = nbformat.read(str(template), as_version=4)
    modules: set[str] = set()
    package_dir = _package_dir(None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse("\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        modules.update(_imported_modules(tree, current=PACKAGE, is_package=True, package_dir=package_dir).values())
    return sorted(modules)


def combine(digests: Mapping[str, str]) -> str:
    """One 16-hex digest of a ``{file: hash}`` scope."""
    return hashlib.sha256(json.dumps(dict(digests), sort_keys=True).encode()).hexdigest()[:16]


#: Where the training code starts: a member's weights depend on this module's
#: import closure (the run record of every member carries its digest).
TRAINING_ROOT = "pdlib.train"


def training_code_hash(package_dir: str | Path | None = None) -> str:
    """Digest of the training code: the import closure of :data:`TRAINING_ROOT` and the data it reads.

    Figures, statistics and report code are outside it, so changing them
    never retrains a member or a pretext run; chapters print it to say which
    code trained the models they show.
    """
    return combine(module_code_digests([TRAINING_ROOT], package_dir))


def code_hash(package_dir: str | Path | None = None) -> str:
    """Combined :func:`source_hash` of every module of ``pdlib`` that can change a result.

    The whole package, for labels (the twin generator and pretext runs use
    narrower scopes, stamps use :func:`function_code_digests` or
    :func:`module_code_digests`). Package data files are included byte for byte.
    """
    package_dir = _package_dir(package_dir)
    files = sorted(p for p in package_dir.rglob("*.py")
                   if "__pycache__" not in p.parts and not (p.parent == package_dir and p.name in NOT_RESULT_CODE))
    digests = {f"{PACKAGE}/{p.relative_to(package_dir).as_posix()}": source_hash(p)[:16] for p in files}
    data_dir = package_dir / "data"
    for path in sorted(data_dir.glob("*")) if data_dir.is_dir() else []:
        if path.is_file():
            digests[f"{PACKAGE}/data/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return combine(digests)


# --------------------------------------------------------------------------- manifests, commits, stamps


def file_hash(*files: str | Path) -> str:
    """sha256 over the bytes of the given files (in the given order)."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(Path(f).name.encode())
        digest.update(Path(f).read_bytes())
    return digest.hexdigest()[:16]


def manifest_hash(manifest_dir: str | Path) -> str:
    """Hash of a manifest folder's ``manifest.yaml`` and CSV tables."""
    folder = Path(manifest_dir)
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.csv")])
    if not files:
        raise FileNotFoundError(f"no manifest files (manifest.yaml, *.csv) in {folder}")
    return file_hash(*files)


def git_commit(repo: str | Path | None = None) -> str:
    """Current commit of the repository (with ``+dirty`` if modified), or ``"unknown"``."""
    repo = Path(repo) if repo is not None else paths.REPO_ROOT
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", "pdlib"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def make_stamp(*, manifest_dir: str | Path, code: Mapping[str, str], parameters: dict | None = None) -> dict:
    """The provenance record of a result produced now by the code scope ``code`` (``{file: hash}``)."""
    return {
        "pdlib_version": pdlib.__version__,
        "git_commit": git_commit(),
        "code_hash": combine(code),
        "code": dict(sorted(code.items())),
        "manifest_hash": manifest_hash(manifest_dir),
        "parameters": json.loads(json.dumps(parameters or {}, sort_keys=True, default=str)),
    }


def code_changes(recorded: Mapping[str, str] | None, current: Mapping[str, str]) -> list[str]:
    """Files of a code scope that changed, appeared or left since ``recorded`` (sorted)."""
    recorded = recorded or {}
    return sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))


def stale_reasons(stamp: dict, *, manifest_dir: str | Path, code: Mapping[str, str],
                  parameters: dict | None = None) -> list[str]:
    """Why a result with ``stamp`` is stale now; an empty list means it is current.

    Parameters
    ----------
    stamp : dict
        A record made by :func:`make_stamp` when the result was produced.
    manifest_dir : path
        The manifest the result should reflect.
    code : mapping
        The result's code scope now (``{file: hash}``).
    parameters : dict, optional
        The parameters the pipeline would use now; compared when given.
    """
    reasons = []
    if "code" not in stamp:
        reasons.append(f"code changed (result {stamp.get('code_hash')} predates per-file code scopes)")
    else:
        changed = code_changes(stamp["code"], code)
        if changed:
            shown = ", ".join(changed[:6]) + (f" and {len(changed) - 6} more" if len(changed) > 6 else "")
            reasons.append(f"code changed: {shown}")
    current = manifest_hash(manifest_dir)
    if stamp.get("manifest_hash") != current:
        reasons.append(f"manifest changed (result {stamp.get('manifest_hash')}, now {current})")
    if parameters is not None:
        now = json.loads(json.dumps(parameters, sort_keys=True, default=str))
        if stamp.get("parameters") != now:
            changed = sorted(
                k for k in set(now) | set(stamp.get("parameters", {}))
                if now.get(k) != stamp.get("parameters", {}).get(k)
            )
            reasons.append(f"parameters changed: {', '.join(changed)}")
    return reasons

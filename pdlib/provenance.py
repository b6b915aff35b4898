"""Provenance: what produced a result, and whether it is stale.

Every executed notebook and every run folder records a *stamp*::

    {"pdlib_version": ..., "git_commit": ..., "code_hash": ...,
     "manifest_hash": ..., "parameters": {...}}

``code_hash`` is a hash of the *meaning* of pdlib's source (the abstract
syntax tree with docstrings removed), so editing a comment, a docstring or the
formatting does not make results stale, while any change to what the code
does does. A result is stale when its recorded ``code_hash`` or
``manifest_hash`` differs from the current one, or when its parameters differ
from the ones the pipeline would use now.
"""

from __future__ import annotations

import ast
import hashlib
import json
import subprocess
from pathlib import Path

import pdlib
from pdlib import paths

#: Modules whose code does not influence any result (they only build the
#: pipeline's bookkeeping); excluded from the code hash.
_NOT_RESULT_CODE = {"provenance.py", "cli.py", "__main__.py"}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def source_hash(path: str | Path) -> str:
    """sha256 of one Python file's syntax tree without docstrings or comments."""
    tree = _strip_docstrings(ast.parse(Path(path).read_text(encoding="utf-8")))
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def code_hash(package_dir: str | Path | None = None) -> str:
    """Combined :func:`source_hash` of every module of ``pdlib`` that can change a result.

    Package data files (``pdlib/data/*``) are included byte for byte.
    """
    package_dir = Path(package_dir) if package_dir is not None else Path(pdlib.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        if path.name in _NOT_RESULT_CODE or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(source_hash(path).encode())
    for path in sorted((package_dir / "data").glob("*")) if (package_dir / "data").is_dir() else []:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


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


def make_stamp(*, manifest_dir: str | Path, parameters: dict | None = None) -> dict:
    """The provenance record of a result produced now."""
    return {
        "pdlib_version": pdlib.__version__,
        "git_commit": git_commit(),
        "code_hash": code_hash(),
        "manifest_hash": manifest_hash(manifest_dir),
        "parameters": json.loads(json.dumps(parameters or {}, sort_keys=True, default=str)),
    }


def stale_reasons(stamp: dict, *, manifest_dir: str | Path, parameters: dict | None = None) -> list[str]:
    """Why a result with ``stamp`` is stale now; an empty list means it is current.

    Parameters
    ----------
    stamp : dict
        A record made by :func:`make_stamp` when the result was produced.
    manifest_dir : path
        The manifest the result should reflect.
    parameters : dict, optional
        The parameters the pipeline would use now; compared when given.
    """
    reasons = []
    if stamp.get("code_hash") != code_hash():
        reasons.append(f"code changed (result {stamp.get('code_hash')}, now {code_hash()})")
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

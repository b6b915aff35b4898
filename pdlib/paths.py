"""Every folder the project reads or writes, named once.

Environment variables override the defaults so that a test, a CI job or a
cluster run can point a stage elsewhere without touching code:

``PDLIB_DATA``     root of generated data (the digital twin), default ``<repo>/data``
``PDLIB_RESULTS``  run artefacts (checkpoints, predictions, summaries), default ``<repo>/results``
``PDLIB_CACHE``    decoded-slice cache, default ``<repo>/cache``
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

#: Repository root (the folder holding ``pyproject.toml``) for an editable
#: install; the current directory otherwise.
REPO_ROOT = Path(__file__).resolve().parent.parent
if not (REPO_ROOT / "pyproject.toml").exists():  # installed as a wheel
    REPO_ROOT = Path.cwd()

#: Data shipped inside the package (paper numbers, schema, profiles).
PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def data_dir() -> Path:
    """Root of generated data; the default twin lives in ``data_dir() / "twin"``."""
    return _env_path("PDLIB_DATA", REPO_ROOT / "data")


def twin_dir() -> Path:
    """Folder of the default digital twin (DICOM studies, truth table, masks)."""
    return data_dir() / "twin"


def results_dir() -> Path:
    """Root of run artefacts: one sub-folder per run."""
    return _env_path("PDLIB_RESULTS", REPO_ROOT / "results")


def cache_dir() -> Path:
    """Decoded-slice cache (safe to delete; rebuilt on demand)."""
    return _env_path("PDLIB_CACHE", REPO_ROOT / "cache")


def manifest_dir() -> Path:
    """The cohort manifest a user edits for their own data."""
    return REPO_ROOT / "data_manifest"


def book_dir() -> Path:
    """The Jupyter Book source folder."""
    return REPO_ROOT / "book"


def notebooks_dir() -> Path:
    """Notebook templates (no outputs) executed by papermill."""
    return REPO_ROOT / "notebooks"


def seed_dir(results: str | os.PathLike, seed: int) -> Path:
    """Folder shared by every arm trained with ``seed`` (``<results>/seed<seed>``)."""
    return Path(results) / f"seed{int(seed)}"


def member_dir(results: str | os.PathLike, seed: int, key: str) -> Path:
    """Run folder of one member, ``<results>/seed<seed>/<member key>`` (see ``ARCHITECTURE.md``, "Run folder")."""
    return seed_dir(results, seed) / key


def oof_fold_dir(out_dir: str | os.PathLike, *, n_folds: int, fold: int) -> Path:
    """Folder of the members trained on fold ``fold`` of ``n_folds``: ``<out_dir>/oof/k<n>-fold<f>/``.

    ``out_dir`` is a seed's folder (:func:`seed_dir`); a fold's chain keeps
    the member keys of the full-data chain inside it.
    """
    return Path(out_dir) / "oof" / f"k{int(n_folds)}-fold{int(fold)}"


def read_yaml(path: str | os.PathLike, *, what: str):
    """The YAML document of a data file (``what`` names it in errors).

    Raises
    ------
    ValueError
        Naming the file when it is missing or not valid YAML.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{what} file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{what} file {path} is not valid YAML: {err}") from None

"""Serve MathJax from the built book, so that equations render with no network.

Sphinx loads MathJax from a CDN by default; a reader offline (or a browser
test with the network off) then sees raw TeX. This extension copies MathJax 3
from the installed PyPI package ``django-static-mathjax`` (the ``book`` extra
of pdlib; ``make setup`` installs it) into ``_static/mathjax/`` of every HTML
build, and checks that ``mathjax_path`` (set in ``_config.yml``) names a file
of that copy, never a network address.

Only what the book can load is copied (about 9 MB of the package's 35): the
combined TeX and MathML input with CommonHTML output, the TeX extensions it
loads on demand, its web fonts, and the menu and accessibility components a
reader can switch on.
"""

from __future__ import annotations

import importlib.resources
import shutil
from pathlib import Path, PurePosixPath

from sphinx.application import Sphinx
from sphinx.errors import ConfigError, ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Folder of the copy, under the build's ``_static``.
STATIC_FOLDER = "mathjax"

#: Parts of MathJax's ``es5`` folder that the book needs (files and folders).
PARTS = (
    "tex-mml-chtml.js",
    "input",
    "output/chtml",
    "ui",
    "a11y",
    "sre",
    "adaptors",
)

#: Where the PyPI package keeps MathJax's build, inside its import package.
PACKAGE, PACKAGE_PATH = "mathjax", ("static", "mathjax", "es5")


def mathjax_source() -> Path:
    """MathJax's ``es5`` folder in the installed package.

    Raises
    ------
    ExtensionError
        When the package is not installed or does not hold MathJax 3.
    """
    try:
        root = importlib.resources.files(PACKAGE)
    except ModuleNotFoundError:
        root = None
    source = Path(str(root)).joinpath(*PACKAGE_PATH) if root is not None else None
    if source is None or not (source / "tex-mml-chtml.js").is_file():
        raise ExtensionError(
            "offline_mathjax: MathJax 3 is not installed (no mathjax/static/mathjax/es5/tex-mml-chtml.js): "
            "install pdlib's book extra, pip install -c constraints.txt -e '.[book]' (make setup does)"
        )
    return source


def check_mathjax_path(app: Sphinx, config) -> None:
    """``mathjax_path`` must name a file of the local copy, relative to ``_static``."""
    path = str(config.mathjax_path or "")
    if "://" in path or path.startswith("//"):
        raise ConfigError(
            f"offline_mathjax: mathjax_path is the network address {path!r}; the book serves MathJax "
            f"itself, set mathjax_path to '{STATIC_FOLDER}/tex-mml-chtml.js' in _config.yml"
        )
    relative = PurePosixPath(path)
    if not relative.parts or relative.parts[0] != STATIC_FOLDER:
        raise ConfigError(f"offline_mathjax: mathjax_path {path!r} is not under _static/{STATIC_FOLDER}/")
    inside = PurePosixPath(*relative.parts[1:]).as_posix()
    if not (mathjax_source() / inside).is_file():
        raise ConfigError(f"offline_mathjax: mathjax_path {path!r}: MathJax has no file {inside!r}")


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Copy :data:`PARTS` of MathJax into ``<outdir>/_static/mathjax/`` after an HTML build."""
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / STATIC_FOLDER
    for part in PARTS:
        origin, destination = source / part, target / part
        if origin.is_dir():
            shutil.copytree(origin, destination, dirs_exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, destination)
    licence = source.parent / "LICENSE"
    if licence.is_file():
        shutil.copy2(licence, target / "LICENSE")
    logger.info(f"offline_mathjax: MathJax copied to {target}")


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", check_mathjax_path)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

"""Serve a built book on 127.0.0.1 and check its pages in a headless Chromium.

Usage::

    python tools/serve_book.py [HTML_DIR] [--port PORT]
        Serve HTML_DIR (default book/_build/html) until Ctrl-C, to read the
        book as GitHub Pages will show it.

    python tools/serve_book.py [HTML_DIR] --check [--screenshots DIR]
        Open every page in headless Chromium at 1,280 px, save a full-page
        screenshot of each, print what is wrong and exit 1 if anything is:
        a page that does not load, a broken image, a table that is not
        displayed, a JavaScript error, an equation not typeset, a request
        off the local server, a link to a missing page or anchor, a table or
        figure wider than the text column, a figure without a numbered
        caption, a Python repr or snake_case identifier in the text.

The browser is Chromium driven by the ``playwright`` package, launched from
``$PDSTUDY_CHROMIUM`` or ``/usr/bin/chromium``: playwright never downloads a
browser of its own here (``tools/ensure-chromium.sh`` installs Debian's).
Requests that leave the local server are refused and recorded, so a check
needs no network and gives the same result offline. The book serves MathJax
itself (``_static/mathjax/``), so equations are typeset all the same.

``tests/test_browser_book.py`` uses :func:`serve`, :func:`check_pages` and
:func:`link_problems` on the committed book, ``tests/test_browser_chapters.py``
on the book of a smoke study.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import re
import sys
import threading
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

#: Where Debian (and tools/ensure-chromium.sh) puts Chromium.
DEFAULT_CHROMIUM = "/usr/bin/chromium"

#: Environment variable naming another Chromium/Chrome binary.
CHROMIUM_ENV = "PDSTUDY_CHROMIUM"

#: Command-line switches for a quiet, sandbox-free headless browser that
#: makes no background connections (updates, sync, QUIC probes).
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Folders of a Sphinx HTML build that hold assets, not pages.
_NOT_PAGES = ("_static", "_sources", "_images", "_sphinx_design_static", "_panels_static")

#: Collects every <img> (after forcing lazy ones to load) and every <table>
#: with whether it is displayed; tables inside a closed <details> or a folded
#: toggle are counted apart, since they are hidden on purpose.
_INSPECT_JS = """
async () => {
  const images = Array.from(document.images);
  images.forEach((img) => { img.loading = "eager"; });
  const settle = (img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done, { once: true });
    img.addEventListener("error", done, { once: true });
  });
  await Promise.race([
    Promise.all(images.map(settle)),
    new Promise((done) => setTimeout(done, 10000)),
  ]);
  const tables = Array.from(document.querySelectorAll("table")).map((table) => {
    const folded = table.closest("details:not([open])") !== null
      || table.closest(".toggle-hidden, .tag_hide-output .cell_output") !== null;
    const box = table.getBoundingClientRect();
    const style = getComputedStyle(table);
    return {
      folded: folded,
      shown: box.width > 0 && box.height > 0 && style.visibility !== "hidden",
      cells: table.querySelectorAll("td, th").length,
    };
  });
  return {
    images: images.map((img) => ({
      src: img.getAttribute("src") || "", width: img.naturalWidth })),
    tables: tables,
  };
}
"""

#: What a reader of the page sees, once MathJax (if the page loads it) has
#: typeset its equations: the article's text outside code, math and folded
#: parts; raw TeX left in it; tables and figures wider than the article;
#: content images without a numbered caption; and every link's target.
_READ_JS = """
async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, new Promise((done) => setTimeout(done, 15000))]);
  }
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const folded = (node) => node.closest("details:not([open])") !== null
    || node.closest(".toggle-hidden, .tag_hide-output .cell_output") !== null;
  const clone = article.cloneNode(true);
  clone.querySelectorAll(
    "pre, code, kbd, samp, .highlight, mjx-container, .math, script, style, .headerlink, "
    + "details:not([open]), .toggle-hidden, .cell_input, a.reference.external"
  ).forEach((node) => node.replaceWith(" "));
  const mathBoxes = Array.from(article.querySelectorAll(".math"));
  // The text column: the article's box less its padding.
  const outer = article.getBoundingClientRect();
  const style = getComputedStyle(article);
  const area = {
    left: outer.left + parseFloat(style.paddingLeft), right: outer.right - parseFloat(style.paddingRight) };
  area.width = area.right - area.left;
  const name = (node) => {
    const caption = node.closest("figure, table")?.querySelector("figcaption, caption");
    const label = caption ? caption.textContent.trim().slice(0, 60) : "";
    return node.tagName.toLowerCase() + (node.id ? "#" + node.id : "")
      + (node.getAttribute("src") ? " " + node.getAttribute("src").split("/").pop() : "")
      + (label ? " '" + label + "'" : "");
  };
  const wide = [];
  article.querySelectorAll("table, img, svg, figure, .cell_output .output").forEach((node) => {
    if (folded(node) || node.closest("mjx-container")) return;
    const box = node.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) return;
    if (box.right > area.right + 1 || box.left < area.left - 1) {
      wide.push(name(node) + ": " + Math.round(box.width) + " px wide, the text column " + Math.round(area.width) + " px");
    }
  });
  // Display equations scroll inside their box instead of widening the page.
  article.querySelectorAll("div.math, mjx-container[display='true']").forEach((node) => {
    if (folded(node) || node.clientWidth === 0) return;
    if (node.scrollWidth > node.clientWidth + 1) {
      const label = (node.closest("div.math")?.id || node.closest("[id]")?.id || "");
      wide.push("equation" + (label ? "#" + label : "") + ": " + node.scrollWidth + " px wide, "
        + node.clientWidth + " px shown");
    }
  });
  const uncaptioned = [];
  article.querySelectorAll("img").forEach((img) => {
    if (folded(img)) return;
    const figure = img.closest("figure");
    const number = figure ? figure.querySelector("figcaption .caption-number") : null;
    if (number === null || !/\\d/.test(number.textContent)) uncaptioned.push(name(img));
  });
  return {
    text: clone.innerText,
    math: mathBoxes.length,
    typeset: article.querySelectorAll("mjx-container").length,
    mathjax: !!(window.MathJax && MathJax.version),
    wide: wide,
    uncaptioned: uncaptioned,
    pageWidth: document.documentElement.scrollWidth,
    links: Array.from(document.querySelectorAll("a[href]")).map((a) => a.href),
  };
}
"""

#: Raw TeX that a typeset page does not show.
RAW_TEX = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\(?:frac|begin|end|text|mathcal|sum|left|right)\b")

#: Python objects printed instead of formatted: dicts, lists of quoted
#: strings, reprs of numpy and pandas values, NaN, <object at 0x...>.
PYTHON_REPR = re.compile(
    r"\{'[^']*':|\['[^']*',|\b(?:np|numpy)\.\w+\(|\barray\(\[|\bdtype[:=]|\bTimestamp\(|<\w[\w.]* object at 0x"
    r"|\bNaN\b|\bnan\b|(?:^|(?<=[\t(\[{,:=])|(?<=[(\[{,:=] ))(?:None|True|False)(?=$|[\t,)\]}])",
    re.M,
)

#: snake_case identifiers (two or more lower-case words joined by "_").
SNAKE_CASE = re.compile(r"(?<![\w./-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/-]|\.\w)")


def chromium_executable() -> str | None:
    """Path of the Chromium binary to use, or None when there is none.

    ``$PDSTUDY_CHROMIUM`` when it names an executable file, else
    :data:`DEFAULT_CHROMIUM` when that exists.
    """
    for candidate in (os.environ.get(CHROMIUM_ENV, ""), DEFAULT_CHROMIUM):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A browser that leaves a page drops the connections it no longer
        # needs; that is not an error of the book.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


#: <meta http-equiv="refresh" content="0; url=intro.html"> (Jupyter Book's index.html)
_REFRESH = re.compile(r"""<meta\s+http-equiv=["']refresh["']\s+content=["'][^"']*url=([^"']+)["']""", re.I)


def redirect_target(page_file: str | os.PathLike) -> str | None:
    """Target of an HTML page that only redirects (meta refresh), else None."""
    match = _REFRESH.search(Path(page_file).read_text(encoding="utf-8", errors="replace"))
    return match.group(1).strip() if match else None


@contextmanager
def serve(html_dir: str | os.PathLike, *, port: int = 0) -> Iterator[str]:
    """Serve ``html_dir`` over HTTP on 127.0.0.1 in a background thread.

    Parameters
    ----------
    html_dir : path
        Folder of a built HTML book.
    port : int, default 0
        TCP port; 0 picks a free one.

    Yields
    ------
    base_url : str
        ``http://127.0.0.1:<port>/``; the server stops when the block exits.
    """
    root = Path(html_dir)
    if not (root / "index.html").is_file():
        raise FileNotFoundError(f"{root} is not a built book: it has no index.html")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _QuietServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, name="serve-book", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def html_pages(html_dir: str | os.PathLike) -> list[str]:
    """Relative paths (POSIX style, sorted) of the HTML pages of a build."""
    root = Path(html_dir)
    pages = []
    for path in root.rglob("*.html"):
        relative = path.relative_to(root)
        if relative.parts[0] in _NOT_PAGES:
            continue
        pages.append(relative.as_posix())
    return sorted(pages)


@dataclass
class PageReport:
    """What a browser saw on one page.

    Attributes
    ----------
    page : str
        Path of the page relative to the HTML folder.
    status : int or None
        HTTP status of the page (None if it did not load).
    redirected_to : str or None
        For a page that only redirects (meta refresh), where it led; the
        rest of the report describes that target.
    images : list of (src, natural_width)
        Every ``<img>`` of the page; a width of 0 means the image is broken.
    tables : int
        Number of ``<table>`` elements outside folded parts.
    hidden_tables : int
        How many of those are not displayed (zero size or invisible).
    empty_tables : int
        How many of those have no cell.
    page_errors : list of str
        Uncaught JavaScript errors.
    screenshot : Path or None
        Full-page PNG, when a screenshot folder was given.
    text : str
        The article's text as a reader sees it, without code, math, folded
        parts and external link texts (URLs); equations are typeset first.
    math, typeset : int
        Equations in the page's source (``.math`` elements) and equations
        MathJax has typeset.
    mathjax_loaded : bool
        Whether MathJax ran on the page.
    external_requests : list of str
        Requests for anything not on the local server (all refused).
    wide : list of str
        Tables, figures and images reaching out of the article's column.
    page_width : int
        Scroll width of the whole page, in CSS pixels.
    uncaptioned_figures : list of str
        Content images that are not in a figure with a numbered caption.
    links : list of str
        Target of every ``<a href>`` of the page: a path relative to the
        HTML folder (with its #fragment) for the book's own pages, else the
        absolute URL.
    """

    page: str
    status: int | None
    redirected_to: str | None = None
    images: list[tuple[str, int]] = field(default_factory=list)
    tables: int = 0
    hidden_tables: int = 0
    empty_tables: int = 0
    page_errors: list[str] = field(default_factory=list)
    screenshot: Path | None = None
    text: str = ""
    math: int = 0
    typeset: int = 0
    mathjax_loaded: bool = False
    external_requests: list[str] = field(default_factory=list)
    wide: list[str] = field(default_factory=list)
    page_width: int = 0
    uncaptioned_figures: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def broken_images(self) -> list[str]:
        """``src`` of every image that did not load."""
        return [src for src, width in self.images if width <= 0]

    @property
    def problems(self) -> list[str]:
        """Human-readable list of what is wrong on the page (empty if nothing)."""
        found = []
        if self.status != 200:
            found.append(f"{self.page}: HTTP status {self.status}")
        found += [f"{self.page}: broken image {src!r}" for src in self.broken_images]
        if self.hidden_tables:
            found.append(f"{self.page}: {self.hidden_tables} of {self.tables} tables not displayed")
        if self.empty_tables:
            found.append(f"{self.page}: {self.empty_tables} of {self.tables} tables without cells")
        found += [f"{self.page}: JavaScript error {error}" for error in self.page_errors]
        return found

    @property
    def math_problems(self) -> list[str]:
        """Equations not typeset, raw TeX in the text, requests off the local server."""
        found = []
        if self.math and self.typeset < self.math:
            found.append(f"{self.page}: {self.math - self.typeset} of {self.math} equations not typeset "
                         f"(MathJax {'ran' if self.mathjax_loaded else 'did not run'})")
        for match in sorted({m.group(0) for m in RAW_TEX.finditer(self.text)}):
            found.append(f"{self.page}: raw TeX {match!r} in the text: {_around(self.text, match)}")
        found += [f"{self.page}: requested {url} (not on the local server)" for url in self.external_requests]
        return found

    def overflow_problems(self, viewport_width: int) -> list[str]:
        """Tables and figures wider than the article's column, or a page wider than the window."""
        found = [f"{self.page}: {item}" for item in self.wide]
        if self.page_width > viewport_width:
            found.append(f"{self.page}: the page is {self.page_width} px wide in a {viewport_width} px window")
        return found

    @property
    def caption_problems(self) -> list[str]:
        """Figures without a numbered caption."""
        return [f"{self.page}: figure without a numbered caption: {item}" for item in self.uncaptioned_figures]

    @property
    def text_problems(self) -> list[str]:
        """Python reprs and snake_case identifiers in the text a reader sees."""
        found = []
        for kind, pattern in (("Python repr", PYTHON_REPR), ("snake_case identifier", SNAKE_CASE)):
            for match in sorted({m.group(0) for m in pattern.finditer(self.text)}):
                found.append(f"{self.page}: {kind} {match!r}: {_around(self.text, match)}")
        return found


def _around(text: str, match: str, width: int = 40) -> str:
    """The first occurrence of ``match`` in ``text`` with some context, on one line."""
    at = text.find(match)
    return "..." + " ".join(text[max(0, at - width): at + len(match) + width].split()) + "..."


def link_problems(html_dir: str | os.PathLike, reports: list[PageReport]) -> list[str]:
    """Links between pages of the build that lead nowhere.

    A link resolves when it leads to a file of ``html_dir`` and, if it has a
    fragment, that page has an element with that id. Links that leave the
    local server (DOIs, the repository) are not followed.
    """
    root = Path(html_dir)
    ids: dict[Path, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            text = path.read_text(encoding="utf-8", errors="replace") if path.suffix == ".html" else ""
            ids[path] = set(re.findall(r"""\bid=["']([^"']+)["']""", text))
        return ids[path]

    found = []
    for report in reports:
        for url in sorted(set(report.links)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):  # another server, mailto:, javascript:
                continue
            target, _, fragment = url.partition("#")
            target = urllib.parse.unquote(target.split("?")[0]) or "index.html"
            path = root / target
            if path.is_dir():
                path = path / "index.html"
            if not path.is_file():
                found.append(f"{report.page}: link to {target} (no such file)")
            elif fragment and urllib.parse.unquote(fragment) not in anchors(path):
                found.append(f"{report.page}: link to {target}#{fragment} (no such anchor)")
    return found


def _screenshot_name(page: str) -> str:
    return page.replace("/", "__").removesuffix(".html") + ".png"


def check_pages(
    html_dir: str | os.PathLike,
    *,
    executable: str,
    screenshot_dir: str | os.PathLike | None = None,
    pages: list[str] | None = None,
    viewport: tuple[int, int] = (1280, 900),
) -> list[PageReport]:
    """Open pages of a built book in headless Chromium and report what it shows.

    Parameters
    ----------
    html_dir : path
        Folder of a built HTML book, served on 127.0.0.1 for the check.
    executable : str
        Chromium or Chrome binary (see :func:`chromium_executable`).
    screenshot_dir : path, optional
        Folder for one full-page PNG per page (created if needed).
    pages : list of str, optional
        Pages to open, relative to ``html_dir``; default every page
        (:func:`html_pages`).
    viewport : (int, int), default (1280, 900)
        Browser window size in CSS pixels.

    Returns
    -------
    reports : list of PageReport
        One per page, in the order opened.
    """
    from playwright.sync_api import sync_playwright

    pages = html_pages(html_dir) if pages is None else list(pages)
    shots = Path(screenshot_dir) if screenshot_dir is not None else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    reports = []
    with serve(html_dir) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=list(CHROMIUM_ARGS))
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})

            refused: list[str] = []

            def local_only(route):
                if route.request.url.startswith(base_url):
                    route.continue_()
                else:
                    refused.append(route.request.url)
                    route.abort()

            context.route("**/*", local_only)
            for name in pages:
                tab = context.new_page()
                errors: list[str] = []
                refused.clear()
                tab.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
                response = tab.goto(base_url + name, wait_until="load")
                report = PageReport(page=name, status=response.status if response is not None else None)
                target = redirect_target(Path(html_dir) / name)
                if target is not None:
                    tab.wait_for_url(base_url + target, wait_until="load")
                    report.redirected_to = target
                seen = tab.evaluate(_INSPECT_JS)
                report.images = [(image["src"], int(image["width"])) for image in seen["images"]]
                displayed = [table for table in seen["tables"] if not table["folded"]]
                report.tables = len(displayed)
                report.hidden_tables = sum(not table["shown"] for table in displayed)
                report.empty_tables = sum(table["cells"] == 0 for table in displayed)
                read = tab.evaluate(_READ_JS)
                report.text = read["text"]
                report.math, report.typeset = int(read["math"]), int(read["typeset"])
                report.mathjax_loaded = bool(read["mathjax"])
                report.wide = list(read["wide"])
                report.page_width = int(read["pageWidth"])
                report.uncaptioned_figures = list(read["uncaptioned"])
                report.links = [url[len(base_url):] if url.startswith(base_url) else url for url in read["links"]]
                if shots is not None:
                    report.screenshot = shots / _screenshot_name(name)
                    tab.screenshot(path=str(report.screenshot), full_page=True)
                report.page_errors = list(errors)
                report.external_requests = sorted(set(refused))
                reports.append(report)
                tab.close()
            context.close()
        finally:
            browser.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", default="book/_build/html", help="built book (default book/_build/html)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--check", action="store_true", help="check every page in headless Chromium and exit")
    parser.add_argument("--screenshots", default="test-output/screenshots", help="screenshot folder for --check")
    args = parser.parse_args(argv)
    if args.check:
        executable = chromium_executable()
        if executable is None:
            print(f"no Chromium: set {CHROMIUM_ENV} or run tools/ensure-chromium.sh", file=sys.stderr)
            return 2
        reports = check_pages(args.html_dir, executable=executable, screenshot_dir=args.screenshots)
        problems = [problem for report in reports for problem in (
            report.problems + report.math_problems + report.overflow_problems(1280)
            + report.caption_problems + report.text_problems)]
        problems += link_problems(args.html_dir, reports)
        for problem in problems:
            print(problem)
        print(f"{len(reports)} pages checked, {len(problems)} problem(s); screenshots in {args.screenshots}")
        return 1 if problems else 0
    with serve(args.html_dir, port=args.port) as url:
        print(f"serving {args.html_dir} at {url} (Ctrl-C to stop)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The committed book as a reader sees it: every page in headless Chromium.

The book built by ``tests/test_book.py`` (prose pages and the reference
run's chapters, ``book/runs/``) is served on 127.0.0.1 and every page is
opened at 1,280 x 900 px with every request off the local server refused,
as with no network (``tools/serve_book.py``). Rules, each a test:

- every page loads, with no broken image, no hidden or empty table and no
  JavaScript error;
- equations are typeset (MathJax is served by the book itself) and no raw
  TeX is left in the text;
- every link between pages leads to an existing page and anchor;
- no table or figure is wider than the text column;
- every figure has a numbered caption;
- no Python repr (a dict, ``NaN``, ``None``) and no snake_case identifier in
  the text a reader sees (code, math and folded cells aside).

A rule that chapters of the committed reference run break today, and that
the chapter templates of issue 12 are to fix, lists those pages in
:data:`KNOWN`: the test is then an expected failure naming the pages that
still fail, and fails outright for any other page. Screenshots of every page
go to ``test-output/screenshots/book/`` (ignored by git).
"""

from __future__ import annotations

import shutil
import sys
import zlib
from pathlib import Path

import pytest

from pdlib import pipeline

from test_book import PROSE_PAGES, committed_book

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import serve_book  # noqa: E402

SCREENSHOTS = ROOT / "test-output" / "screenshots" / "book"

#: Browser window, in CSS pixels.
VIEWPORT = (1280, 900)

_BASELINES = tuple(f"runs/baselines/{Path(pipeline.baseline_page(arm)).stem}.html"
                   for arm in pipeline.BASELINE_ORDER)

#: Pages of the committed reference run that break a rule, measured on the
#: run committed before the chapter templates of issue 12 were restructured.
KNOWN: dict[str, tuple[str, ...]] = {}

#: What each rule is about, for the expected-failure reason.
_WHY = {
    "overflow": "raw pandas tables wider than the 688 px text column at 1,280 px",
    "captions": "figures shown as bare notebook outputs, without a numbered caption",
    "text": "raw DataFrame headers (snake_case), NaN and Python dicts in generated tables and sentences",
}


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = serve_book.chromium_executable()
    if executable is None:
        pytest.skip(
            f"no Chromium at {serve_book.DEFAULT_CHROMIUM} and ${serve_book.CHROMIUM_ENV} unset: "
            "run tools/ensure-chromium.sh (make test does) to install it"
        )
    pytest.importorskip("playwright.sync_api")
    return executable


@pytest.fixture(scope="module")
def book_html(tmp_path_factory) -> Path:
    html_dir, returncode, output = committed_book(tmp_path_factory.getbasetemp() / "committed-book")
    assert returncode == 0 and "build succeeded" in output, output[-6000:]
    return html_dir


@pytest.fixture(scope="module")
def reports(book_html, chromium) -> dict[str, serve_book.PageReport]:
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    found = serve_book.check_pages(book_html, executable=chromium, screenshot_dir=SCREENSHOTS, viewport=VIEWPORT)
    return {report.page: report for report in found}


def _judge(rule: str, problems: list[str]) -> None:
    """Fail on problems of pages outside KNOWN[rule]; an expected failure naming the known pages left."""
    known = set(KNOWN.get(rule, ()))
    unexpected = [problem for problem in problems if problem.split(":")[0] not in known]
    assert not unexpected, "\n".join(unexpected)
    failing = sorted({problem.split(":")[0] for problem in problems})
    if failing:
        pytest.xfail(f"issue 12, chapter templates: {_WHY[rule]} on {len(failing)} committed pages: "
                     + ", ".join(failing) + "\n" + "\n".join(problems))


# --------------------------------------------------------------------------
# the checker itself, on pages made to break each rule


def _png_1x1() -> bytes:
    """A valid 1 x 1 grey PNG, written from the format's definition."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")


def test_the_checker_catches_every_rule(tmp_path, chromium):
    (tmp_path / "good.png").write_bytes(_png_1x1())
    (tmp_path / "index.html").write_text(
        "<html><body><article class='bd-article' style='width:600px;padding:0 20px'>"
        "<p>Numbers: {'GR': 73, 'PR': 39}, AUC NaN; setting youden_train_resubstitution;"
        " a file truth.csv, <code>pdlib.train_member</code> in code, None of these words.</p>"
        "<p>Raw TeX: $$x = \\frac{1}{2}$$</p>"
        '<figure><img src="good.png"><figcaption><p><span class="caption-number">Fig. 1 </span>'
        "A caption.</p></figcaption></figure>"
        '<img src="good.png"><img src="missing.png"><img src="http://example.invalid/remote.png">'
        "<table><tr><td>shown</td></tr></table>"
        '<table style="width:900px"><tr><td>too wide</td></tr></table>'
        '<table style="display:none"><tr><td>hidden by mistake</td></tr></table>'
        "<details><summary>more</summary><table style='width:2000px'><tr><td>folded on purpose</td></tr>"
        "</table></details>"
        '<a href="index.html#there">here</a> <a href="index.html#nowhere">dangling</a>'
        '<a href="gone.html">gone</a> <a href="https://doi.org/10.1/x">out</a><span id="there"></span>'
        "</article></body></html>"
    )
    (tmp_path / "broken.html").write_text("<html><body><p>x</p><script>notDefinedAnywhere();</script></body></html>")
    reports = {r.page: r for r in serve_book.check_pages(tmp_path, executable=chromium, viewport=VIEWPORT)}
    assert sorted(reports) == ["broken.html", "index.html"]
    index = reports["index.html"]
    assert index.status == 200
    assert index.broken_images == ["missing.png", "http://example.invalid/remote.png"]
    assert (index.tables, index.hidden_tables, index.empty_tables) == (3, 1, 0)
    assert index.external_requests == ["http://example.invalid/remote.png"]
    assert [p.split(": ", 1)[1][:8] for p in index.math_problems] == ["raw TeX ", "raw TeX ", "requeste"]
    overflow = index.overflow_problems(VIEWPORT[0])
    assert len(overflow) == 1 and "900 px wide" in overflow[0] and "600 px" in overflow[0]
    # The captioned figure passes; the two bare images (one broken) and the remote one do not.
    assert len(index.caption_problems) == 3
    flagged = [problem.split(": ")[1] for problem in index.text_problems]
    assert sorted(flagged) == ['Python repr "{\'GR\':"', "Python repr 'NaN'",
                               "snake_case identifier 'youden_train_resubstitution'"]
    links = serve_book.link_problems(tmp_path, list(reports.values()))
    assert links == ["index.html: link to gone.html (no such file)",
                     "index.html: link to index.html#nowhere (no such anchor)"]
    assert reports["broken.html"].page_errors and "notDefinedAnywhere" in reports["broken.html"].page_errors[0]


# --------------------------------------------------------------------------
# the committed book


def test_every_page_loads_and_is_screenshot(reports, book_html):
    assert set(reports) == set(serve_book.html_pages(book_html)) >= {f"{page}.html" for page in PROSE_PAGES}
    assert any(page.startswith("runs/baselines/") for page in reports)
    problems = [problem for report in reports.values() for problem in report.problems]
    assert not problems, "\n".join(problems)
    assert reports["index.html"].redirected_to == "intro.html"
    for page in ("methods.html", "limitations.html", "reproducing.html"):
        assert reports[page].tables >= 1, f"{page} shows no table"
    for report in reports.values():
        assert report.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", report.page


def test_equations_are_typeset_with_no_network(reports):
    problems = [problem for report in reports.values() for problem in report.math_problems]
    assert not problems, "\n".join(problems)
    methods = reports["methods.html"]
    # Three numbered equations, the Youden index and the symbols of the prose.
    assert methods.mathjax_loaded and methods.math >= 30 and methods.typeset == methods.math
    assert "J = sensitivity + specificity" not in methods.text  # typeset, so not left as plain words


def test_every_link_between_pages_resolves(reports, book_html):
    problems = serve_book.link_problems(book_html, list(reports.values()))
    assert not problems, "\n".join(problems)
    linked = {link.split("#")[0] for report in reports.values() for link in report.links}
    assert {"bibliography.html", "methods.html", "runs/09_audit.html", "runs/11_sweep.html"} <= linked


def test_no_table_or_figure_is_wider_than_the_text_column(reports):
    _judge("overflow", [p for report in reports.values() for p in report.overflow_problems(VIEWPORT[0])])


def test_every_figure_has_a_numbered_caption(reports):
    _judge("captions", [p for report in reports.values() for p in report.caption_problems])


def test_no_python_repr_or_snake_case_identifier_in_the_text(reports):
    _judge("text", [p for report in reports.values() for p in report.text_problems])

"""Every chapter of the built study opens in headless Chromium.

``tests/test_browser_book.py`` checks the committed book page by page; this
test opens every page of the *whole* smoke study built by
``tests/test_pipeline.py`` (same session, built once): results chapters,
baseline pages, audit and checklist. Each page must load, show no broken
image and no hidden or empty table, and raise no script error; equations
must be typeset with no network and every link between pages must resolve;
figures must be real images; the chapters that regenerate the paper's tables
must show tables. Screenshots are saved under
``test-output/screenshots/chapters/`` for a person to look at.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from test_pipeline import smoke_study

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import serve_book  # noqa: E402

SCREENSHOTS = ROOT / "test-output" / "screenshots" / "chapters"

#: Chapters whose page must show at least one figure / one table.
WITH_FIGURES = ("01_cohort", "04_pd", "06_results", "07_clinicians", "08_heatmaps")
WITH_TABLES = ("01_cohort", "03_kd", "04_pd", "05_ablation", "06_results", "07_clinicians", "09_audit",
               "10_checklist")


@pytest.fixture(scope="session")
def study(tmp_path_factory) -> dict:
    return smoke_study(tmp_path_factory.getbasetemp() / "smoke-study")


@pytest.fixture(scope="module")
def chromium() -> str:
    executable = serve_book.chromium_executable()
    if executable is None:
        pytest.skip("no Chromium: run tools/ensure-chromium.sh (make test does) to install it")
    pytest.importorskip("playwright.sync_api")
    return executable


@pytest.mark.slow
def test_every_chapter_renders_with_its_figures_and_tables(study, chromium):
    assert study["book_returncode"] == 0, study["book_log"]
    html = Path(study["html"])
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    reports = serve_book.check_pages(html, executable=chromium, screenshot_dir=SCREENSHOTS)
    by_page = {report.page: report for report in reports}
    chapters = [page for page in by_page if page.startswith("runs/")]
    assert {f"runs/{name}.html" for name in WITH_TABLES + WITH_FIGURES} <= set(chapters)
    assert any(page.startswith("runs/baselines/") for page in chapters)
    problems = [problem for report in reports for problem in report.problems + report.math_problems]
    problems += serve_book.link_problems(html, reports)
    assert not problems, "\n".join(problems)
    for name in WITH_FIGURES:
        images = by_page[f"runs/{name}.html"].images
        assert images and all(width > 0 for _, width in images), f"{name}: {images}"
    for name in WITH_TABLES:
        assert by_page[f"runs/{name}.html"].tables >= 1, f"{name} shows no table"
    for report in reports:
        assert report.screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

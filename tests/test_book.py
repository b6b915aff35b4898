"""The book: it builds without a warning and renders what it should.

The committed book (the prose pages and the reference run's executed
chapters in ``book/runs/``) is built here from a temporary copy of ``book/``
with warnings as errors, so the test never races with a user's
``make book``; the build is shared with ``tests/test_browser_book.py``,
which opens every page in headless Chromium. These tests read the built
HTML: numbering, cross-references, equations served from the site, the
bibliography, and what the prose names (pdlib functions, make targets).
"""

from __future__ import annotations

import html
import importlib
import math
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from statsmodels.stats.proportion import proportion_confint

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

#: Prefix of the chapters that the pipeline executes into the book.
GENERATED_PREFIX = "runs/"

#: Hand-written pages of the book, as built into HTML.
PROSE_PAGES = ("intro", "methods", "data", "limitations", "reproducing", "bibliography")


def jupyter_book_command() -> list[str]:
    script = Path(sys.executable).with_name("jupyter-book")
    if script.exists():
        return [str(script)]
    found = shutil.which("jupyter-book")
    if found is None:
        pytest.fail("jupyter-book is not installed next to this Python nor on PATH")
    return [found]


def copy_book(destination: Path) -> Path:
    """Copy the book's sources (links resolved, generated chapters included) without builds."""
    shutil.copytree(
        BOOK, destination, symlinks=False,
        ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints", "__pycache__"),
    )
    return destination


def build_book(source: Path, output: Path) -> subprocess.CompletedProcess:
    """``jupyter-book build SOURCE -W -n --keep-going`` into OUTPUT/_build/html."""
    return subprocess.run(
        jupyter_book_command() + ["build", str(source), "-W", "-n", "--keep-going", "--path-output", str(output)],
        capture_output=True, text=True, timeout=300,
    )


def committed_book(base: Path) -> tuple[Path, int, str]:
    """Build the committed book once under ``base``; later calls reuse that build.

    Returns the HTML folder, the build's exit status and its output.
    """
    done = base / "build.done"
    if not done.exists():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        result = build_book(copy_book(base / "book"), base / "out")
        (base / "build.log").write_text(result.stdout + result.stderr)
        done.write_text(str(result.returncode))
    return base / "out" / "_build" / "html", int(done.read_text()), (base / "build.log").read_text()


@pytest.fixture(scope="session")
def book_html(tmp_path_factory) -> Path:
    """HTML folder of the committed book, built with warnings as errors."""
    html_dir, returncode, output = committed_book(tmp_path_factory.getbasetemp() / "committed-book")
    assert returncode == 0 and "build succeeded" in output, output[-6000:]
    assert "WARNING" not in output and "ERROR" not in output, output[-6000:]
    return html_dir


def page_text(html: Path, page: str) -> str:
    return (html / f"{page}.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# the table of contents


def test_toc_lists_every_prose_page_and_only_generated_chapters_are_missing():
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    assert toc["format"] == "jb-book" and toc["root"] == "intro"

    def entries(node):
        for key in ("parts", "chapters", "sections"):
            for entry in node.get(key, []):
                yield entry
                yield from entries(entry)

    files = [entry["file"] for entry in entries(toc) if "file" in entry]
    for name in files:
        if not name.startswith(GENERATED_PREFIX):
            assert (BOOK / f"{name}.md").is_file() or (BOOK / f"{name}.ipynb").is_file(), f"_toc.yml: no page {name}"
    # only_build_toc_files is on, so a prose page missing from the toc would silently vanish.
    listed = {toc["root"], *files}
    orphans = sorted(path.stem for path in BOOK.glob("*.md") if path.stem not in listed)
    assert not orphans, f"book pages not in _toc.yml: {orphans}"
    assert set(PROSE_PAGES) <= listed


# --------------------------------------------------------------------------
# the build


def test_the_book_builds_without_warnings_and_has_every_page(book_html):
    for page in PROSE_PAGES:
        assert (book_html / f"{page}.html").is_file(), f"no {page}.html"
    assert 'url=intro.html' in (book_html / "index.html").read_text()


def test_a_warning_fails_the_build(tmp_path):
    source = copy_book(tmp_path / "book")
    with open(source / "data.md", "a") as page:
        page.write("\nSee {cite:p}`no-such-reference-key`.\n")
    result = build_book(source, tmp_path / "out")
    assert result.returncode != 0
    assert "no-such-reference-key" in result.stdout + result.stderr


def test_no_markup_is_left_unrendered(book_html):
    for page in PROSE_PAGES:
        text = page_text(book_html, page)
        for leftover in ("```{", "{cite:", "{eq}`", "{numref}`", "{list-table}", ":::"):
            assert leftover not in text, f"{page}.html shows raw markup {leftover!r}"


def test_equations_carry_the_paper_numbers(book_html):
    text = page_text(book_html, "methods")
    numbers = dict(re.findall(r'id="equation-([\w-]+)">\s*<span class="eqno">\((\d+)\)', text))
    assert numbers == {"eq-kd-loss": "1", "eq-cosine-lr": "2", "eq-label-smoothing": "3"}
    # References to them resolve to the same numbers.
    assert re.search(r'href="#equation-eq-kd-loss">\(1\)</a>', text)
    assert re.search(r'href="#equation-eq-label-smoothing">\(3\)</a>', text)


def test_tables_are_numbered_and_referenced(book_html):
    captions = []
    for path in sorted(book_html.rglob("*.html")):
        captions += [int(n) for n in re.findall(r'<span class="caption-number">Table (\d+)', path.read_text())]
    # Numbers run through the whole book, once each.
    assert sorted(captions) == list(range(1, len(captions) + 1)) and len(captions) >= 2
    prose = [n for page in PROSE_PAGES
             for n in re.findall(r'<span class="caption-number">Table (\d+)', page_text(book_html, page))]
    assert len(prose) >= 2
    limitations = page_text(book_html, "limitations")
    assert re.search(r'href="#tab-test-uncertainty"><span class="std std-numref">Table \d+</span>', limitations)


# --------------------------------------------------------------------------
# numbered chapters and cross-references


def _chapter_number(book_html: Path, page: str) -> str | None:
    """The number in a page's title ("4.2"), or None when it has none."""
    found = re.search(r'<h1><span class="section-number">([\d.]+?)\.? </span>', page_text(book_html, page))
    return found.group(1) if found else None


def _toc_chapters() -> list[tuple[str, bool, list[str]]]:
    """(page, numbered, section pages) in reading order; globs expanded as Sphinx sorts them."""
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    chapters = []
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            sections = []
            for section in chapter.get("sections", []):
                if "glob" in section:
                    sections += sorted(p.relative_to(BOOK).with_suffix("").as_posix()
                                       for p in BOOK.glob(section["glob"] + ".*") if p.suffix in (".md", ".ipynb"))
                else:
                    sections.append(section["file"])
            chapters.append((chapter["file"], bool(part.get("numbered")), sections))
    return chapters


def test_chapters_are_numbered_in_reading_order(book_html):
    assert _chapter_number(book_html, "intro") is None  # the root, before chapter 1
    number = 0
    for page, numbered, sections in _toc_chapters():
        if not numbered:
            assert _chapter_number(book_html, page) is None, page
            continue
        number += 1
        assert _chapter_number(book_html, page) == str(number), page
        for index, section in enumerate(sections, start=1):
            assert _chapter_number(book_html, section) == f"{number}.{index}", section
    assert number >= 13
    assert _chapter_number(book_html, "methods") == "1" and _chapter_number(book_html, "data") == "2"
    assert _chapter_number(book_html, "bibliography") is None


def test_chapter_and_section_references_carry_the_numbers_of_their_targets(book_html):
    seen = 0
    for page in PROSE_PAGES:
        text = page_text(book_html, page)
        for target, anchor, label in re.findall(
                r'<a class="reference internal" href="([\w/]+\.html)?#([\w-]+)"><span class="std std-numref">'
                r'(?:[Cc]hapter|[Ss]ection) ([\d.]+)', text):
            target_page = (target or f"{page}.html").removesuffix(".html")
            target_text = page_text(book_html, target_page)
            heading = re.search(rf'<section id="{anchor}">\s*<h(\d)><span class="section-number">([\d.]+?)\.? ',
                                target_text) or re.search(
                rf'<span id="{anchor}"></span><h(\d)><span class="section-number">([\d.]+?)\.? ', target_text)
            if heading is None:  # a label on the page's title: the target is the page's number
                assert anchor.startswith("chap-"), (page, anchor)
                assert label == _chapter_number(book_html, target_page), (page, anchor, label)
            else:
                assert label == heading.group(2), (page, anchor, label)
            seen += 1
    assert seen >= 8


def test_prose_names_chapters_by_link_never_by_typed_number():
    # A typed chapter or section number, or a chapter named in words ("the
    # audit chapter") that is neither a link's text nor followed by one.
    typed = re.compile(r"\b(?:[Cc]hapter|[Ss]ection)s? \d+"
                       r"|\b(?:audit|checklist|heat-map|results|sweep|clinicians|cohort) chapter\b(?! *\(LINK)")
    for page in PROSE_PAGES:
        source = (BOOK / f"{page}.md").read_text()
        prose = re.sub(r"```.*?```", "", source, flags=re.S)
        prose = re.sub(r"\{(?:ref|numref|doc)\}`[^`]*`", "LINK", prose)
        found = typed.findall(" ".join(prose.split()))
        assert not found, f"{page}.md names a chapter in plain text, not by a {{ref}}/{{numref}}/{{doc}} link: {found}"


def test_generated_chapters_are_linked_from_the_prose(book_html):
    links = set()
    for page in PROSE_PAGES:
        links |= set(re.findall(r'href="(runs/[\w/]+\.html)"', page_text(book_html, page)))
    for chapter in ("01_cohort", "06_results", "07_clinicians", "08_heatmaps", "09_audit", "10_checklist", "11_sweep"):
        assert f"runs/{chapter}.html" in links, chapter


# --------------------------------------------------------------------------
# equations


def test_mathjax_is_served_by_the_book_itself(book_html):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert "sphinx-mathjax-offline" in config["extensions"]
    assert not re.match(r"^(\w+:)?//", config["mathjax_path"])
    assert (book_html / "_static" / config["mathjax_path"]).is_file()
    loading = []
    for path in sorted(book_html.rglob("*.html")):
        text = path.read_text()
        # Nothing of the book comes from another server.
        remote = re.findall(r'<(?:script|link|img)\b[^>]*\b(?:src|href)="((?:https?:)?//[^"]+)"', text)
        assert not remote, f"{path.relative_to(book_html)} loads {remote}"
        for source in re.findall(r'<script\b[^>]*\bsrc="([^"]*mathjax[^"]*)"', text, re.I):
            assert (path.parent / source).resolve().is_file(), f"{path.relative_to(book_html)}: {source} is missing"
            loading.append(path.relative_to(book_html).as_posix())
    assert "methods.html" in loading
    # `make setup` installs the extension: it is pdlib's `book` extra.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(line.startswith("sphinx-mathjax-offline") for line in extras["book"])
    assert re.search(r"^\t\$\(PIP\) install .*-e '\.\[[\w,]*\bbook\b[\w,]*\]'", (ROOT / "Makefile").read_text(), re.M)


def _reader_text(page_html: str) -> str:
    """Text of a page's article without math, code and tags."""
    article = page_html[page_html.index("<article"):page_html.rindex("</article>")]
    article = re.sub(r'<(span|div) class="math[^"]*"[^>]*>.*?</\1>', " ", article, flags=re.S)
    article = re.sub(r"<(pre|code|script|style)\b.*?</\1>", " ", article, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", article))


def test_inline_math_is_never_split_by_markdown(book_html):
    methods = page_text(book_html, "methods")
    # The Youden index stays one formula (a line starting "- 1$" once made it a list item).
    assert r'<span class="math notranslate nohighlight">\(J = \text{sensitivity} + \text{specificity} - 1\)</span>' in methods
    for page in PROSE_PAGES:
        text = _reader_text(page_text(book_html, page))
        assert "$" not in text, f"{page}: a $ outside math: ...{text[max(0, text.find('$') - 80):text.find('$') + 40]}..."


def test_bibliography_lists_every_reference_with_its_doi(book_html):
    bib = (BOOK / "references.bib").read_text()
    entries = dict(re.findall(r"@\w+\{([^,\s]+),(.*?)\n\}", bib, re.S))
    assert "han2025pd" in entries and len(entries) >= 18
    text = page_text(book_html, "bibliography")
    for key, body in entries.items():
        # Listed entries are the cited ones: an uncited reference would be missing here.
        match = re.search(rf'<div class="citation" id="cite-{re.escape(key.lower())}"[^>]*>(.*?)</div>', text, re.S)
        assert match, f"{key} is not in the bibliography (is it cited anywhere?)"
        doi = re.search(r"doi\s*=\s*\{(.*?)\}", body)
        if doi:
            assert f"doi:{html.escape(doi.group(1), quote=False)}</a>" in match.group(1), f"{key}: DOI not shown"
    paper = re.search(r'id="cite-han2025pd"[^>]*>(.*?)</div>', text, re.S).group(1)
    assert "Scientific Reports" in paper and "Volume 15" in paper and "16 May 2025" in paper


def test_prose_pages_cite_the_paper_through_the_bibliography(book_html):
    for page in ("intro", "methods", "data", "limitations"):
        assert 'href="bibliography.html#cite-han2025pd"' in page_text(book_html, page), page


def test_limitations_intervals_follow_from_the_paper_counts(book_html):
    """The intervals typed on the limitations page are recomputed from the paper's counts."""
    text = re.sub(r"\s+", " ", page_text(book_html, "limitations"))
    # Table 2 of Han et al. 2025: PD (EfficientNet-B7) on 14 PR-group and 14 GR test patients.
    for count, total, reported in ((24, 28, 85.71), (12, 14, 85.71)):
        assert round(100 * count / total, 2) == reported
        low, high = proportion_confint(count, total, alpha=0.05, method="wilson")
        assert f"<td><p>{count} / {total}</p></td>" in text
        assert f"{100 * low:.1f}% to {100 * high:.1f}%" in text
    # Hanley and McNeil (1982), standard error of an AUC from its value and the group sizes.
    auc, n_pos, n_neg = 0.87, 14, 14
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = math.sqrt((auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg))
    low, high = max(0.0, auc - 1.959964 * se), min(1.0, auc + 1.959964 * se)
    assert f"{low:.2f} to {high:.2f}" in text
    assert f"reaches down to about {low:.2f}" in text


# --------------------------------------------------------------------------
# what the prose names must exist


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as error:
            if error.name is not None and ".".join(parts[:cut]).startswith(error.name):
                continue
            raise
        for attribute in parts[cut:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_every_pdlib_name_in_the_prose_exists():
    names = set()
    for path in BOOK.glob("*.md"):
        names |= {(path.name, name) for name in re.findall(r"\bpdlib(?:\.[A-Za-z_]\w*)+", path.read_text())}
    assert len(names) >= 10
    missing = []
    for page, name in sorted(names):
        try:
            _resolve(name)
        except (ImportError, AttributeError) as error:
            missing.append(f"{page}: {name} ({type(error).__name__}: {error})")
    assert not missing, "the book names what pdlib does not have:\n" + "\n".join(missing)


def test_commands_in_the_prose_exist():
    from pdlib.cli import COMMANDS
    from pdlib.arms import ARMS

    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:", makefile, re.M))
    seen_make, seen_pdlib = 0, 0
    for path in BOOK.glob("*.md"):
        for block in re.findall(r"```(?:bash|sh)\n(.*?)```", path.read_text(), re.S):
            for line in block.splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command.startswith("make "):
                    seen_make += 1
                    assert command.split()[1] in targets, f"{path.name}: no Makefile target for {command!r}"
                found = re.search(r"-m pdlib (\S+)", command)
                if found:
                    seen_pdlib += 1
                    assert found.group(1) in COMMANDS, f"{path.name}: pdlib has no command {found.group(1)!r}"
                for option, relative in re.findall(r"--(snakefile|profile|configfile) (\S+/\S*)", command):
                    assert (ROOT / relative).exists(), f"{path.name}: --{option} {relative} does not exist"
                for arm in re.findall(r"--arm (\S+)", command):
                    assert arm in ARMS, f"{path.name}: pdlib has no arm {arm!r}"
                for variable in re.findall(r"\b([A-Z]+)=", command):
                    assert re.search(rf"^{variable}\s*\??=", makefile, re.M), f"{path.name}: Makefile has no {variable}"
    assert seen_make >= 4 and seen_pdlib >= 3

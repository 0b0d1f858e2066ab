"""The documentation keeps its promises: the README is a five-minute front door, every relative link leads to a
file (and a heading) that exists, and the results tables say what the committed reports say."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sla_pipeline.eval.results import PAGES, TABLES, refreshed, render, stale
from tests.helpers.paths import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings."""
    found = set()
    for line in page.read_text().splitlines():
        if m := re.match(r"^#+\s+(.*)$", line):
            found.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return found


def markdown_pages() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    return [ROOT / p for p in listed if (ROOT / p).is_file()]


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 120
    assert len(re.findall(r"[A-Za-z0-9]+(?:['’.-][A-Za-z0-9]+)*", text)) <= 1000  # words, tables' pipes aside
    assert "make serve" in text and "make test" in text


def test_every_relative_link_leads_somewhere():
    broken = []
    for page in markdown_pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#") and not target[1:]:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_the_results_tables_are_the_reports():
    assert stale() == [], "run python -m sla_pipeline.eval.results --write"
    for page in PAGES:
        text = (ROOT / page).read_text()
        for name in TABLES:
            if f"<!-- results:{name} -->" in text:
                assert render(name) in text


def test_a_table_that_drifted_is_rendered_anew():
    drifted = "<!-- results:readme -->\n| made up |\n<!-- /results:readme -->"
    assert refreshed(drifted) == f"<!-- results:readme -->\n{render('readme')}\n<!-- /results:readme -->"
    assert "77 / 200" in render("readme")  # best-of-9 by vote, from test-bon/report.json


def test_nothing_cites_a_file_outside_the_repository():
    """The developers' reference file is not part of the project: a clone cannot read it."""
    name = "REFER" + "ENCE"  # spelled apart, so that this test does not find itself
    found = subprocess.run(["git", "grep", "-n", name], cwd=ROOT, capture_output=True, text=True).stdout
    assert found == ""

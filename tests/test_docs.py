"""The documentation: the MkDocs site builds without a warning (a broken link, a missing
anchor, a page left out of the navigation), and the README stays short with working links."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.conftest import REQUIRE_TOOLS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
README_MAX_LINES = 200
# [text](target) outside code; a target with a scheme or only an anchor is not a file
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def test_the_site_builds_strictly(tmp_path):
    try:
        import material  # noqa: F401  (mkdocs-material, which brings mkdocs)
    except ImportError:
        if REQUIRE_TOOLS:
            pytest.fail("mkdocs-material is required in CI (the dev extras)")
        pytest.skip("mkdocs-material is not installed (pip install -e '.[dev]')")
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})  # no end-of-life banner
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "WARNING -" not in output, output
    assert (site / "index.html").is_file()
    assert (site / "issue-codes" / "index.html").is_file()


def test_every_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert pages, "no pages in docs/"
    assert [p for p in pages if f": {p}" not in nav] == []


def test_the_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def readme_links() -> list[str]:
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    return LINK.findall(text)


def test_the_readme_links_to_the_docs():
    targets = {urlsplit(link).path for link in readme_links()}
    assert "docs/index.md" in targets
    assert len([t for t in targets if t.startswith("docs/")]) >= 10


def test_every_relative_link_of_the_readme_points_at_a_file():
    missing = []
    for link in readme_links():
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or not parts.path:  # a URL, or an anchor in the README
            continue
        target = (ROOT / unquote(parts.path)).resolve()
        if not target.exists() or ROOT not in target.parents:
            missing.append(link)
    assert missing == []

"""Every report of both samples, byte for byte: refactors must not change what people receive.

tests/golden/reports.json holds the sha256 of every HTML and PDF report that `kpireport build`
writes for sample_workbooks/*.xlsx (and each PDF's page count, to tell at a glance what changed),
and of the HTML that `kpireport build --format html` writes (its index links no PDFs).
The PDFs are deterministic — WeasyPrint writes no creation date or random id, and the fonts are
the ones kpireport ships — so their bytes are pinned too.

The fast tests check every HTML report in-process and the PDFs of a few reports per sample; the
slow one runs the real `kpireport build` and checks every file. A change that must alter the
bytes (a new class name in the HTML, say) updates the golden data in a commit of its own that
says why: ``KPIREPORT_UPDATE_GOLDEN=1 pytest tests/test_identical.py`` rewrites it from a full
build (then the tests compare against what was just written).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpireport import api
from kpireport.report import render
from kpireport.report.views import all_views
from kpireport.score.results import compute

SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"
GOLDEN = Path(__file__).parent / "golden" / "reports.json"
UPDATE = os.environ.get("KPIREPORT_UPDATE_GOLDEN") == "1"
NAMES = ("acme", "onlinecrm")
# The PDFs the fast test renders: the company report, one department, one employee.
FEW_PDFS = {"acme": ("company.pdf", "departments/sales.pdf", "employees/E003.pdf"),
            "onlinecrm": ("company.pdf", "departments/kinh-doanh.pdf", "employees/NV01.pdf")}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pages(data: bytes) -> int:
    from io import BytesIO

    from pypdf import PdfReader

    return len(PdfReader(BytesIO(data)).pages)


def _reports(run_dir: Path) -> dict[str, dict]:
    """{"html": {file: sha256}, "pdf": {file: {"sha256", "pages"}}} of a run folder."""
    found: dict[str, dict] = {"html": {}, "pdf": {}}
    for path in sorted(run_dir.rglob("*")):
        name = path.relative_to(run_dir).as_posix()
        if path.suffix == ".html":
            found["html"][name] = _sha(path.read_bytes())
        elif path.suffix == ".pdf":
            data = path.read_bytes()
            found["pdf"][name] = {"sha256": _sha(data), "pages": _pages(data)}
    return found


def _cli_build(book: Path, out: Path, *options: str) -> Path:
    """`kpireport build BOOK --out OUT` as a person runs it; the run folder it wrote."""
    run = subprocess.run([sys.executable, "-m", "kpireport", "build", str(book), "--out",
                          str(out), "--workers", "2", *options], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return run_dir


@pytest.fixture(scope="module")
def golden(tmp_path_factory) -> dict:
    if UPDATE:
        data = {}
        for name in NAMES:
            book = SAMPLES / f"{name}.xlsx"
            data[name] = _reports(_cli_build(book, tmp_path_factory.mktemp(f"golden-{name}")))
            data[name]["html_only"] = _reports(_cli_build(
                book, tmp_path_factory.mktemp(f"golden-{name}-html"), "--format", "html"))["html"]
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return json.loads(GOLDEN.read_text())


def _differences(expected: dict, actual: dict) -> list[str]:
    names = sorted(set(expected) | set(actual))
    return [f"{n}: {'missing' if n not in actual else 'new' if n not in expected else 'changed'}"
            for n in names if expected.get(n) != actual.get(n)]


@pytest.mark.parametrize("name", NAMES)
def test_every_html_report_is_byte_identical(name, golden, tmp_path):
    result = api.build(SAMPLES / f"{name}.xlsx", out=tmp_path, formats=("html",), workers=1)
    assert result.ok, result.failures
    html = _reports(result.run_dir)["html"]
    assert len(html) == len(golden[name]["html_only"]) > 10
    assert _differences(golden[name]["html_only"], html) == []
    # the index of an html+pdf build links the PDFs; every other report is the same
    book, issues = api.load(SAMPLES / f"{name}.xlsx")
    (index,) = [v for v in all_views(compute(book, issues)) if v["kind"] == "index"]
    (data,) = render.Renderer(render.template_dirs(None)).render(index, ("html",)).values()
    assert _sha(data) == golden[name]["html"]["index.html"] != html["index.html"]
    assert {**html, "index.html": _sha(data)} == golden[name]["html"]


@pytest.mark.parametrize("name", NAMES)
def test_pdfs_of_a_few_reports_are_byte_identical(name, golden):
    book, issues = api.load(SAMPLES / f"{name}.xlsx")
    renderer = render.Renderer(render.template_dirs(None))
    views = {v["file"] + ".pdf": v for v in all_views(compute(book, issues))}
    for file in FEW_PDFS[name]:
        (data,) = renderer.render(views[file], ("pdf",)).values()
        assert {"sha256": _sha(data), "pages": _pages(data)} == golden[name]["pdf"][file], file


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_kpireport_build_writes_the_same_bytes_for_every_report(name, golden, tmp_path):
    reports = _reports(_cli_build(SAMPLES / f"{name}.xlsx", tmp_path))
    assert len(reports["pdf"]) == len(golden[name]["pdf"]) > 10
    assert _differences(golden[name]["html"], reports["html"]) == []
    assert _differences(golden[name]["pdf"], reports["pdf"]) == []

"""Archive copies (``build --archive``): PDF/A-3b files that still open, and still prove what
was paid, years from now.

Each report gets ``RUN_DIR/archive/<name>.pdf``, unencrypted (PDF/A forbids encryption) and
never e-mailed, with that report's slice of results.json embedded as an associated file
(``/AF``, relationship ``Data``) and, in its XMP metadata, the workbook's SHA-256
(``dc:source``) and the kpireport version (``xmp:CreatorTool``).
"""

from __future__ import annotations

import io
import json

from kpireport.core.version import __version__

FOLDER = "archive"
ATTACHMENT = "results.json"


def archive_name(report_file: str) -> str:
    """'employees/E001' → 'archive/employees-E001.pdf' (one flat folder)."""
    return f"{FOLDER}/{report_file.replace('/', '-')}.pdf"


def results_slice(document: dict, view: dict) -> dict:
    """The part of results.json a report shows: an employee's own scorecard; a department's
    scorecard and its people's; the company's, every scorecard and the bonus pool. Issues
    are left out (they may name other people)."""
    return Slicer(document).of(view)


class Slicer:
    """:func:`results_slice` for every report of one build: the scorecards are grouped by
    employee and department once, not searched again for each of 1,000 reports."""

    def __init__(self, document: dict) -> None:
        self.document = document
        self.employees: dict[str, list[dict]] = {}
        self.departments: dict[str, list[dict]] = {}
        for card in document["scorecards"]:
            if card["owner_type"] == "employee":
                self.employees.setdefault(card["owner"], []).append(card)
            if card["owner_type"] in ("employee", "department"):
                self.departments.setdefault(card["department"], []).append(card)

    def of(self, view: dict) -> dict:
        """The slice of ``view``'s report (a new dict; the document is not changed)."""
        if view["kind"] == "employee":
            chosen = list(self.employees.get(view["person"]["id"], ()))
        elif view["kind"] == "department":
            chosen = list(self.departments.get(view["name"], ()))
        else:
            chosen = list(self.document["scorecards"])
        document = {**self.document, "scorecards": chosen, "issues": []}
        if view["kind"] != "company":  # the bonus pool is the company's (and would make every
            document.pop("pool", None)  # statement change whenever anyone's figures do)
        return document


def archive_meta(document: dict, view: dict, results: dict | None = None) -> dict:
    """What the renderer needs for one archive copy (small and picklable, part of the
    report's cache key: a new workbook hash renders the copy again). ``results`` is the
    view's :func:`results_slice` when the caller has it."""
    if results is None:
        results = results_slice(document, view)
    data = json.dumps(results, ensure_ascii=False, indent=1, allow_nan=False) + "\n"
    return {"file": archive_name(view["file"]), "results": data,
            "sha256": document["source"]["sha256"], "version": __version__}


def write_archive(document, meta: dict) -> bytes:
    """A laid-out WeasyPrint document written as PDF/A-3b with its results attached."""
    # lazy: pikepdf is loaded only where it is used (start-up stays light)
    import pikepdf

    # lazy: weasyprint is loaded only where it is used (start-up stays light)
    from weasyprint import Attachment

    attachment = Attachment(file_obj=io.BytesIO(meta["results"].encode("utf-8")),
                            name=ATTACHMENT, relationship="Data",
                            description="kpireport results of this report (JSON)")
    document.metadata.generator = f"kpireport {meta['version']}"
    pdf = document.write_pdf(pdf_variant="pdf/a-3b", pdf_tags=True, attachments=[attachment])
    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf)) as archive:
        # dc:source (the resource this one is derived from) is a predefined XMP property,
        # so PDF/A needs no extension schema for it.
        with archive.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
            xmp["dc:source"] = f"sha256:{meta['sha256']}"
        # WeasyPrint lists the file specification twice in /AF (name tree and object).
        unique = {f.objgen: f for f in archive.Root.get("/AF", [])}
        if unique:
            archive.Root.AF = pikepdf.Array(list(unique.values()))
        archive.save(out)
    return out.getvalue()

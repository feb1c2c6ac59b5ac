"""Statements a reader can check: what every PDF carries, and ``kpireport verify``.

Every PDF report (and its archive copy) carries, as the embedded file
``kpireport-statement.json`` and in its metadata, its subject's slice of results.json, the
workbook's SHA-256, the kpireport version and a hash of the scoring rules and settings. The
footer prints a short **verification code**: the first 60 bits of the SHA-256 of the
statement's figures, rules and version, in base 32 (``7KQ2-M4XD-PW9A``). The attachment also
holds the SHA-256 of the pages' content streams as written, so an edit to a printed figure
shows.

``verify_pdf`` checks, in order: the file is a PDF (opened with ``password`` if it is
protected); it carries a statement; the statement hashes to its code and the metadata says the
same code; the pages are the ones written; and, given the workbook, recomputing the statement's
subject and period gives the same figures. The first difference is the answer, in words.

Without a secret key no file can prove it was not rewritten with care, attachment, hashes and
all: the figures are proven by recomputing them from the workbook (``--book``).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from kpireport.core.errors import KpireportError, NotVerified
from kpireport.core.i18n import Formatter
from kpireport.core.model import Book, parse_month
from kpireport.core.version import __version__
from kpireport.report.archive import results_slice

SCHEMA = "kpireport/statement@1"
ATTACHMENT = "kpireport-statement.json"
DOCINFO = {"code": "/KpireportCode", "workbook": "/KpireportWorkbookSHA256",
           "version": "/KpireportVersion", "rules": "/KpireportRulesSHA256"}
SCORING_SETTINGS = ("currency", "fiscal_year_start_month", "missing_actuals", "score_cap",
                    "threshold_score", "rag_green", "rag_amber", "band_mode", "bonus_basis")


# ---------------------------------------------------------------------------- the statement
def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def rules_sha256(book: Book) -> str:
    """SHA-256 of the scoring rules and settings: the scoring settings, bands, KPI
    definitions and scorecard lines (not the actuals: those are the figures)."""
    s = book.settings
    rules = {"settings": {name: getattr(s, name) for name in SCORING_SETTINGS},
             "bands": [[b.band, b.min_score, b.bonus_payout, b.salary_increase]
                       for b in book.bands],
             "kpis": [[k.kpi_id, k.unit, k.direction, k.aggregation, k.formula]
                      for k in book.kpis],
             "scorecards": [[ln.owner, ln.kpi_id, ln.weight, ln.target, ln.threshold,
                             ln.stretch, ln.target_max] for ln in book.scorecards],
             "targets": sorted([owner, kpi, month, value]
                               for (owner, kpi), months in book.targets.items()
                               for month, value in months.items())}
    return hashlib.sha256(_canonical(rules)).hexdigest()


def subject_of(view: dict) -> str:
    return view["person"]["id"] if view["kind"] == "employee" else \
        view["name"] if view["kind"] == "department" else ""


def statement(document: dict, view: dict, rules: str, results: dict | None = None) -> dict:
    """The statement of one report (``document`` is results.json): what its code covers.
    ``results`` is the view's :func:`results_slice` when the caller has it.

    The workbook's name and hash travel beside it (attachment and metadata), not in it, so a
    report whose figures, rules and version are unchanged keeps its code when another cell of
    the workbook changes, and the next build reuses its PDF (the render cache)."""
    if results is None:
        results = results_slice(document, view)
    results = {key: value for key, value in results.items() if key != "source"}
    return {"schema": SCHEMA,
            "report": {"kind": view["kind"], "subject": subject_of(view), "file": view["file"]},
            "period": document["period"], "kpireport": __version__, "rules_sha256": rules,
            "results": results}


def code_of(data: dict) -> str:
    """The verification code of a statement: 12 base-32 characters in groups of four."""
    digest = hashlib.sha256(_canonical(data)).digest()
    text = base64.b32encode(digest).decode("ascii")[:12]
    return "-".join(text[i:i + 4] for i in range(0, 12, 4))


def statement_meta(document: dict, view: dict, rules: str,
                   results: dict | None = None) -> dict:
    """What the renderer needs to seal one report's PDF (small, picklable, in its cache key)."""
    data = statement(document, view, rules, results)
    return {"code": code_of(data), "json": json.dumps(data, ensure_ascii=False, sort_keys=True,
                                                      allow_nan=False),
            "workbook": dict(document["source"]), "version": data["kpireport"],
            "rules_sha256": data["rules_sha256"]}


# ---------------------------------------------------------------------------- sealing
def pages_sha256(pdf) -> str:
    """SHA-256 of every page's content streams, decoded, in page order."""
    # lazy: pikepdf is loaded only where it is used (start-up stays light)
    import pikepdf

    digest = hashlib.sha256()
    for number, page in enumerate(pdf.pages):
        contents = page.obj.get("/Contents")
        streams = contents if isinstance(contents, pikepdf.Array) else [contents]
        digest.update(f"page {number}\n".encode())
        for stream in streams:
            if stream is not None:
                digest.update(stream.read_bytes())
    return digest.hexdigest()


def attachment_bytes(meta: dict, pages: str) -> bytes:
    """The embedded file: the statement as :func:`statement_meta` wrote it, with its code,
    the pages' hash and the workbook, keys in order (what ``json.dumps(..., sort_keys=True,
    ensure_ascii=False)`` of the whole would write). The statement's text goes in as it is:
    parsing it and writing it again, indented, took 60 ms of a company report's 280 (its
    statement holds every scorecard)."""
    def text(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)

    return (f'{{"code": {text(meta["code"])}, "pages_sha256": {text(pages)}, '
            f'"statement": {meta["json"]}, "workbook": {text(meta["workbook"])}}}\n'
            ).encode()


def seal(pdf_bytes: bytes, meta: dict, *, archive: bool = False) -> bytes:
    """The PDF with its statement attached and named in its metadata (DocInfo; for a PDF/A
    archive copy, XMP ``dc:identifier``, since PDF/A keeps DocInfo to the standard keys)."""
    # lazy: pikepdf is loaded only where it is used (start-up stays light)
    import pikepdf

    out = io.BytesIO()
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        spec = pikepdf.AttachedFileSpec(
            pdf, attachment_bytes(meta, pages_sha256(pdf)), filename=ATTACHMENT,
            mime_type="application/json", relationship=pikepdf.Name("/Data"),
            description="kpireport statement: results, workbook hash, version, rules hash")
        pdf.attachments[ATTACHMENT] = spec
        if archive:
            # PDF/A-3 lists each embedded file in /AF; keep the others, add this one once.
            stored = pdf.attachments[ATTACHMENT].obj
            if not stored.is_indirect:
                stored = pdf.make_indirect(stored)
            kept = [f for f in pdf.Root.get("/AF", pikepdf.Array())
                    if str(f.get("/UF", "")) != ATTACHMENT]
            pdf.Root.AF = pikepdf.Array([*kept, stored])
            with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as xmp:
                xmp["dc:identifier"] = f"kpireport:{meta['code']}"
        else:
            info = pdf.docinfo
            info[pikepdf.Name(DOCINFO["code"])] = meta["code"]
            info[pikepdf.Name(DOCINFO["workbook"])] = meta["workbook"]["sha256"]
            info[pikepdf.Name(DOCINFO["version"])] = meta["version"]
            info[pikepdf.Name(DOCINFO["rules"])] = meta["rules_sha256"]
        pdf.save(out, deterministic_id=True)
    return out.getvalue()


# ---------------------------------------------------------------------------- verifying
@dataclass(frozen=True)
class Verification:
    """A verified statement: what it is about and what was checked."""

    code: str
    kind: str
    subject: str
    period: str
    checked: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())


def read_statement(path: Path, password: str | None = None) -> tuple[dict, str, str | None]:
    """(the attachment's document, the pages' hash now, the code its metadata names)."""
    # lazy: pikepdf is loaded only where it is used (start-up stays light)
    import pikepdf

    name = path.name
    try:
        head = path.open("rb").read(1024)
    except OSError as exc:
        raise NotVerified(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if b"%PDF-" not in head:
        raise NotVerified(f"{name} is not a PDF")
    try:
        pdf = pikepdf.open(path, password=password or "")
    except pikepdf.PasswordError:
        if password:
            raise NotVerified(f"{name}: the password is wrong") from None
        raise NotVerified(f"{name} is protected: give its password with --password") from None
    except pikepdf.PdfError as exc:
        raise NotVerified(f"{name} is not a readable PDF ({str(exc).splitlines()[0]})") \
            from None
    with pdf:
        attached = pdf.attachments.get(ATTACHMENT)
        if attached is None:
            raise NotVerified(f"{name} carries no kpireport statement (a PDF from another "
                              "tool, or from kpireport before statements were attached)")
        try:
            document = json.loads(attached.get_file().read_bytes())
        except ValueError:
            raise NotVerified(f"{name}: the attached statement is not valid JSON") from None
        pages = pages_sha256(pdf)
        code = pdf.docinfo.get(DOCINFO["code"])
        if code is None:
            with pdf.open_metadata() as xmp:
                ident = xmp.get("dc:identifier") or ""
            ident = ident if isinstance(ident, str) else next(iter(ident), "")
            code = ident.removeprefix("kpireport:") if ident.startswith("kpireport:") else None
    return document, pages, None if code is None else str(code)


def verify_pdf(path: str | Path, book: str | Path | None = None, *,
               password: str | None = None) -> Verification:
    """Verify a kpireport PDF; raise NotVerified with the first difference, in words."""
    path = Path(path)
    document, pages, meta_code = read_statement(path, password)
    data = document.get("statement")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise NotVerified(f"{path.name}: the attached statement is not a kpireport statement")
    code = code_of(data)
    if document.get("code") != code:
        raise NotVerified(f"{path.name}: the attached results were changed (they no longer "
                          f"match the verification code {document.get('code')})")
    if meta_code != code:
        raise NotVerified(f"{path.name}: the metadata names verification code {meta_code}, "
                          f"the attached results have {code}")
    if document.get("pages_sha256") != pages:
        raise NotVerified(f"{path.name}: the pages were changed after kpireport wrote them "
                          f"(verification code {code})")
    checked = ["attachment", "metadata", "pages"]
    notes: list[str] = []
    report = data["report"]
    if book is not None:
        notes += _recompute(path, Path(book), data, document.get("workbook") or {})
        checked.append("figures")
    return Verification(code, report["kind"], report["subject"], data["period"],
                        tuple(checked), tuple(notes))


def _recompute(path: Path, book_path: Path, data: dict, workbook: dict) -> list[str]:
    # lazy: reading and scoring load only on the path that needs them
    from kpireport.read.validate import validate

    # lazy: reading is loaded only where it is used (start-up stays light)
    from kpireport.read.workbook import read_workbook

    # lazy: the results document loads only on the path that needs it
    from kpireport.report.results_files import results_json

    # lazy: scoring is loaded only where it is used (start-up stays light)
    from kpireport.score.results import compute

    try:
        book, issues = validate(read_workbook(book_path))
    except KpireportError as exc:
        raise NotVerified(f"{book_path.name}: {exc}") from None
    if book is None:
        raise NotVerified(f"{book_path.name} has errors (run `kpireport check`); nothing to "
                          "recompute from")
    period = parse_month(data["period"])
    book = replace(book, settings=replace(book.settings, report_period=period))
    notes = []
    if book.source_sha256 != workbook.get("sha256"):
        notes.append(f"{book_path.name} is not the file the statement was built from "
                     f"({workbook.get('file')}, SHA-256 {str(workbook.get('sha256'))[:12]}…); "
                     "its figures for this statement agree")
    if rules_sha256(book) != data["rules_sha256"]:
        notes.append("the scoring rules or settings differ from the statement's")
    report = data["report"]
    view = {"kind": report["kind"], "person": {"id": report["subject"]},
            "name": report["subject"]}
    fresh = results_slice(results_json(compute(book, issues)), view)
    fresh.pop("source", None)
    difference = first_difference(data["results"], fresh)
    if difference is not None:
        raise NotVerified(f"{path.name}: {difference} from {book_path.name}")
    return notes


MONEY = ("bonus", "recommended_salary")
FRACTIONS = ("bonus_payout", "salary_increase")
WINDOW_FIELDS = ("actual", "target", "attainment", "score", "status")


def first_difference(stated: dict, fresh: dict) -> str | None:
    """The first figure that differs between two results slices, in words (None: same)."""
    fmt = Formatter(fresh.get("locale") or "en_US", fresh.get("currency") or "USD")

    def same(a, b) -> bool:
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
        return a == b

    def said(name: str, a, b, who: str, show) -> str:
        return f"{who}{name} on the statement {show(a)}, recomputed {show(b)}"

    def money(v):
        return fmt.money(v)

    def pct(v):
        return fmt.percent(v, 2) if isinstance(v, (int, float)) else str(v)

    def plain(v):
        return "—" if v is None else str(v)

    cards = {c["owner"]: c for c in fresh["scorecards"]}
    single = len(stated["scorecards"]) == 1
    for card in stated["scorecards"]:
        who = "" if single else f"{card['owner']}: "
        other = cards.get(card["owner"])
        if other is None:
            return f"{who}no longer has a scorecard, recomputed"
        for name in MONEY:
            if not same(card.get(name), other.get(name)):
                return said(name.replace("_", " "), card.get(name), other.get(name), who,
                            money)
        if card.get("band") != other.get("band"):
            return said("band", card.get("band"), other.get("band"), who, plain)
        for name in FRACTIONS:
            if not same(card.get(name), other.get(name)):
                return said(name.replace("_", " "), card.get(name), other.get(name), who, pct)
        for window in ("ytd", "month"):
            for name in ("score", "status"):
                a, b = card[window].get(name), other[window].get(name)
                if not same(a, b):
                    label = f"{'year-to-date' if window == 'ytd' else 'month'} {name}"
                    return said(label, a, b, who, pct if name == "score" else plain)
        lines = {k["kpi_id"]: k for k in other["kpis"]}
        for kpi in card["kpis"]:
            fresh_kpi = lines.get(kpi["kpi_id"])
            if fresh_kpi is None:
                return f"{who}{kpi['kpi_id']} is no longer on the scorecard, recomputed"
            for window in ("ytd", "month"):
                for name in WINDOW_FIELDS:
                    a, b = kpi[window].get(name), fresh_kpi[window].get(name)
                    if not same(a, b):
                        span = "year-to-date" if window == "ytd" else "month"
                        label = f"{kpi['kpi_id']} {span} {name}"
                        show = pct if name in ("attainment", "score") else plain
                        return said(label, a, b, who, show)
    return None

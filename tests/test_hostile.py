"""Hostile inputs and unlucky operators: ids as paths, broken builds, kills, templates that
reach out, faulty SMTP servers. Each test says what it tries."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from kpireport import api
from kpireport.core.errors import DeliveryError, KpireportError
from kpireport.core.names import base_name, safe_names
from tests.conftest import BASE, REQUIRE_TOOLS

PY = sys.executable


def cli(*args: str, env: dict | None = None, timeout: float = 120,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "kpireport", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=cwd)


def people_book(make_workbook, ids: list[str], name: str = "book.xlsx", departments=None):
    """BASE with one employee (revenue KPI) per id."""
    departments = departments or ["Sales"] * len(ids)
    people = [BASE["People"][0]] + [
        [emp, f"Person {i}", dept, f"p{i}@x.example", None, 50000, 0.1]
        for i, (emp, dept) in enumerate(zip(ids, departments))]
    cards = [BASE["Scorecards"][0]] + [[emp, "REV", 1.0, 100, None, None] for emp in ids]
    actuals = [BASE["Actuals"][0]] + [[emp, "REV", 90, 100 + i] for i, emp in enumerate(ids)]
    return make_workbook(name, People=people, Scorecards=cards, Actuals=actuals)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [v for k, v in attrs if k in ("href", "src") and v]


def broken_links(run_dir: Path) -> list[str]:
    broken = []
    for page in run_dir.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for href in parser.hrefs:
            url = urlparse(href)
            if url.scheme or href.startswith("#"):
                continue
            target = (page.parent / unquote(url.path)).resolve()
            if run_dir.resolve() not in target.parents or not target.is_file():
                broken.append(f"{page.relative_to(run_dir)} → {href}")
    return broken


# ---------------------------------------------------------------------------- 1. names
HOSTILE_IDS = ["../../x", "a/b", "a-b", "A.B", "a\\b", "CON", "con.txt", "LPT1", "index", "company",
               "..", ".", "#?%", "%2e%2e%2fx", "C:\\evil", "E1", "Ｅ1", "é", "e\u0301",
               "x" * 200, "😀", "员工", "ﾟ", "NUL.html", "aux ", " ok"]


def test_safe_names_table():
    assert base_name("../../x") == "x"
    assert base_name("a/b") == "a-b"
    assert base_name("CON") == "CON_" and base_name("index") == "index_"
    assert base_name("com1") == "com1_" and base_name("company", lower=True) == "company_"
    assert base_name("Ban Giám đốc", lower=True) == "ban-giam-doc"
    assert base_name("😀", fallback="employee") == "employee"
    assert len(base_name("x" * 500)) == 64
    names = safe_names(HOSTILE_IDS)
    assert len(set(n.casefold() for n in names.values())) == len(set(HOSTILE_IDS))
    for name in names.values():
        assert name and len(name) <= 70 and all(c.isascii() and (c.isalnum() or c in "-_")
                                                  for c in name)
    # The id typed exactly as its safe name keeps it; the others are suffixed, whatever the
    # order they come in.
    assert names["E1"] == "E1" and names["Ｅ1"] == "E1-2" and names["a-b"] == "a-b"
    assert (names["A.B"], names["a/b"], names["a\\b"]) == ("A-B-2", "a-b-3", "a-b-4")
    assert names == safe_names(list(reversed(HOSTILE_IDS)))


def test_hostile_ids_stay_inside_the_run_folder_and_every_link_resolves(make_workbook,
                                                                         tmp_path):
    """Ids that are paths, devices, run-folder file names, case/normalisation twins."""
    ids = [i for i in HOSTILE_IDS if i.strip() == i]  # (surrounding blanks are trimmed)
    book = people_book(make_workbook, ids)
    book_check, issues = api.check(book)
    assert book_check is not None, [i.message for i in issues if i.severity == "error"]
    out = tmp_path / "deep" / "out"
    result = api.build(book, out=out, formats=("html",), workers=1)
    assert result.ok
    run = out / "2026-02"
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and run not in p.parents
               and p.parent != tmp_path and not p.name.startswith(".2026-02.lock")]
    assert outside == []
    pages = sorted((run / "employees").glob("*.html"))
    assert len(pages) == len(ids)
    # Each person has their own report; the id stays as typed in the results.
    texts = [p.read_text(encoding="utf-8") for p in pages]
    for i in range(len(ids)):
        assert sum(f": Person {i}</h1>" in t for t in texts) == 1, ids[i]
    owners = json.loads((run / "results.json").read_text())["scorecards"]
    assert {o["owner"] for o in owners if o["owner_type"] == "employee"} == set(ids)
    assert broken_links(run) == []
    # Deterministic: the same people in another order get the same file names.
    again = api.build(people_book(make_workbook, list(reversed(ids)), "rev.xlsx"),
                      out=tmp_path / "out2", formats=("html",), workers=1)
    assert sorted(p.name for p in (again.run_dir / "employees").iterdir()) == \
        sorted(p.name for p in pages)


def test_hostile_department_names(make_workbook, tmp_path):
    """Departments that collide after slugging or are reserved names."""
    depts = ["Sales", "SALES ", "sales!", "../etc", "Index", "COMPANY x", "营销"]
    book = people_book(make_workbook, [f"E{i}" for i in range(len(depts))],
                       departments=depts)
    result = api.build(book, out=tmp_path / "out", formats=("html",), workers=1)
    assert result.ok
    files = sorted(p.name for p in (result.run_dir / "departments").iterdir())
    assert len(files) == len(set(d.strip() for d in depts))
    assert "index_.html" in files and "etc.html" in files
    assert broken_links(result.run_dir) == []


# ---------------------------------------------------------------------------- 2. all or nothing
def _unshare(script: str, timeout: float = 120) -> subprocess.CompletedProcess:
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        if REQUIRE_TOOLS:  # CI: a missing tool fails, never skips
            pytest.fail("unshare -rm (user and mount namespaces) is required in CI")
        pytest.skip("needs unshare (user and mount namespaces) for a read-only or full disk")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, timeout=timeout)


def test_full_disk_leaves_the_previous_build_exactly(make_workbook, tmp_path):
    """A build on a file system that fills up half-way (tmpfs of 1 MB, in a namespace)."""
    book = make_workbook("book.xlsx")
    out = tmp_path / "out"
    out.mkdir()
    kp = f"{PY} -m kpireport"
    script = f"""
        set -e
        mount -t tmpfs -o size=1m tmpfs {out}
        {kp} build {book} --out {out} --format html --workers 1 >/dev/null
        cd {out}/2026-02 && find . -type f -exec sha256sum {{}} + | sort > {tmp_path}/before
        avail=$(df --output=avail -B1 {out} | tail -1)
        head -c $((avail - 40000)) /dev/zero > {out}/filler
        set +e
        {kp} build {book} --out {out} --format html,pdf --workers 1 2> {tmp_path}/err
        echo "rc=$?" > {tmp_path}/rc
        cd {out}/2026-02 && find . -type f -exec sha256sum {{}} + | sort > {tmp_path}/after
        ls -a {out} > {tmp_path}/listing
    """
    proc = _unshare(script)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "rc").read_text().strip() == "rc=1"
    err = (tmp_path / "err").read_text()
    assert "No space left on device" in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()
    assert "staging" not in (tmp_path / "listing").read_text()


def test_read_only_out_folder_is_one_line_and_changes_nothing(make_workbook, tmp_path):
    book = make_workbook("book.xlsx")
    out = tmp_path / "out"
    assert api.build(book, out=out, formats=("html",), workers=1).ok
    before = snapshot(out)
    script = f"""
        mount --bind {out} {out} && mount -o remount,bind,ro {out}
        {PY} -m kpireport build {book} --out {out} --format html --workers 1 2> {tmp_path}/err
        echo "rc=$?" > {tmp_path}/rc
    """
    _unshare(script)
    assert (tmp_path / "rc").read_text().strip() == "rc=1"
    err = (tmp_path / "err").read_text()
    assert "Read-only file system" in err and str(out) in err and "Traceback" not in err
    assert snapshot(out) == before


def test_read_only_subfolder_of_the_previous_build_does_not_half_write(make_workbook,
                                                                        tmp_path):
    """The previous build's employees/ is read-only: nothing is written into it; the new run
    folder is complete (or, were the swap refused, the old one untouched)."""
    book = make_workbook("book.xlsx")
    out = tmp_path / "out"
    assert api.build(book, out=out, formats=("html",), workers=1).ok
    actuals = [row[:] for row in BASE["Actuals"]]
    actuals[3][3] = 96  # Bob's February revenue: his review changes
    changed = make_workbook("changed.xlsx", Actuals=actuals)
    run = out / "2026-02"
    script = f"""
        mount --bind {run}/employees {run}/employees
        mount -o remount,bind,ro {run}/employees
        {PY} -m kpireport build {changed} --out {out} --format html --workers 1 \\
            > {tmp_path}/stdout 2> {tmp_path}/err
        echo "rc=$?" > {tmp_path}/rc
        cd {run} && find . -type f -exec sha256sum {{}} + | sort > {tmp_path}/after
    """
    _unshare(script)
    assert (tmp_path / "rc").read_text().strip() == "rc=0", (tmp_path / "err").read_text()
    expected = tmp_path / "expected"
    assert api.build(changed, out=expected, formats=("html",), workers=1).ok
    after = dict(line.split()[::-1] for line in (tmp_path / "after").read_text().splitlines())
    import hashlib

    want = {f"./{name}": hashlib.sha256(data).hexdigest()
            for name, data in snapshot(expected / "2026-02").items()}
    for stamped in ("./results.xlsx", "./manifest.json"):  # (have a timestamp)
        assert after.pop(stamped) and want.pop(stamped)
    # the audit trail has times; previous/ is the first build, which `expected` never had
    for name in ("./audit.jsonl", "./.audit-head"):
        assert after.pop(name) and want.pop(name)
    assert sorted(n for n in after if n.startswith("./previous/")) == [
        "./previous/hashes.json", "./previous/inputs.json", "./previous/results.json"]
    after = {n: h for n, h in after.items() if not n.startswith("./previous/")}
    assert after == want


def test_stale_reports_go_and_the_ledger_and_other_files_stay(make_workbook, tmp_path):
    """A person who left disappears from the new build; the send ledger and a user's file in
    the run folder are carried over; unchanged reports are kept from the render cache."""
    out = tmp_path / "out"
    api.build(make_workbook("book.xlsx"), out=out, formats=("html",), workers=1)
    run = out / "2026-02"
    (run / ".send-ledger.sqlite").write_bytes(b"ledger")
    (run / "notes").mkdir()
    (run / "notes" / "mine.txt").write_text("keep me")
    people = BASE["People"][:2]
    cards = BASE["Scorecards"][:3]
    actuals = BASE["Actuals"][:3]
    again = api.build(make_workbook("book.xlsx", People=people, Scorecards=cards,
                                    Actuals=actuals), out=out, formats=("html",), workers=1)
    assert again.ok
    assert not (run / "employees" / "E2.html").exists() and (run / "employees/E1.html").exists()
    assert (run / ".send-ledger.sqlite").read_bytes() == b"ledger"
    assert (run / "notes" / "mine.txt").read_text() == "keep me"
    assert [p.name for p in out.iterdir() if p.name.startswith(".2026-02.")] == \
        [".2026-02.lock"]


def test_leftovers_of_a_killed_build_are_cleaned_and_an_interrupted_swap_restored(tmp_path):
    from kpireport.report.outputs import clean_leftovers

    out = tmp_path / "out"
    (out / ".2026-02.staging-abc" / "employees").mkdir(parents=True)
    (out / ".2026-02.old-def").mkdir()
    (out / ".2026-02.old-def" / "results.json").write_text("previous")
    clean_leftovers(out / "2026-02")
    assert sorted(p.name for p in out.iterdir()) == ["2026-02"]
    assert (out / "2026-02" / "results.json").read_text() == "previous"


def test_swap_without_rename_exchange_falls_back_and_rolls_back(make_workbook, tmp_path,
                                                               monkeypatch):
    """Where renameat2(RENAME_EXCHANGE) is missing: two renames; when the second fails, the
    first is undone and the previous build is back in place."""
    from kpireport.report import outputs

    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    book = make_workbook("book.xlsx")
    out = tmp_path / "out"
    api.build(book, out=out, formats=("html",), workers=1)
    before = snapshot(out / "2026-02")
    real_rename = os.rename

    def failing_rename(src, dst):
        if ".staging-" in str(src):
            raise OSError(28, "No space left on device")
        return real_rename(src, dst)

    monkeypatch.setattr(outputs.os, "rename", failing_rename)
    actuals = [row[:] for row in BASE["Actuals"]]
    actuals[3][3] = 96
    with pytest.raises(outputs.OutputError, match="No space left on device"):
        api.build(make_workbook("book.xlsx", Actuals=actuals), out=out, formats=("html",),
                  workers=1)
    assert snapshot(out / "2026-02") == before
    assert sorted(p.name for p in out.iterdir()) == [".2026-02.lock", "2026-02"]
    monkeypatch.setattr(outputs.os, "rename", real_rename)
    assert api.build(make_workbook("book.xlsx", Actuals=actuals), out=out, formats=("html",),
                     workers=1).rendered == 4
    assert sorted(p.name for p in out.iterdir()) == [".2026-02.lock", "2026-02"]


def test_build_and_send_of_one_run_folder_exclude_each_other(make_workbook, tmp_path):
    from kpireport.report.outputs import Busy, run_lock

    book = make_workbook("book.xlsx")
    out = tmp_path / "out"
    api.build(book, out=out, formats=("html",), workers=1)
    before = snapshot(out / "2026-02")
    with run_lock(out / "2026-02"):
        proc = cli("build", str(book), "--out", str(out), "--format", "html")
        with pytest.raises(Busy):
            api.build(book, out=out, formats=("html",), workers=1)
    assert proc.returncode == 1 and "in use by another kpireport build or send" in proc.stderr
    assert snapshot(out / "2026-02") == before


# ---------------------------------------------------------------------------- 3. interrupts
def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    """The command line; empty once the process has gone (forked children are short-lived)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("acme") / "acme.xlsx"
    assert cli("init", str(path), "--sample", "acme").returncode == 0
    return path


def _start_build(acme: Path, out: Path) -> tuple[subprocess.Popen, list[int]]:
    """A PDF build with two workers, once both workers are running."""
    process = subprocess.Popen([PY, "-m", "kpireport", "build", str(acme), "--out", str(out),
                                "--format", "pdf", "--workers", "2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = [c for c in _children(process.pid) if b"spawn_main" in _cmdline(c)]
        if len(workers) == 2:
            time.sleep(1.0)  # into rendering
            assert process.poll() is None, process.communicate()
            return process, workers
        time.sleep(0.05)
    process.kill()
    pytest.fail("the workers did not start")


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_interrupt_stops_build_and_workers_within_2_seconds(acme, tmp_path, how):
    out = tmp_path / "out"
    assert cli("build", str(acme), "--out", str(out), "--format", "html").returncode == 0
    run = next(out.iterdir())
    before = snapshot(run)
    process, workers = _start_build(acme, out)
    started = time.monotonic()
    if how == "SIGTERM":
        process.send_signal(signal.SIGTERM)
    else:  # the terminal sends SIGINT to the whole foreground process group
        os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=10)
    elapsed = time.monotonic() - started
    assert process.returncode == 130 and err.strip().splitlines()[-1] == "Interrupted.", err
    assert "Traceback" not in err
    assert elapsed < 2.5, elapsed  # "about 2 s"; 0.3 s measured on an idle machine
    assert not [w for w in workers if _alive(w)]
    assert snapshot(run) == before
    assert [p.name for p in out.iterdir() if "staging" in p.name] == []


def test_killed_build_leaves_no_worker_and_the_next_build_cleans_up(acme, tmp_path):
    out = tmp_path / "out"
    assert cli("build", str(acme), "--out", str(out), "--format", "html").returncode == 0
    run = next(out.iterdir())
    before = snapshot(run)
    process, workers = _start_build(acme, out)
    process.send_signal(signal.SIGKILL)
    process.wait(5)
    deadline = time.monotonic() + 5  # (the kernel kills them at once; a loaded machine lags)
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)]
    assert snapshot(run) == before
    assert [p for p in out.iterdir() if "staging" in p.name]  # what the kill left
    again = cli("build", str(acme), "--out", str(out), "--format", "html")
    assert again.returncode == 0, again.stderr
    # what remains beside the run folder: its lock and the PDF password store (acme: employee)
    assert sorted(p.name for p in out.iterdir()) == [f".{run.name}.lock",
                                                     ".kpireport-passwords.json", run.name]


# ---------------------------------------------------------------------------- 4. templates
def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "private" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("-----BEGIN PRIVATE KEY----- SECRET-KEY-MATERIAL")
    return secret


def test_symlinked_template_outside_the_folder_is_refused(make_workbook, tmp_path):
    """A custom folder whose employee.html is a link to a private file."""
    secret = _secret(tmp_path)
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "employee.html").symlink_to(secret)
    out = tmp_path / "out"
    proc = cli("build", str(make_workbook("book.xlsx")), "--out", str(out), "--format", "html",
               "--templates", str(tpl))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"Error: template employee.html: it is a link to {secret}, "
                                   "outside the template folders; kpireport does not read it")
    assert not out.exists() or "SECRET" not in "".join(
        p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_included_link_and_linked_folder_and_linked_css_are_refused(make_workbook, tmp_path):
    """{% include %} of a link, a linked sub-folder, a linked print.css and a relative path."""
    secret = _secret(tmp_path)
    tpl = tmp_path / "tpl"
    (tpl / "parts").mkdir(parents=True)
    (tpl / "leak.html").symlink_to(secret)
    (tpl / "outside").symlink_to(secret.parent, target_is_directory=True)
    (tpl / "parts" / "fine.html").write_text("FINE")
    (tpl / "alias.html").symlink_to(tpl / "parts" / "fine.html")  # a link inside: allowed
    base = (Path(__file__).parents[1] / "templates" / "employee.html").read_text()
    book = make_workbook("book.xlsx")
    for include in ("leak.html", "outside/id_rsa", "../private/id_rsa"):
        (tpl / "employee.html").write_text(base.replace(
            "{% block content %}", "{% block content %}{% include '" + include + "' %}", 1))
        result = api.build(book, out=tmp_path / "out", formats=("html",), workers=1,
                           templates=tpl)
        assert set(result.failures) == {"employees/E1", "employees/E2"}, include
        assert "SECRET" not in str(result.failures)
        assert not (tmp_path / "out" / "2026-02").exists()
    (tpl / "employee.html").write_text(base.replace(
        "{% block content %}", "{% block content %}{% include 'alias.html' %}", 1))
    assert api.build(book, out=tmp_path / "out", formats=("html",), workers=1,
                     templates=tpl).ok
    assert "FINE" in (tmp_path / "out/2026-02/employees/E1.html").read_text()
    shutil.rmtree(tmp_path / "out")
    (tpl / "employee.html").unlink()
    (tpl / "print.css").symlink_to(secret)
    result = api.build(book, out=tmp_path / "out", formats=("pdf",), workers=1, templates=tpl)
    assert result.failures and all("print.css" in m for m in result.failures.values())


@pytest.mark.parametrize("body", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
    "{{ 'x' * 100000 * 100000 }}",
    "{{ 7 ** 100000000 }}",
])
def test_runaway_template_is_stopped_with_an_error_naming_it(make_workbook, tmp_path, body):
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "company.html").write_text("{% extends 'base.html' %}{% block content %}" + body
                                      + "{% endblock %}")
    started = time.monotonic()
    proc = cli("build", str(make_workbook("book.xlsx")), "--out", str(tmp_path / "out"),
               "--format", "html", "--templates", str(tpl),
               env={"KPIREPORT_REPORT_TIMEOUT": "1.5"}, timeout=30)
    assert time.monotonic() - started < 15
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("Error: company: template company.html, line 1: "), first
    assert ("stopped after 1.5 s" in first or "too large" in first
            or "may not make a sequence" in first), first
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".2026-02.lock"]


# ---------------------------------------------------------------------------- 5. SMTP
SENDER = "hr@acme.example"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_workbooks"


def _protection_off(path: Path) -> None:
    """Settings pdf_protection none: these tests count plain messages, one per report
    (protected copies, one per recipient, are tests/test_protect.py's)."""
    import openpyxl

    workbook = openpyxl.load_workbook(path)
    for row in workbook["Settings"].iter_rows(min_row=2):
        if row[0].value == "pdf_protection":
            row[1].value = "none"
    workbook.save(path)


@pytest.fixture(scope="module")
def acme_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("acme-run")
    shutil.copy(SAMPLES / "acme.xlsx", root / "acme.xlsx")
    _protection_off(root / "acme.xlsx")
    result = api.build(root / "acme.xlsx", out=root / "reports", formats=("pdf",), workers=2)
    assert result.ok
    from kpireport.month import cycle

    cycle.approve(result.run_dir, by="HR tester")  # send mails approved runs only
    return result.run_dir


@pytest.fixture
def run(acme_run, tmp_path) -> Path:
    """A private copy of the acme run folder (19 messages), with its workbook beside it."""
    shutil.copy(acme_run.parent.parent / "acme.xlsx", tmp_path / "acme.xlsx")
    copy = tmp_path / "reports" / acme_run.name
    shutil.copytree(acme_run, copy)
    return copy


class Recorder:
    """aiosmtpd handler: records messages; can hold message N until released."""

    def __init__(self) -> None:
        import threading

        self.messages: list[bytes] = []
        self.hold_on: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        self.after: dict[int, object] = {}  # message number → callable run after it

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio

        number = len(self.messages) + 1
        if number == self.hold_on:
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 20)
        self.messages.append(envelope.original_content)
        if number in self.after:
            self.after.pop(number)()
        return "250 Message accepted"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smtp_server(handler, port: int):
    from aiosmtpd.controller import Controller

    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    return controller


class FaultyFront:
    """A raw TCP server on loopback in front of a real SMTP server: the first ``bad``
    connections get ``mode`` — '421' (a 4xx greeting, then closed), 'close' (closed at once),
    'stall' (never a byte), 'trickle' (a greeting one byte every 0.2 s, never finished) —
    later ones are passed through to ``upstream``."""

    def __init__(self, mode: str, bad: int, upstream: int | None = None) -> None:
        import socket
        import threading

        self.mode, self.bad, self.upstream = mode, bad, upstream
        self.connections = 0
        self.times: list[float] = []  # time.monotonic() of each connection
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open: list = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        import socket
        import threading

        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.times.append(time.monotonic())
            self.open.append(conn)
            if self.connections > self.bad and self.upstream:
                up = socket.create_connection(("127.0.0.1", self.upstream))
                self.open.append(up)
                for a, b in ((conn, up), (up, conn)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()
            elif self.mode == "421":
                conn.sendall(b"421 4.3.2 Too busy, try again later\r\n")
                conn.close()
            elif self.mode == "close":
                conn.close()
            elif self.mode == "trickle":
                threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()
            # 'stall': keep the connection open and silent

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(2)
                except OSError:
                    pass

    @staticmethod
    def _trickle(conn) -> None:
        try:
            for byte in b"220 " + b"x" * 100_000:
                conn.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()
        for s in self.open:
            try:
                s.close()
            except OSError:
                pass


def _send(run: Path, port: int, *extra: str, env: dict | None = None, timeout: float = 60):
    env = {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(port),
           "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER, "COLUMNS": "300",
           **(env or {})}
    started = time.monotonic()
    proc = cli("send", str(run), *extra, env=env, timeout=timeout, cwd=run.parent.parent)
    return proc, time.monotonic() - started


def _ledger_states(run: Path) -> dict[str, int]:
    import sqlite3

    db = sqlite3.connect(run / ".send-ledger.sqlite")
    try:
        return dict(db.execute("SELECT state, count(*) FROM sends GROUP BY state").fetchall())
    finally:
        db.close()


def test_4xx_greeting_and_closed_connections_are_retried_with_backoff(run):
    """The first two connections get '421 too busy' (then 'closed at once'): retried after 1 s
    and 2 s on new connections, then all 19 messages go through."""
    handler = Recorder()
    server = _smtp_server(handler, _free_port())
    for mode in ("421", "close"):
        front = FaultyFront(mode, bad=2, upstream=server.port)
        try:
            proc, _ = _send(run, front.port, "--resend")
        finally:
            front.close()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "38 sent, 0 already sent, 0 failed, 0 unknown" in proc.stdout
        assert front.connections == 3  # two refused, then one connection for everything
        waits = [b - a for a, b in zip(front.times, front.times[1:])]
        assert 1.0 <= waits[0] < 2.0 and 2.0 <= waits[1] < 3.0, waits  # backoff 1 s, 2 s
    assert len(handler.messages) == 38
    server.stop()


def test_server_restart_mid_run_is_retried_and_reconnected(run):
    """The SMTP server goes down after message 3 and is back 2 s later on the same port."""
    import threading

    port = _free_port()
    handler = Recorder()
    servers = [_smtp_server(handler, port)]

    def restart() -> None:
        def later() -> None:
            servers[0].stop()
            time.sleep(2)
            servers.append(_smtp_server(handler, port))

        threading.Thread(target=later, daemon=True).start()

    handler.after[3] = restart
    proc, elapsed = _send(run, port)
    servers[-1].stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subjects = [m.split(b"\nSubject: ", 1)[1].split(b"\n", 1)[0] for m in handler.messages]
    assert len(handler.messages) == 19 and len(set(subjects)) == 19
    assert _ledger_states(run) == {"sent": sum(1 for _ in _ledger_rows(run))}
    assert elapsed < 20


def _ledger_rows(run: Path):
    import sqlite3

    db = sqlite3.connect(run / ".send-ledger.sqlite")
    try:
        return db.execute("SELECT * FROM sends").fetchall()
    finally:
        db.close()


@pytest.mark.parametrize("mode", ["stall", "trickle"])
def test_stalled_server_costs_a_bounded_time_for_the_whole_run(run, mode):
    """A server that accepts and never answers (or answers one byte at a time): the first
    message's four attempts time out, then the run stops; the other 19 are 'not sent'."""
    front = FaultyFront(mode, bad=1000)
    try:
        proc, _ = _send(run, front.port, env={"KPIREPORT_SMTP_TIMEOUT": "0.5",
                                              "KPIREPORT_SMTP_BACKOFF": "0.1"})
        ended = time.monotonic()
    finally:
        front.close()
    # 4 attempts × (0.5 s, or the whole-attempt bound of 1.5 s when trickling) + 0.7 s waits,
    # counted from the first connection (starting Python and reading the book come before)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    spent = ended - front.times[0]
    assert spent < (2.7 if mode == "stall" else 6.7) + 1.5, spent
    assert front.connections == 4
    out = " ".join(proc.stdout.split())
    assert "0 sent, 0 already sent, 38 failed" in out and "not sent: the run stopped" in out
    assert _ledger_states(run) == {"failed": len(_ledger_rows(run))}
    assert len({r[0] for r in _ledger_rows(run)}) == 1  # only the first message was tried


def test_two_sends_of_one_run_folder_never_misreport_each_other(run):
    """While one send is in the middle of the run, a second is refused with one line (it does
    not call the first one's in-flight message 'unknown'); afterwards all is 'already sent'."""
    handler = Recorder()
    handler.hold_on = 5
    server = _smtp_server(handler, _free_port())
    env = {"KPIREPORT_SMTP_HOST": "127.0.0.1", "KPIREPORT_SMTP_PORT": str(server.port),
           "KPIREPORT_SMTP_SECURITY": "none", "KPIREPORT_SMTP_FROM": SENDER}
    first = subprocess.Popen([PY, "-m", "kpireport", "send", str(run)], env={**os.environ,
                             **env}, cwd=run.parent.parent, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        assert handler.holding.wait(60)
        second, _ = _send(run, server.port)
        assert second.returncode == 1 and "unknown" not in second.stdout + second.stderr
        assert second.stderr.strip() == (f"Error: {run} is in use by another kpireport build "
                                         "or send; try again when it has finished")
        handler.release.set()
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, out + err
        third, _ = _send(run, server.port)
        assert third.returncode == 0
        assert "0 sent, 38 already sent, 0 failed, 0 unknown" in third.stdout
        assert "unknown" not in third.stdout.split("E-mail summary")[0]
        assert len(handler.messages) == 19
    finally:
        handler.release.set()
        first.kill()
        server.stop()


# ---------------------------------------------------------------------------- 6. recipients
def test_send_refuses_another_workbook_and_an_edited_one(run, tmp_path):
    """--book with a workbook that differs from the one built (a changed manager e-mail), and
    the workbook found beside the run but edited after the build."""
    import openpyxl

    handler = Recorder()
    server = _smtp_server(handler, _free_port())
    try:
        other = tmp_path / "other.xlsx"
        book = openpyxl.load_workbook(tmp_path / "acme.xlsx")
        people = book["People"]
        people.cell(row=3, column=[c.value for c in people[1]].index("email") + 1,
                    value="attacker@evil.example")
        book.save(other)
        proc, _ = _send(run, server.port, "--book", str(other))
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {other} is not the workbook "
                                                       f"{run} was built from (acme.xlsx")
        shutil.copy(other, tmp_path / "acme.xlsx")  # the book named in results.json, edited
        proc, _ = _send(run, server.port)
        assert proc.returncode == 1 and "is not the workbook" in proc.stderr
        assert handler.messages == [] and not (run / ".send-ledger.sqlite").exists()
    finally:
        server.stop()


def test_send_mails_the_recipients_recorded_at_build_time(run):
    import json as _json

    from kpireport.report.manifest import read_manifest

    record = _json.loads((run / "recipients.json").read_text())
    assert record["schema"] == "kpireport/recipients@1"
    assert record["source"]["file"] == "acme.xlsx" and len(record["reports"]) == 19
    employee = next(r for r in record["reports"] if r["kind"] == "employee")
    assert employee["file"].startswith("employees/") and employee["to"]
    manifest = read_manifest(run)
    assert manifest.report("employee", employee["scope"]).stem == employee["file"]
    handler = Recorder()
    server = _smtp_server(handler, _free_port())
    try:
        # The record is part of the build: one edited after it (to redirect a statement) stops
        # the send before anything goes out.
        original = (run / "recipients.json").read_bytes()
        employee["to"] = ["redirected@elsewhere.example"]
        (run / "recipients.json").write_text(_json.dumps(record))
        proc, _ = _send(run, server.port)
        assert proc.returncode == 1 and "changed after HR tester approved it" in proc.stderr \
            and "(1 file(s), e.g. recipients.json)" in proc.stderr, proc.stderr
        assert handler.messages == []
        from kpireport.deliver import send as deliver

        with pytest.raises(DeliveryError, match="recipients.json changed after the build .it "
                           "is not the file its manifest lists.; build again"):
            deliver.plan_messages(api.send_book(run), run, SENDER)
        (run / "recipients.json").write_bytes(original)
        proc, _ = _send(run, server.port)
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    addresses = _json.loads(original)["reports"]
    own = next(r for r in addresses if r["file"] == employee["file"])["to"][0]
    assert sum(own.encode() in m for m in handler.messages) >= 1
    assert b"redirected@elsewhere.example" not in b"".join(handler.messages)


def test_send_refuses_a_report_edited_after_the_build(run):
    from kpireport.deliver import send as deliver
    from kpireport.month import cycle

    pdf = run / "company.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"%edited\n")
    handler = Recorder()
    server = _smtp_server(handler, _free_port())
    try:
        proc, _ = _send(run, server.port)  # the approval named the PDF as built
    finally:
        server.stop()
    assert proc.returncode == 1 and "changed after HR tester approved it" in proc.stderr \
        and "(1 file(s), e.g. company.pdf)" in proc.stderr, proc.stderr
    assert handler.messages == [] and not (run / ".send-ledger.sqlite").exists()
    with pytest.raises(KpireportError, match="company.pdf changed after the build"):
        cycle.approve(run, by="HR tester")  # nor can it be approved
    with pytest.raises(DeliveryError, match="company.pdf changed after the build .it is not "
                       "the file its manifest lists.; build again"):
        deliver.plan_messages(api.send_book(run), run, SENDER)


# ---------------------------------------------------------------------------- 9. faults
def test_read_only_run_folder_on_send_is_one_line(run):
    script = f"""
        mount --bind {run} {run} && mount -o remount,bind,ro {run}
        cd {run.parent.parent}
        KPIREPORT_SMTP_HOST=127.0.0.1 KPIREPORT_SMTP_PORT={_free_port()} \\
        KPIREPORT_SMTP_SECURITY=none KPIREPORT_SMTP_FROM={SENDER} \\
            {PY} -m kpireport send {run} 2> {run.parent}/err
        echo "rc=$?" > {run.parent}/rc
    """
    _unshare(script)
    assert (run.parent / "rc").read_text().strip() == "rc=1"
    assert (run.parent / "err").read_text().strip() == (
        f"Error: cannot send from {run}: Read-only file system (the send ledger is kept in "
        "the run folder)")


def test_locked_ledger_is_one_line(run):
    import sqlite3

    db = sqlite3.connect(run / ".send-ledger.sqlite", isolation_level=None)
    db.execute("CREATE TABLE t (x)")
    db.execute("BEGIN EXCLUSIVE")
    try:
        proc, elapsed = _send(run, _free_port())
    finally:
        db.close()
    assert proc.returncode == 1 and elapsed < 10
    assert proc.stderr.strip() == (f"Error: the send ledger {run / '.send-ledger.sqlite'} is "
                                   "locked by another program; close it and send again")


# ---------------------------------------------------------------------------- 7. any valid book
def _numbers():
    from hypothesis import strategies as st

    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
        st.sampled_from([0.0, 1e-9, -1e-9, 1e15, -1e15, 1e-300, 1e308, 5e-324, 0.1, 100.0]),
        st.integers(min_value=-10**18, max_value=10**18))


def _book_strategy():
    from hypothesis import strategies as st

    positive = st.floats(min_value=1e-9, max_value=1e15) | st.sampled_from(
        [1e-9, 1e15, 0.5, 100.0, 3e-9, 9.99e14])
    value = st.one_of(positive, positive, positive, _numbers())  # mostly what check accepts
    maybe = st.one_of(st.none(), st.none(), value)
    ids = st.one_of(st.sampled_from(HOSTILE_IDS), st.text(min_size=1, max_size=12)).filter(
        lambda t: t.strip() == t and t.isprintable() and t.upper() != "COMPANY")
    return st.fixed_dictionaries({
        "ids": st.lists(ids, min_size=1, max_size=3, unique_by=str.casefold),
        "departments": st.lists(st.sampled_from(["Sales", "sales!", "../x", "CON", "营销"]),
                                min_size=3, max_size=3),
        "direction": st.sampled_from(["higher", "lower", "range"]),
        "aggregation": st.sampled_from(["sum", "average", "last", "min", "max"]),
        "unit": st.sampled_from(["number", "currency", "percent"]),
        "target": value, "threshold": maybe, "stretch": maybe,
        "range_factor": st.floats(min_value=1, max_value=1e6),
        "actuals": st.lists(st.one_of(st.none(), st.floats(-1e15, 1e15), positive, value),
                            min_size=4, max_size=4),
        "salary": st.one_of(st.none(), positive, value), "bonus": st.none() | st.floats(0, 1),
        "currency": st.sampled_from(["USD", "VND", "JPY", "BHD"]),
        "mode": st.sampled_from(["skip", "zero"]),
        "basis": st.sampled_from(["ytd", "month"]),
    })


def test_no_internal_error_from_any_workbook_check_accepts(tmp_path):
    """Property: random books (hostile ids, any finite number from 5e-324 to 1e308, every
    direction, aggregation, unit and currency) are either refused by check with cells named,
    or build without an internal error and without a failed report."""
    import itertools
    import tempfile

    from hypothesis import HealthCheck, given, settings

    from kpireport.core.errors import KpireportError
    from tests.conftest import write_xlsx

    counter = itertools.count()
    built: list[int] = []

    @settings(max_examples=int(os.environ.get("KPIREPORT_HYPOTHESIS_EXAMPLES", "60")),
              deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(_book_strategy())
    def prop(b):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        people = [BASE["People"][0]] + [
            [emp, f"N{i}", b["departments"][i], f"p{i}@x.example", None, b["salary"],
             b["bonus"]] for i, emp in enumerate(b["ids"])]
        kpis = [BASE["KPIs"][0], ["K", "KPI", b["unit"], b["direction"], b["aggregation"],
                                   None]]
        cards = [["owner", "kpi_id", "weight", "target", "threshold", "stretch", "target_max"]]
        target_max = min(b["target"] * b["range_factor"], 1e15) \
            if b["direction"] == "range" else None
        cards += [[emp, "K", 1.0, b["target"], b["threshold"], b["stretch"], target_max]
                  for emp in b["ids"]]
        actuals = [["owner", "kpi_id", "2026-01", "2026-02", "2026-03", "2026-04"]]
        actuals += [[emp, "K", *b["actuals"]] for emp in b["ids"]]
        settings_rows = BASE["Settings"] + [["currency", b["currency"]],
                                            ["missing_actuals", b["mode"]],
                                            ["bonus_basis", b["basis"]]]
        path = write_xlsx(folder / f"b{next(counter)}.xlsx", {
            **BASE, "Settings": settings_rows, "People": people, "KPIs": kpis,
            "Scorecards": cards, "Actuals": actuals})
        book, issues = api.check(path)
        if book is None:
            errors = [i for i in issues if i.severity == "error"]
            assert errors and all(i.sheet and i.cell for i in errors if i.code != "missing-sheet")
            return
        try:
            result = api.build(path, out=folder / "out", formats=("html",), workers=1)
        except KpireportError as exc:
            raise AssertionError(f"a book check accepts was refused by build: {exc}") from None
        assert result.ok, result.failures
        built.append(1)

    prop()
    assert len(built) >= 5, f"only {len(built)} of the random books passed check"


@pytest.mark.parametrize("value", [1e308, -1e16, 1e-300, 5e-324, "1e20"])
def test_check_refuses_magnitudes_outside_the_documented_range_naming_the_cell(
        make_workbook, tmp_path, value):
    actuals = [row[:] for row in BASE["Actuals"]]
    actuals[2][3] = value  # Alice's February CAC, Actuals!D3
    proc = cli("check", str(make_workbook("book.xlsx", Actuals=actuals)), "--format", "json")
    assert proc.returncode == 1
    issues = [i for i in json.loads(proc.stdout)["issues"] if i["severity"] == "error"]
    assert [(i["sheet"], i["cell"], i["code"]) for i in issues] == [
        ("Actuals", "D3", "out-of-range")]
    assert "0, or 1e-09 to 1e+15 in magnitude" in issues[0]["message"]


# ---------------------------------------------------------------------------- 8. every name renders
def test_names_the_shipped_fonts_cannot_draw_are_warned_naming_cell_and_characters(
        make_workbook, tmp_path):
    people = [row[:] for row in BASE["People"]]
    people[1][1] = "王小明"  # People!B2, Chinese
    people[2][1] = "Ахмед محمد 😀"  # People!B3: Cyrillic is drawn, Arabic and emoji are not
    people[2][2] = "Sales"
    people.append(["E3", "Nguyễn Thị Ánh · Ωμέγα", "Sales", "c@x.example", "E1", 1, 0.1])
    cards = BASE["Scorecards"] + [["E3", "REV", 1.0, 100, None, None]]
    actuals = BASE["Actuals"] + [["E3", "REV", 1, 2]]
    kpis = [row[:] for row in BASE["KPIs"]]
    kpis[1][1] = "売上 (revenue)"  # KPIs!B2, Japanese
    book = make_workbook("book.xlsx", People=people, Scorecards=cards, Actuals=actuals,
                         KPIs=kpis)
    proc = cli("check", str(book), "--format", "json")
    assert proc.returncode == 0, proc.stdout  # a warning, not an error
    found = [(i["sheet"], i["cell"], i["message"]) for i in json.loads(proc.stdout)["issues"]
             if i["code"] == "missing-glyphs"]
    assert [(s, c) for s, c, _ in found] == [("People", "B2"), ("People", "B3"),
                                             ("KPIs", "B2")]
    assert "王 (U+738B) 小 (U+5C0F) 明 (U+660E)" in found[0][2]
    assert "😀 (U+1F600)" in found[1][2] and "م (U+0645)" in found[1][2]
    assert "А" not in found[1][2]  # Cyrillic is covered
    assert "売 (U+58F2)" in found[2][2]
    # It stays a warning: the reports build.
    assert api.build(book, out=tmp_path / "out", formats=("pdf",), workers=1).ok


def test_latin_vietnamese_greek_cyrillic_pdfs_embed_only_the_shipped_fonts(make_workbook,
                                                                            tmp_path):
    from tests.conftest import need_tool

    people = [row[:] for row in BASE["People"]]
    people[1][1] = "Nguyễn Thị Ánh"
    people[2][1] = "Ωμέγα Дмитрий"
    book = make_workbook("book.xlsx", People=people)
    _, issues = api.check(book)
    assert not [i for i in issues if i.code == "missing-glyphs"]
    result = api.build(book, out=tmp_path / "out", formats=("pdf",), workers=1)
    fonts = subprocess.run([need_tool("pdffonts"), str(result.run_dir / "employees/E2.pdf")],
                           capture_output=True, text=True, check=True).stdout
    names = {line.split()[0].split("+")[-1] for line in fonts.splitlines()[2:]}
    assert names <= {"Noto-Sans", "Noto-Sans-Bold", "KPI-Symbols", "KPI-Symbols-Bold"}, names


def test_send_never_attaches_a_file_outside_the_run_folder(run, tmp_path):
    """A report PDF replaced by a link to a private file, and a recipients.json whose file
    entry climbs out of the run folder: refused with one line, nothing sent."""
    import json as _json

    from kpireport.deliver import send as deliver
    from kpireport.month import cycle

    secret = _secret(tmp_path)
    record = _json.loads((run / "recipients.json").read_text())
    handler = Recorder()
    server = _smtp_server(handler, _free_port())
    try:
        victim = run / f"{record['reports'][-1]['file']}.pdf"
        built_pdf = victim.read_bytes()
        victim.unlink()
        victim.symlink_to(secret)
        proc, _ = _send(run, server.port)
        assert proc.returncode == 1 and "changed after HR tester approved it" in proc.stderr
        with pytest.raises(KpireportError, match="changed after the build"):
            cycle.approve(run, by="HR tester")  # nor can it be approved
        with pytest.raises(DeliveryError, match="leads outside the run folder"):
            deliver.plan_messages(api.send_book(run), run, SENDER)
        victim.unlink()
        victim.write_bytes(built_pdf)
        # An edited recipients.json is not the build's (its hash is in the manifest); a
        # manifest edited to point a report out of the folder, with the file's own hash, is
        # stopped by the path check.
        record["reports"][0]["file"] = "../../private/id_rsa"
        original = (run / "recipients.json").read_bytes()
        (run / "recipients.json").write_text(_json.dumps(record))
        proc, _ = _send(run, server.port)
        assert proc.returncode == 1 and "changed after HR tester approved it" in proc.stderr
        with pytest.raises(DeliveryError, match="recipients.json changed after the build"):
            deliver.plan_messages(api.send_book(run), run, SENDER)
        (run / "recipients.json").write_bytes(original)
        import hashlib

        manifest = _json.loads((run / "manifest.json").read_text())
        data = secret.read_bytes()
        first = next(r for r in manifest["reports"] if r["files"].get("pdf"))
        first["files"]["pdf"] = {"path": "../../private/id_rsa", "size": len(data),
                                 "sha256": hashlib.sha256(data).hexdigest()}
        (run / "manifest.json").write_text(_json.dumps(manifest))
        cycle.approve(run, by="HR tester")  # approves what the edited manifest says
        proc, _ = _send(run, server.port)
        assert proc.returncode == 1 and "leads outside the run folder" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        server.stop()
    assert handler.messages == []


def test_unwritable_outbox_is_one_line(run, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    script = f"""
        mount --bind {outbox} {outbox} && mount -o remount,bind,ro {outbox}
        cd {run.parent.parent}
        KPIREPORT_SMTP_FROM={SENDER} {PY} -m kpireport send {run} --dry-run \\
            --outbox {outbox} 2> {tmp_path}/err
        echo "rc=$?" > {tmp_path}/rc
    """
    _unshare(script)
    assert (tmp_path / "rc").read_text().strip() == "rc=1"
    assert (tmp_path / "err").read_text().strip() == (
        f"Error: cannot write the outbox {outbox}: Read-only file system")


# ---------------------------------------------------------------------------- swaps that finish
def test_a_previous_build_that_cannot_be_removed_is_named_and_cleaned_next_time(tmp_path,
                                                                                 monkeypatch):
    """A rebuild whose previous run folder cannot be removed completely still ends with one
    run folder; what is left is said in one line and removed by the next build, never left as
    a staging folder with no word. (As root, permission bits do not stop a removal, so the
    file system's refusal is simulated where shutil removes files.)"""
    import os as os_module
    import shutil as shutil_module

    from kpireport import api

    book = SAMPLES / "acme.xlsx"
    out = tmp_path / "reports"
    first = api.build(book, out=out, formats=("html",))
    (first.run_dir / "notes").mkdir()
    (first.run_dir / "notes" / "held.txt").write_text("open in another program")
    real_unlink = os_module.unlink

    def refuse(path, *args, **kwargs):
        if os_module.path.basename(str(path)) == "held.txt":
            raise PermissionError(13, "Permission denied")
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(shutil_module.os, "unlink", refuse)
    (first.run_dir / "results.json").write_bytes(b"{}")  # a change: not reused
    second = api.build(book, out=out, formats=("html",), workers=1)
    monkeypatch.undo()
    assert second.ok and second.leftover is not None
    assert "could not be removed" in second.leftover and "Permission denied" in second.leftover
    assert "\n" not in second.leftover and "next build" in second.leftover
    aside = [p.name for p in out.iterdir() if p.name.startswith(".2026-03.")
             and not p.name.endswith(".lock")]
    assert len(aside) == 1 and ".trash-" in aside[0] and "staging" not in aside[0]
    assert (out / "2026-03" / "index.html").is_file()
    third = api.build(book, out=out, formats=("html",))
    assert third.ok and third.leftover is None
    assert not [p.name for p in out.iterdir() if ".trash-" in p.name or "staging" in p.name]
    assert (out / "2026-03" / "index.html").is_file()


def test_removing_a_leftover_never_changes_the_folder_around_it(tmp_path, monkeypatch):
    """remove_tree makes folders inside what it removes writable, never the folder that holds
    it (a shared reports folder keeps its group bits), and says what is left in one line."""
    import os as os_module
    import stat

    from kpireport.report.outputs import remove_tree

    out = tmp_path / "reports"
    out.mkdir()
    out.chmod(0o2775)
    leftover = out / ".2026-03.trash-x"
    (leftover / "employees").mkdir(parents=True)
    (leftover / "employees" / "E1.html").write_text("x")
    real_rmdir = os_module.rmdir

    def refuse(path, *args, **kwargs):
        if os_module.path.basename(str(path)) == leftover.name:
            raise OSError(16, "Device or resource busy")
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os_module, "rmdir", refuse)
    said = remove_tree(leftover)
    monkeypatch.undo()
    assert stat.S_IMODE(out.stat().st_mode) == 0o2775
    assert said is not None and "busy" in said and "\n" not in said
    assert not (leftover / "employees").exists()
    assert remove_tree(leftover) is None and not leftover.exists()

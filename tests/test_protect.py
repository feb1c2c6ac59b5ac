"""Protected PDFs, the password store and archive copies, used the way a person uses them."""

from __future__ import annotations

import json

import openpyxl
from click.testing import CliRunner

from kpireport import api
from kpireport.cli import main
from tests.conftest import BASE


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def people_with_passwords(*passwords):
    """BASE People with a pdf_password column (Alice, Bob)."""
    rows = [BASE["People"][0] + ["pdf_password"]]
    for row, password in zip(BASE["People"][1:], passwords):
        rows.append(row + [password])
    return rows


def settings(**values):
    return BASE["Settings"] + [[k, v] for k, v in values.items()]


# ---------------------------------------------------------------------------- settings
def test_template_writes_employee_and_a_book_without_the_setting_keeps_none(tmp_path,
                                                                           make_workbook):
    path = tmp_path / "blank.xlsx"
    assert invoke("init", path).exit_code == 0
    sheet = openpyxl.load_workbook(path)["Settings"]
    values = {row[0]: row[1] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["pdf_protection"] == "employee"
    assert "pdf_password_hint" in values
    people = openpyxl.load_workbook(path)["People"]
    assert "pdf_password" in [c.value for c in people[1]]
    for sample in ("acme", "onlinecrm"):
        book, _ = api.load(f"sample_workbooks/{sample}.xlsx")
        assert book.settings.pdf_protection == "employee"

    book_path = make_workbook()  # BASE has no pdf_protection row
    book, issues = api.load(book_path)
    assert book.settings.pdf_protection == "none"
    assert [(i.severity, i.code) for i in issues if i.code == "pdf-protection-off"] == \
        [("info", "pdf-protection-off")]
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["check", str(book_path), "--all"])
    assert result.exit_code == 0
    assert "pdf_protection is none, so e-mailed PDFs are not encrypted" in result.output
    protected = make_workbook(Settings=settings(pdf_protection="employee"))
    assert not [i for i in api.check(protected)[1] if i.code == "pdf-protection-off"]


def test_bad_pdf_password_names_the_cell_and_never_the_value(make_workbook):
    short, control = "abc1234", "good\tpass99"
    path = make_workbook(People=people_with_passwords(short, control),
                         Settings=settings(pdf_protection="employee"))
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "People!H2: the pdf_password is shorter than 8 characters" in result.output
    assert "People!H3: the pdf_password contains a control character" in result.output
    as_json = invoke("check", path, "--format", "json")
    doc = json.loads(as_json.output)
    assert [(i["sheet"], i["cell"], i["code"]) for i in doc["issues"]
            if i["severity"] == "error"] == [("People", "H2", "bad-pdf-password"),
                                             ("People", "H3", "bad-pdf-password")]
    for output in (result.output, as_json.output):
        assert short not in output and "good" not in output and "pass99" not in output
    build = CliRunner().invoke(main, ["build", str(path), "--out", str(path.parent / "out")])
    assert build.exit_code == 1 and short not in build.output and "pass99" not in build.output
    assert not (path.parent / "out").exists()


def test_a_number_typed_as_password_is_read_as_its_digits(make_workbook):
    path = make_workbook(People=people_with_passwords(12345678, None))
    book, _ = api.load(path)
    assert book.people[0].pdf_password == "12345678"
    assert "12345678" not in repr(book.people[0])

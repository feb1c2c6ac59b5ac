"""The template as people use it: formats and validations that reach row 1,000 and stop a
wrong entry, Settings percents as percents, the texts in the workbook's language, prepare
naming the KPI and unit on every row, and a template that prints on one page's width."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner
from openpyxl import load_workbook
from openpyxl.utils import range_boundaries

from kpireport.cli.app import main
from kpireport.core.spec import SETTINGS, SHEETS
from kpireport.data_in.template import README_LINES, template_messages, template_texts
from tests.conftest import need_tool, soffice

TYPED = {"fraction", "money", "date", "int", "number"}


def init(path: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["init", str(path), "--year", "2026", *args])
    assert result.exit_code == 0, result.output
    return path


def test_blank_template_formats_and_validations_reach_row_1000(tmp_path):
    book = load_workbook(init(tmp_path / "blank.xlsx"))
    for spec in SHEETS:
        sheet = book[spec.name]
        checks = sheet.data_validations.dataValidation
        for index, column in enumerate(spec.columns, start=1):
            letter = sheet.cell(1, index).column_letter
            if column.kind in ("fraction", "money", "date"):
                assert sheet.column_dimensions[letter].number_format != "General", \
                    (spec.name, column.name)
            if column.kind in TYPED and spec.name != "Settings":
                found = [c for c in checks for r in c.sqref.ranges
                         if r.min_col <= index <= r.max_col]
                assert found, (spec.name, column.name)
                check = found[0]
                assert max(r.max_row for r in check.sqref.ranges) >= 1000
                assert check.showErrorMessage and check.errorStyle in (None, "stop")
                if column.kind == "fraction":
                    assert "25%" in check.error and "not 25" in check.error
        if spec.month_columns:  # the month columns are numbers, checked to row 1,000
            months = [c for c in checks if c.type == "decimal"]
            assert months and range_boundaries(str(months[0].sqref))[3] >= 1000
    people = book["People"]
    assert people.column_dimensions["H"].number_format == "0.0%"  # target_bonus_pct
    settings = book["Settings"]
    for row, setting in enumerate(SETTINGS, start=2):
        if setting.kind == "percent":
            assert settings.cell(row, 2).number_format == "0%", setting.name
            assert any(f"B{row}" == str(c.sqref) and "25%" in c.error
                       for c in settings.data_validations.dataValidation)


def test_init_locale_writes_the_texts_in_that_language(tmp_path):
    english = load_workbook(init(tmp_path / "en.xlsx"))
    book = load_workbook(init(tmp_path / "vi.xlsx", "--locale", "vi_VN"))
    assert book.sheetnames == english.sheetnames  # sheet and column names stay as SPEC
    for name in [n for n in english.sheetnames if n != "README"]:
        assert [c.value for c in book[name][1]] == [c.value for c in english[name][1]]
    assert book["README"]["A1"].value == "Sổ tính kpireport — cách điền"
    assert book["People"]["H1"].comment.text.startswith("Tỷ lệ thưởng chuẩn")
    assert book["People"]["A1"].comment.text.startswith("Bắt buộc. ")
    settings = {r[0].value: (r[1].value, r[2].value) for r in book["Settings"].iter_rows(min_row=2)}
    assert settings["locale"][0] == "vi_VN"
    assert settings["score_cap"][1] == "Điểm cao nhất một KPI có thể đạt."
    weight = next(c for c in book["Scorecards"].data_validations.dataValidation
                  if c.type == "decimal" and "C2" in str(c.sqref))
    assert weight.error == "Nhập tỷ lệ phần trăm như 25% (hoặc 0,25) — không nhập 25."
    assert weight.prompt.startswith("Phần đóng góp vào điểm")
    assert settings["currency"][0] == "VND"  # the locale's country's currency
    refused = CliRunner().invoke(main, ["init", str(tmp_path / "fr.xlsx"), "--locale", "fr_FR"])
    assert refused.exit_code == 2 and "available: en, vi" in refused.output
    assert not (tmp_path / "fr.xlsx").exists()


def settings_of(path: Path) -> dict:
    return {r[0].value: r[1].value for r in load_workbook(path)["Settings"].iter_rows(min_row=2)}


def test_init_currency_follows_the_locale_unless_given(tmp_path):
    assert settings_of(init(tmp_path / "en.xlsx"))["currency"] in (None, "USD")
    assert settings_of(init(tmp_path / "vi.xlsx", "--locale", "vi_VN"))["currency"] == "VND"
    assert settings_of(init(tmp_path / "en-us.xlsx", "--locale", "en_US"))["currency"] == "USD"
    given = settings_of(init(tmp_path / "vi-usd.xlsx", "--locale", "vi_VN", "--currency", "usd"))
    assert (given["locale"], given["currency"]) == ("vi_VN", "USD")
    bad = CliRunner().invoke(main, ["init", str(tmp_path / "x.xlsx"), "--currency", "DONG"])
    assert bad.exit_code == 2 and "'DONG' is not an ISO 4217 currency code" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "x.xlsx").exists()
    sample = CliRunner().invoke(main, ["init", str(tmp_path / "s.xlsx"), "--sample", "acme",
                                       "--currency", "EUR"])
    assert sample.exit_code == 2 and "--currency is for the blank template" in sample.output
    # the workbook checks as Vietnamese with dong: the settings are valid values
    from kpireport import api

    book, issues = api.check(tmp_path / "vi.xlsx")
    assert not [i for i in issues if i.code in ("bad-currency", "bad-locale")]


def test_every_template_text_has_a_vietnamese_translation():
    texts = template_texts("vi_VN")
    assert [t for t in template_messages() if not texts.get(t)] == []


def test_onlinecrm_sample_is_written_in_vietnamese(tmp_path):
    book = load_workbook(init(tmp_path / "crm.xlsx", "--sample", "onlinecrm"))
    assert book["README"]["A3"].value.startswith("1. Settings: nhập tên tổ chức")
    assert book["KPIs"]["C1"].comment.text.startswith("Bắt buộc. number (số)")


def test_prepare_names_the_kpi_and_unit_on_every_row(tmp_path):
    path = init(tmp_path / "kpis.xlsx")
    book = load_workbook(path)
    book["Settings"]["B2"] = "Example Co"
    book["Settings"]["B6"] = "2026-02"
    people = [["E1", "Alice", "Sales", "alice@example.com", None, None, 60000, 0.1],
              ["E2", "Bob", "Sales", "bob@example.com", None, "E1", 50000, 0.1]]
    for r, row in enumerate(people, start=2):
        for c, value in enumerate(row, start=1):
            book["People"].cell(r, c, value)
    kpis = [["REV", "Revenue", "currency", "higher", "sum"],
            ["CONV", "Conversion rate", "percent", "higher", "average"]]
    for r, row in enumerate(kpis, start=2):
        for c, value in enumerate(row, start=1):
            book["KPIs"].cell(r, c, value)
    lines = [["E1", "REV", 0.6, 1000], ["E1", "CONV", 0.4, 0.25], ["E2", "REV", 1, 800]]
    for r, row in enumerate(lines, start=2):
        for c, value in enumerate(row, start=1):
            book["Scorecards"].cell(r, c, value)
    for r, row in enumerate([["Below", 0, 0, 0], ["Meets", 0.9, 1, 0.03]], start=2):
        for c, value in enumerate(row, start=1):
            book["Bands"].cell(r, c, value)
    book.save(path)
    result = CliRunner().invoke(main, ["prepare", str(path)])
    assert result.exit_code == 0, result.output
    book = load_workbook(path)
    actuals = book["Actuals"]
    assert [c.value for c in actuals[1]][:5] == ["owner", "kpi_id", "kpi", "unit", "2026-01"]
    rows = {(r[0].value, r[1].value): r for r in actuals.iter_rows(min_row=2) if r[0].value}
    assert (rows[("E1", "CONV")][2].value, rows[("E1", "CONV")][3].value) == \
        ("Conversion rate", "percent")
    assert rows[("E1", "CONV")][4].number_format == "0.0%"  # the row a person types 25% into
    assert rows[("E1", "REV")][3].value == "currency"
    months = [c for c in actuals.data_validations.dataValidation if c.type == "decimal"]
    assert str(months[0].sqref).startswith("E2:")  # moved right with the month columns
    table = next(iter(actuals.tables.values()))
    assert table.ref.startswith("A1:P") and [c.name for c in table.tableColumns][2:4] == \
        ["kpi", "unit"]
    assert [c.value for c in book["Targets"][1]][2:4] == ["kpi", "unit"]
    # The person types January and February; check and build accept the labelled sheet.
    rows[("E1", "REV")][4].value, rows[("E1", "REV")][5].value = 900, 1100
    rows[("E1", "CONV")][4].value, rows[("E1", "CONV")][5].value = 0.22, 0.27
    rows[("E2", "REV")][4].value, rows[("E2", "REV")][5].value = 700, 820
    book.save(path)
    assert CliRunner().invoke(main, ["check", str(path)]).exit_code == 0
    again = CliRunner().invoke(main, ["prepare", str(path)])
    assert again.exit_code == 0
    assert [c.value for c in load_workbook(path)["Actuals"][1]].count("kpi") == 1
    built = CliRunner().invoke(main, ["build", str(path), "--out", str(tmp_path / "r"),
                                      "--format", "html"])
    assert built.exit_code == 0, built.output


def test_blank_template_prints_one_page_wide_with_the_readme_whole(tmp_path):
    path = init(tmp_path / "blank.xlsx")
    run = subprocess.run([*soffice(tmp_path), "--convert-to", "pdf", "--outdir", str(tmp_path),
                          str(path)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    pdf = tmp_path / "blank.pdf"
    info = subprocess.run([need_tool("pdfinfo"), str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages")))
    assert pages <= len(load_workbook(path).sheetnames)  # one page a sheet (was 24 strips)
    text = " ".join(subprocess.run([need_tool("pdftotext"), str(pdf), "-"], capture_output=True,
                                   text=True, check=True).stdout.split())
    for line, _ in README_LINES:
        assert " ".join(line.split()) in text, line

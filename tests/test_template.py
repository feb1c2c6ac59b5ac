from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from kpireport.core.errors import OutputError
from kpireport.core.spec import SHEETS
from kpireport.data_in import samples, template
from tests.conftest import soffice


@pytest.fixture(scope="module")
def blank(tmp_path_factory):
    path = tmp_path_factory.mktemp("t") / "kpis.xlsx"
    template.write_template(path, year=2026)
    return openpyxl.load_workbook(path)


def test_every_sheet_is_a_table_with_frozen_styled_header(blank):
    assert blank.sheetnames == ["README"] + [s.name for s in SHEETS]
    for spec in SHEETS:
        ws = blank[spec.name]
        assert list(ws.tables) == [f"tbl{spec.name}"]
        table = ws.tables[f"tbl{spec.name}"]
        names = [c.name for c in table.tableColumns]
        assert names == [c.value for c in ws[1] if c.value is not None]
        assert ws.freeze_panes in ("A2", "C2")
        assert ws["A1"].font.bold and ws["A1"].fill.fgColor.rgb.endswith("1F3A5F")
        assert all(ws.cell(1, i + 1).comment is not None for i in range(len(names)))
        assert ws.column_dimensions["A"].width >= 10


def test_year_lays_out_twelve_month_columns(blank):
    for name in ("Targets", "Actuals"):
        headers = [c.value for c in blank[name][1]]
        assert headers == ["owner", "kpi_id"] + [f"2026-{m:02d}" for m in range(1, 13)]


def _validations(ws):
    return {(str(dv.sqref).split(":")[0][:1], dv.formula1)
            for dv in ws.data_validations.dataValidation}


def test_drop_downs_for_enumerations_and_references(blank):
    kpis = _validations(blank["KPIs"])
    assert ("C", '"number,currency,percent"') in kpis
    assert ("D", '"higher,lower,range"') in kpis
    assert ("E", '"sum,average,last,min,max"') in kpis
    assert ("G", "Goals!$A$2:$A$5000") in kpis
    assert ("F", "People!$A$2:$A$5000") in _validations(blank["People"])
    assert ("B", "KPIs!$A$2:$A$5000") in _validations(blank["Scorecards"])
    assert ("B", "KPIs!$A$2:$A$5000") in _validations(blank["Actuals"])
    assert ("C", '"strategic,tactical,operational"') in _validations(blank["Goals"])
    assert ("D", "Goals!$A$2:$A$5000") in _validations(blank["Goals"])
    assert ("A", '"employee,department,company"') in _validations(blank["Recipients"])
    settings = {dv.formula1 for dv in blank["Settings"].data_validations.dataValidation}
    assert {'"skip,zero"', '"step,linear"', '"ytd,month"'} <= settings


def test_settings_prefilled_with_defaults(blank):
    rows = {r[0]: r[1] for r in blank["Settings"].iter_rows(min_row=2, values_only=True)}
    assert rows["currency"] == "USD" and rows["score_cap"] == 1.5 and rows["organization"] is None


def test_number_formats_in_samples(tmp_path):
    path = template.write_workbook(tmp_path / "acme.xlsx", samples.acme())
    book = openpyxl.load_workbook(path)
    people = book["People"]
    assert people["G2"].number_format == "#,##0.00"  # base_salary
    assert people["H2"].number_format == "0.0%"  # target_bonus_pct
    assert people["I2"].number_format == "yyyy-mm-dd"
    assert book["Scorecards"]["C2"].number_format == "0.0%"


def test_refuses_to_overwrite_without_force(tmp_path):
    path = tmp_path / "kpis.xlsx"
    template.write_template(path)
    with pytest.raises(OutputError, match="already exists"):
        template.write_template(path)
    template.write_template(path, force=True)


def test_regenerated_samples_match_committed_files(tmp_path):
    from pathlib import Path

    committed = Path(__file__).resolve().parents[1] / "sample_workbooks"
    for name, build in samples.SAMPLES.items():
        fresh = template.write_workbook(tmp_path / f"{name}.xlsx", build())
        old = openpyxl.load_workbook(committed / f"{name}.xlsx")
        new = openpyxl.load_workbook(fresh)
        assert old.sheetnames == new.sheetnames
        for ws in new.worksheets:
            assert list(old[ws.title].values) == list(ws.values), (name, ws.title)


@pytest.mark.parametrize("args, message", [
    (["init", "/nonexistent-dir/x.xlsx"], "does not exist"),
    (["init", "/proc/x.xlsx"], "cannot write /proc/x.xlsx"),
])
def test_init_bad_paths_are_one_line_errors(args, message):
    run = subprocess.run([sys.executable, "-m", "kpireport", *args], capture_output=True,
                         text=True)
    assert run.returncode == 1
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_template_opens_in_libreoffice(tmp_path):
    path = template.write_template(tmp_path / "kpis.xlsx", year=2026)
    run = subprocess.run([*soffice(tmp_path), "--convert-to", "pdf", "--outdir",
                          str(tmp_path), str(path)], capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "kpis.pdf").stat().st_size > 1000


def test_synthetic_sample_is_fast_enough_and_valid(tmp_path):
    from kpireport import api

    path = template.write_workbook(tmp_path / "syn.xlsx", samples.synthetic(60))
    book, issues = api.check(path)
    assert book is not None, [i for i in issues if i.severity == "error"][:3]
    assert len(book.people) == 60
    per_person = len(book.scorecards) / 60
    assert 9 <= per_person <= 11.5


def test_settings_defaults_have_one_home():
    """The template's defaults, validation and the typed Settings agree because the first two
    are read from the last (kpireport.core.model.Settings)."""
    from dataclasses import MISSING, fields

    from kpireport.core.model import Settings
    from kpireport.core.spec import SETTINGS

    model = {f.name: f.default for f in fields(Settings)}
    assert set(model) == {s.name for s in SETTINGS}
    for setting in SETTINGS:
        want = model[setting.name]
        if want is MISSING:
            assert setting.default is None
        elif isinstance(want, bool):
            assert setting.default == ("yes" if want else "no")
        else:
            assert setting.default == want
    source = (Path(__file__).resolve().parents[1] / "kpireport" / "read" / "validate"
              / "settings.py").read_text()
    assert "values.get(" not in source  # no second copy of a default

"""The command line, run for real (in-process with click's runner, or as a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import openpyxl
import pytest
from click.testing import CliRunner

from kpireport import __version__
from kpireport.cli.app import main
from tests.conftest import BASE, write_xlsx

COMMANDS = ["init", "prepare", "check", "build", "send", "run", "passwords", "doctor", "diff",
            "approve", "status"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_ends_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.output and f"kpireport {command}" in result.output


def test_version_and_module_entry_point():
    assert invoke("--version").output.strip() == f"kpireport, version {__version__}"
    run = subprocess.run([sys.executable, "-m", "kpireport", "--help"], capture_output=True,
                         text=True)
    assert run.returncode == 0 and "Example:" in run.stdout


def test_usage_error_is_exit_2():
    assert invoke("check").exit_code == 2
    assert invoke("build", "x.xlsx", "--period", "2026-13").exit_code == 2


def test_check_text_and_json(make_workbook):
    good = make_workbook()
    result = invoke("check", str(good))
    assert result.exit_code == 0 and "valid" in result.output
    rows = [r[:] for r in BASE["People"]]
    rows[2][4] = "E99"
    bad = make_workbook(People=rows)
    result = invoke("check", str(bad), "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["valid"] is False
    assert [(i["sheet"], i["cell"], i["code"]) for i in doc["issues"]
            if i["severity"] == "error"] == [("People", "E3", "unknown-reference")]
    text = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["check", str(bad)])
    row = next(line for line in text.output.splitlines() if "unknown-reference" in line)
    # the message never repeats the place its 'where' column shows
    assert "People!E3" in row and "manager E99 is not in the People sheet" in row
    assert "People!E3: manager" not in text.output


def test_check_unreadable_file_json(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_text("a,b\n1,2\n")
    result = invoke("check", str(path), "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.output)["issues"][0]["code"] == "unreadable-file"


def test_build_on_invalid_workbook_is_one_line_exit_1(make_workbook, tmp_path):
    rows = [r[:] for r in BASE["Bands"]]
    rows[1][1] = 0.2
    run = subprocess.run([sys.executable, "-m", "kpireport", "build",
                          str(make_workbook(Bands=rows)), "--out", str(tmp_path / "out")],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "Bands!B2" in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_init_sample_and_synthetic(tmp_path):
    assert invoke("init", str(tmp_path / "a.xlsx"), "--sample", "acme").exit_code == 0
    result = invoke("init", str(tmp_path / "s.xlsx"), "--sample", "synthetic",
                    "--employees", "30")
    assert result.exit_code == 0
    assert invoke("check", str(tmp_path / "s.xlsx")).exit_code == 0
    again = invoke("init", str(tmp_path / "a.xlsx"))
    assert again.exit_code == 1 and "--force" in again.output


# ------------------------------------------------------------------ prepare
def test_prepare_lays_out_rows_and_keeps_every_value(tmp_path):
    scorecards = [r[:] for r in BASE["Scorecards"]] + [["E2", "CAC", 0, 50]]
    actuals = [["owner", "kpi_id", "2026-01", "note"], ["E1", "REV", 90, "typed by hand"]]
    path = write_xlsx(tmp_path / "book.xlsx", {**BASE, "Scorecards": scorecards,
                                               "Actuals": actuals,
                                               "Targets": [["owner", "kpi_id"]]})
    original = path.read_bytes()
    result = invoke("prepare", str(path), "--year", "2026")
    assert result.exit_code == 0, result.output
    backup = tmp_path / "book.bak.xlsx"
    assert backup.read_bytes() == original
    sheet = openpyxl.load_workbook(path)["Actuals"]
    header = [c.value for c in sheet[1]]
    # prepare puts the KPI name and unit beside kpi_id (test_template_use.py has more)
    assert header[:6] == ["owner", "kpi_id", "kpi", "unit", "2026-01", "note"]
    assert header[6:] == [f"2026-{m:02d}" for m in range(2, 13)]
    rows = [tuple(c.value for c in row[:6]) for row in sheet.iter_rows(min_row=2)]
    assert rows[0] == ("E1", "REV", "Revenue", "currency", 90, "typed by hand")
    assert [(r[0], r[1]) for r in rows] == [("E1", "REV"), ("E1", "CAC"), ("E2", "REV"),
                                            ("E2", "CAC")]
    targets = openpyxl.load_workbook(path)["Targets"]
    assert targets.max_row == 5
    second = invoke("prepare", str(path))
    assert second.exit_code == 0 and "0 row(s)" in second.output
    assert (tmp_path / "book.bak-2.xlsx").exists()


@pytest.mark.parametrize("content, message", [
    (b"not a workbook at all", "not an .xlsx"),
    (None, "no Scorecards sheet"),
])
def test_prepare_refuses_bad_files_untouched(tmp_path, content, message):
    path = tmp_path / "book.xlsx"
    if content is None:
        write_xlsx(path, {"People": BASE["People"]})
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    run = subprocess.run([sys.executable, "-m", "kpireport", "prepare", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr
    assert path.read_bytes() == before
    assert not (tmp_path / "book.bak.xlsx").exists()




@pytest.mark.parametrize("through_entry", [True, False])
def test_an_interrupted_command_leaves_no_resource_tracker_warning(through_entry):
    """Ctrl-C during a PDF build can leave a worker semaphore for multiprocessing's resource
    tracker, whose warning then followed 'Interrupted.'. The command passes the tracker a
    filter for it (the bare interpreter, the control, still warns)."""
    script = ("import os, sys\n"
              "import kpireport.cli.app as cli\n"
              "def main():\n"
              "    import multiprocessing as mp\n"
              "    global semaphore\n"
              "    semaphore = mp.get_context('spawn').Semaphore()  # then gone abruptly\n"
              "    os._exit(130)\n"
              "cli.main = main\n"
              + ("cli.entry()\n" if through_entry else "main()\n"))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 130
    assert ("leaked semaphore" in run.stderr) is not through_entry, run.stderr

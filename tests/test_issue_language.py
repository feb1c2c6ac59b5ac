"""Issue messages, fixes and titles in the workbook's language (English and Vietnamese)."""

from __future__ import annotations

import string

import pytest

from kpireport.core.catalogue import ENTRIES
from kpireport.core.i18n import translations
from kpireport.core.issues import (
    Issue,
    fix_in,
    in_table,
    issue,
    text_in,
    title_in,
)
from kpireport.read.cells import address_hint, did_you_mean
from kpireport.read.validate.people import password_problem

VI = translations("vi_VN").gettext
EN = translations("en_US").gettext
SAME_IN_BOTH = {"{error}", "report_period {reason}"}  # a passed-through text; a setting


def fields(template: str) -> list[str]:
    return sorted(f"{name}!{conv}:{spec}"
                  for _, name, spec, conv in string.Formatter().parse(template)
                  if name is not None)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.code)
def test_every_template_title_and_fix_is_translated_with_the_same_fields(entry):
    assert VI(entry.title) != entry.title and VI(entry.fix) != entry.fix
    for form in entry.forms.values():
        translated = VI(form.text)
        assert fields(translated) == fields(form.text), (entry.code, form.text)
        assert translated != form.text or form.text in SAME_IN_BOTH, form.text
        assert EN(form.text) == form.text


def test_a_message_in_vietnamese_with_its_hint_translated():
    item = issue("unknown-setting", "Settings", "A18", name="mau_sac",
                 hint=did_you_mean("locales", ["locale", "currency"]))
    assert item.message == ("Settings!A18: 'mau_sac' is not a kpireport setting; ignored; "
                            "did you mean locale?")
    assert text_in(item, VI) == ("'mau_sac' không phải thiết lập của kpireport; được bỏ qua; "
                                 "có phải ý bạn là locale?")
    assert text_in(item, EN) == item.text  # never the place: the page shows it in its columns
    assert fix_in(item.code, VI) == "Xoá dòng này hoặc sửa lại tên thiết lập."
    assert title_in(item.code, VI) == "Thiết lập không xác định"


def test_composed_phrases_are_translated_inside_the_message():
    item = issue("bad-pdf-password", "People", "J4", problem=password_problem("short"))
    assert text_in(item, VI) == "pdf_password ngắn hơn 8 ký tự (giá trị không được hiển thị)"
    email = issue("bad-email", "People", "D3", form="address", value="Hà <ha@x.vn>",
                  hint=address_hint("Hà <ha@x.vn>"))
    assert text_in(email, VI) == ("'Hà <ha@x.vn>' không phải một địa chỉ e-mail hợp lệ duy "
                                  "nhất; chỉ ghi riêng địa chỉ: ha@x.vn")
    ref = issue("unknown-reference", "People", "E3", what="manager", id="E99",
                listed_in="People", hint="")
    assert text_in(ref, VI) == "quản lý E99 không có trong trang tính People"


def test_the_lists_a_check_joins_are_joined_in_the_pages_language():
    hint = did_you_mean("E0O1", ["E001", "E010"])
    ref = issue("unknown-reference", "People", "F3", what="manager", id="E0O1",
                listed_in="People", hint=hint)
    assert " or " in text_in(ref, EN) and " or " not in text_in(ref, VI)
    assert "E001 hoặc E010" in text_in(ref, VI) or "E010 hoặc E001" in text_in(ref, VI)
    slip = issue("percent-as-whole-number", "Scorecards", "D5", form="target-bounds",
                 value=95.0, kpi="NPS", bounds="threshold and stretch", like=0.9,
                 fraction=0.95)
    assert "threshold và stretch" in text_in(slip, VI)
    assert "threshold and stretch" in text_in(slip, EN)


def test_an_issue_without_its_fields_keeps_its_text():
    read_back = Issue("error", "not-a-number", "Scorecards", "C2", "'x' is not a number")
    assert text_in(read_back, VI) == "'x' is not a number"


def test_check_prints_each_message_once_beside_its_place(tmp_path):
    """`kpireport check` stays in English, and its message column never repeats the place
    its 'where' column shows (a merged range, a place of its own, stays in front)."""
    from click.testing import CliRunner
    from openpyxl import load_workbook

    from kpireport.cli.app import main
    from tests.test_web import broken_acme

    book = load_workbook(broken_acme(tmp_path / "kpis.xlsx"))
    book["People"].merge_cells("K2:L2")
    book.save(tmp_path / "kpis.xlsx")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "kpis.xlsx")],
                                terminal_width=200)
    row = next(line for line in result.output.splitlines() if "not-a-number" in line)
    assert "Scorecards!C2" in row and "'forty' is not a number" in row
    assert "Scorecards!C2: 'forty'" not in result.output
    merged = issue("merged-cells", "People", "K2", range="K2:L2")
    assert in_table(merged) == "People!K2:L2: merged cells; only the top-left cell keeps a " \
                               "value, unmerge them"

"""Reading exports: encodings, separators, decimal commas and dates as exporters write them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from kpireport.core.model import month_of
from kpireport.data_in.sources import (
    SourceError,
    detect_decimal,
    months_of,
    parse_dates,
    parse_numbers,
    read_source,
)


def text_column(values):
    series = pd.Series(values, dtype=object)
    series.attrs["all_text"] = True
    return series


@pytest.mark.parametrize("values, delimiter, decimal", [
    (["1,234.56", "12.50", "7"], ",", "."),
    (["1.234,56", "12,5", "7"], ";", ","),
    (["2.650.000.000", "38"], ",", ","),  # Vietnamese: dots group thousands
    (["1,234,567", "89"], ";", "."),  # two commas in one number: they group thousands
    (["1234", "5"], ";", ","),  # no evidence: a ';' file is a decimal-comma file
    (["1234", "5"], ",", "."),
])
def test_decimal_separator_is_read_from_the_numbers(values, delimiter, decimal):
    assert detect_decimal([text_column(values)], delimiter) == decimal


@pytest.mark.parametrize("text, decimal, number", [
    ("1,234.56", ".", 1234.56), ("1.234,56 €", ",", 1234.56), ("$12,500.00", ".", 12500.0),
    ("USD 1,200", ".", 1200.0), ("1 200,50", ",", 1200.5), ("\u00a01\u00a0200,50", ",", 1200.5),
    ("(1,200.00)", ".", -1200.0), ("-3.5", ".", -3.5), ("25%", ".", 0.25),
    ("12,5%", ",", 0.125), ("2.650.000.000 ₫", ",", 2_650_000_000.0), ("1e3", ".", 1000.0),
    ("n/a", ".", None), ("twelve", ".", None), ("inf", ".", None), ("-", ".", None),
    ("", ".", "blank"), ("   ", ".", "blank"),
])
def test_numbers_as_exports_write_them(text, decimal, number):
    values, blank = parse_numbers(text_column([text]), decimal)
    if number == "blank":
        assert blank[0] and np.isnan(values[0])
    elif number is None:
        assert not blank[0] and np.isnan(values[0])
    else:
        assert values[0] == pytest.approx(number)


@pytest.mark.parametrize("values, day_first, month", [
    (["2026-03-15", "2026-03-31"], False, (2026, 3)),
    (["2026-03-15 10:32", "2026-03-01 00:00"], False, (2026, 3)),
    (["2026-03-31T23:30:00Z", "2026-03-01T08:00:00+07:00"], False, (2026, 3)),
    (["03/15/2026", "03/01/2026"], False, (2026, 3)),  # month first: 15 is no month
    (["15/03/2026", "01/03/2026"], False, (2026, 3)),  # day first: the data decide
    (["04/03/2026", "09/03/2026"], True, (2026, 3)),  # ambiguous: day first asked
    (["04/03/2026", "04/09/2026"], False, (2026, 4)),  # ambiguous: month first
    (["15.03.2026", "1.03.2026"], True, (2026, 3)),
    (["Mar 15, 2026"], False, (2026, 3)),
    (["2026-03"], False, (2026, 3)),
    ([" 2026-03-15 "], False, (2026, 3)),
    (["2026-03", "Mar 2026", "03/2026", "Tháng 3/2026"], False, (2026, 3)),  # months
])
def test_dates_in_the_exports_own_formats(values, day_first, month):
    stamps, blank, _ = parse_dates(text_column(values), None, day_first)
    assert not blank.any()
    assert set(months_of(stamps).tolist()) == {month_of(*month)}


def test_date_cells_and_bad_dates():
    series = pd.Series([dt.datetime(2026, 3, 2, 9, 30), dt.date(2026, 4, 1), "2026-02-30",
                        None], dtype=object)
    stamps, blank, _ = parse_dates(series, None, False)
    assert months_of(stamps).tolist() == [month_of(2026, 3), month_of(2026, 4), -1, -1]
    assert blank.tolist() == [False, False, False, True]


@pytest.mark.parametrize("encoding, bom, delimiter", [
    ("utf-8", b"", ","), ("utf-8", b"\xef\xbb\xbf", ";"), ("cp1252", b"", ";"),
    ("utf-16", b"", "\t"),
])
def test_encodings_and_separators_are_detected(tmp_path, encoding, bom, delimiter):
    cost = "1234.56 €" if delimiter == "," else "1.234,56 €"
    text = delimiter.join(["Kampagne", "Verantwortlich", "Kosten"]) + "\r\n" + \
        delimiter.join(["Café Frühjahr", "Zoë Adams", cost]) + "\r\n"
    path = tmp_path / "export.csv"
    path.write_bytes(bom + text.encode(encoding))
    source = read_source(path)
    assert source.delimiter == delimiter and source.records == 1
    assert list(source.frame.columns) == ["Kampagne", "Verantwortlich", "Kosten"]
    assert source.frame.iloc[0].tolist() == ["Café Frühjahr", "Zoë Adams", cost]
    assert source.lines.tolist() == [2]


def test_source_lines_count_quoted_line_breaks_and_blank_lines(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('a,b\n1,"two\nlines"\n\n3,x\n')
    source = read_source(path)
    assert source.records == 2 and source.lines.tolist() == [2, 5]


@pytest.mark.parametrize("content, message", [
    (b"%PDF-1.7\n", "a PDF document"), (b"<!DOCTYPE html><html>", "an HTML page"),
    (b'[{"owner": "E1"}]', "a JSON document"), (b"\x89PNG\r\n\x1a\n\0\0", "an image"),
    (b"just one column\nof words\n", "found one column only"), (b"\n\n", "the file is empty"),
])
def test_what_is_not_an_export_is_named(tmp_path, content, message):
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        read_source(path)


def test_an_xlsx_report_with_a_title_block(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Opportunities report"])
    ws.append(["Filtered by: Close Date = THIS QUARTER"])
    ws.append([])
    ws.append(["Opportunity Owner", "Amount", "Close Date"])
    ws.append(["Lucia Ortiz", 12500, dt.datetime(2026, 3, 15)])
    ws.append(["Sam Okafor", 800, dt.datetime(2026, 3, 16)])
    wb.save(tmp_path / "report.xlsx")
    source = read_source(tmp_path / "report.xlsx",
                         header_hint=("opportunity owner", "CLOSE DATE"))
    assert list(source.frame.columns) == ["Opportunity Owner", "Amount", "Close Date"]
    assert source.records == 2 and source.lines.tolist() == [5, 6]

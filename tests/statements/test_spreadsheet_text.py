"""Text for spreadsheets: a formula-like start is neutralised in CSV, text cells stay text."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.statements.spreadsheet_text import neutralise_formula
from clearhouse.statements.tables import write_table_csv, write_table_workbook

TRIGGERS = ["=", "+", "-", "@", "\t", "\r"]
"""OWASP's list of first characters that a spreadsheet may read as the start of a formula."""


@given(st.sampled_from(TRIGGERS), st.text())
def test_a_text_starting_like_a_formula_comes_out_behind_a_single_quote(
    first: str, rest: str
) -> None:
    text = first + rest

    assert neutralise_formula(text) == f"'{text}"


@given(st.text().filter(lambda text: text[:1] not in TRIGGERS))
def test_any_other_text_comes_out_unchanged(text: str) -> None:
    assert neutralise_formula(text) == text


def test_a_csv_table_quotes_formula_like_text_and_writes_numbers_as_they_are() -> None:
    rows = [["=1+2", -5], ["-2+3", Decimal("-1.50")], ["@SUM(A1)", None], ["x;=1+2", 7]]

    text = write_table_csv(["text", "number"], rows)

    assert list(csv.reader(io.StringIO(text))) == [
        ["text", "number"],
        ["'=1+2", "-5"],
        ["'-2+3", "-1.50"],
        ["'@SUM(A1)", ""],
        ["x;=1+2", "7"],
    ]
    assert text.splitlines()[1:3] == ['"\'=1+2",-5', '"\'-2+3",-1.50']


def test_a_table_workbook_writes_text_as_quote_prefixed_text_and_numbers_as_numbers() -> None:
    data = write_table_workbook("Table", ["text", "number"], [["=1+2", -5], ["plain", 3]])

    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    for text, number in sheet.iter_rows():
        assert (text.data_type, text.quotePrefix) == ("s", True), text.coordinate
        if text.row > 1:
            assert (number.data_type, number.quotePrefix) == ("n", False), number.coordinate
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [
        ["text", "number"],
        ["=1+2", -5],
        ["plain", 3],
    ]


def test_a_text_longer_than_a_cell_holds_is_cut_at_32767_characters() -> None:
    data = write_table_workbook("T", ["text"], [["=" + "x" * 40_000], ["short"]])
    sheet = openpyxl.load_workbook(io.BytesIO(data))["T"]

    assert sheet["A2"].value == "=" + "x" * 32_766  # Excel's limit: 32,767 characters
    assert sheet["A2"].data_type == "s"
    assert sheet["A3"].value == "short"

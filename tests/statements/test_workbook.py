"""The statement workbooks: opened again with openpyxl and pandas, checked against the JSON."""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import math
import tracemalloc
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import openpyxl
import pandas as pd
import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from openpyxl.cell.cell import MergedCell
from openpyxl.worksheet._writer import ALL_TEMP_FILES

from clearhouse.crypto.ed25519 import CoalitionKey, verify
from clearhouse.domain.contracts import ContractVersion
from clearhouse.domain.netting import (
    Aggregate,
    Cohort,
    Expired,
    LineKind,
    PartnerNet,
    PointsRollForward,
    coalition_margin,
    net_partner,
)
from clearhouse.domain.records import StatementEntry
from clearhouse.statements.charts import DailyPoints
from clearhouse.statements.documents import (
    SignedStatement,
    coalition_document,
    partner_document,
    sign_statement,
)
from clearhouse.statements.model import CoalitionStatement
from clearhouse.statements.workbook import write_statement_workbook

MONEY = "#,##0.00_);(#,##0.00)"
"""Two decimals, a negative amount in brackets as accountants read it."""
DATETIME = "yyyy-mm-dd hh:mm:ss"
SHARE = "0.00%"
EXCEL_ROWS = 1_048_576

KEY = CoalitionKey.of(Ed25519PrivateKey.generate())
PERIOD = "2026-11"
LEDGER_ROOT = hashlib.sha256(b"the period's root").digest()
GENERATED_AT = datetime(2026, 12, 1, 0, 5, 7, 250000, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Berlin")
DIRECTION_IN_WORDS = {
    "coalition_pays_partner": "the coalition pays the partner",
    "partner_pays_coalition": "the partner pays the coalition",
    "nothing_due": "nothing is due",
}
"""The JSON statement's direction codes and the words a workbook shows for them."""
HOSTILE = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "=cmd|' /C calc'!A0", "#N/A"]


# --- building statements --------------------------------------------------------------------


def contract_version(
    partner_id: str,
    number: int,
    *,
    issue_rate: str,
    redemption_rate: str,
    fee: str = "0",
    breakage_share: str = "0",
    legal_name: str = "",
) -> ContractVersion:
    return ContractVersion(
        partner_id=partner_id,
        version=number,
        effective_from=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=30 * number),
        legal_name=legal_name or f"{partner_id} GmbH",
        currency="EUR",
        issue_rate=Decimal(issue_rate),
        redemption_rate=Decimal(redemption_rate),
        fee_per_entry=Decimal(fee),
        breakage_share_rate=Decimal(breakage_share),
        max_points_per_transaction=10_000 * number,
        max_points_per_member_per_day=50_000 + number,
        grants={},
        sha256=hashlib.sha256(f"{partner_id} v{number}".encode()).hexdigest(),
        source="",
    )


@dataclass(frozen=True)
class Partner:
    partner_id: str
    legal_name: str
    versions: list[ContractVersion]
    aggregates: list[Aggregate]
    expired: list[Expired] = field(default_factory=list)

    def net(self) -> PartnerNet:
        versions = {v.version: v for v in self.versions}
        return net_partner(self.partner_id, self.aggregates, versions, self.expired)


def aggregate(
    partner_id: str, version: int, kind: LineKind, points: int, reversed_points: int = 0
) -> Aggregate:
    return Aggregate(partner_id, version, kind, points, reversed_points, entries=7 * version + 3)


def partners(alpha_legal_name: str = "Alpha Retail GmbH") -> list[Partner]:
    """Three partners: one paid (two versions, a fee on the second), one paying, one even."""
    alpha, beta, gamma = "p-alpha", "p-beta", "p-gamma"
    return [
        Partner(
            alpha,
            alpha_legal_name,
            [
                contract_version(alpha, 1, issue_rate="0.012345", redemption_rate="0.019999"),
                contract_version(
                    alpha, 2, issue_rate="0.0105", redemption_rate="0.021", fee="0.05"
                ),
            ],
            [
                aggregate(alpha, 1, LineKind.ISSUE, 1_000, 100),
                aggregate(alpha, 1, LineKind.REDEMPTION, 4_000),
                aggregate(alpha, 2, LineKind.ISSUE, 2_501, 1),
                aggregate(alpha, 2, LineKind.REDEMPTION, 3_333, 33),
            ],
        ),
        Partner(
            beta,
            "Beta Fuel AG",
            [contract_version(beta, 3, issue_rate="0.010001", redemption_rate="0.009")],
            [
                aggregate(beta, 3, LineKind.ISSUE, 90_000, 1_234),
                aggregate(beta, 3, LineKind.REDEMPTION, 5_000, 5),
            ],
        ),
        Partner(
            gamma,
            "Gamma Air SE",
            [contract_version(gamma, 1, issue_rate="0.01", redemption_rate="0.01")],
            [
                aggregate(gamma, 1, LineKind.ISSUE, 700),
                aggregate(gamma, 1, LineKind.REDEMPTION, 700),
            ],
        ),
    ]


def expiring_partner() -> Partner:
    """Alpha, whose issues expired under both versions; only version 1 shares breakage, at
    0.004 per point: a breakage line of 2,000 x 0.004 = 8.00 EUR. At the issue rates the
    expired points are worth 2,000 x 0.012345 = 24.69 and 500 x 0.0105 = 5.25 EUR."""
    alpha = partners()[0]
    first = contract_version(
        alpha.partner_id,
        1,
        issue_rate="0.012345",
        redemption_rate="0.019999",
        breakage_share="0.004",
    )
    expired = [Expired(alpha.partner_id, 1, 2_000), Expired(alpha.partner_id, 2, 500)]
    return Partner(
        alpha.partner_id, alpha.legal_name, [first, alpha.versions[1]], alpha.aggregates, expired
    )


def partner_statement(partner: Partner, sequence: int = 4) -> SignedStatement:
    net = partner.net()
    document = partner_document(
        period=PERIOD,
        sequence=sequence,
        coalition="Clearhouse test coalition",
        net=net,
        legal_name=partner.legal_name,
        currency="EUR",
        versions=partner.versions,
        entries=sum(a.entries for a in partner.aggregates),
        ledger_root=LEDGER_ROOT,
        generated_at=GENERATED_AT,
        opening_position=Decimal("-1234.56"),
    )
    return sign_statement(document, KEY)


def coalition_statements(
    members: Sequence[Partner] | None = None, cohorts: Sequence[Cohort] = ()
) -> tuple[SignedStatement, list[SignedStatement]]:
    """The coalition's statement and its partners' (``partners()`` unless given); with
    ``cohorts``, members hold at the cut-off what the cohorts hold, and the opening follows."""
    members = partners() if members is None else members
    nets = [p.net() for p in members]
    issued = sum(line.quantity for n in nets for line in n.lines if line.kind is LineKind.ISSUE)
    redeemed = sum(
        line.quantity for n in nets for line in n.lines if line.kind is LineKind.REDEMPTION
    )
    expired, adjusted = 1_500, -20
    opening = 1_000_000
    if cohorts:
        opening = sum(c.outstanding for c in cohorts) - issued + redeemed + expired - adjusted
    document = coalition_document(
        period=PERIOD,
        sequence=9,
        coalition="Clearhouse test coalition",
        currency="EUR",
        nets=nets,
        legal_names={p.partner_id: p.legal_name for p in members},
        margin=coalition_margin(nets),
        roll_forward=PointsRollForward(
            opening=opening,
            issued=issued,
            redeemed=redeemed,
            expired=expired,
            adjusted=adjusted,
            closing_member_balances=opening + issued - redeemed - expired + adjusted,
        ),
        open_holds=(3, 1_200),
        ledger_root=LEDGER_ROOT,
        generated_at=GENERATED_AT,
        cohorts=cohorts,
    )
    coalition = sign_statement(document, KEY)
    return coalition, [partner_statement(p) for p in members]


def entries(
    count: int, *, partner_ids: Sequence[str | None] = ("p-alpha",), references: Sequence[str] = ()
) -> list[StatementEntry]:
    """``count`` entries, a second apart, some with another zone, without ``occurred_at``, or
    reversing an earlier one."""
    start = datetime(2026, 11, 1, 0, 0, 1, 500000, tzinfo=UTC)
    berlin = timezone(timedelta(hours=1))
    made: list[StatementEntry] = []
    for i in range(count):
        recorded = start + timedelta(seconds=i, microseconds=1000 * (i % 7))
        reversal = i % 5 == 4 and bool(made)
        made.append(
            StatementEntry(
                entry_id=str(uuid.uuid4()),
                recorded_at=recorded.astimezone(berlin) if i % 2 else recorded,
                occurred_at=None if i % 3 == 2 else recorded - timedelta(minutes=3),
                kind="reversal" if reversal else ("issue", "redeem")[i % 2],
                partner_id=partner_ids[i % len(partner_ids)],
                member_id=f"m-{i:020d}",
                points=-(i + 1) if reversal else 10 * i + 1,
                contract_version=None if partner_ids[i % len(partner_ids)] is None else 1 + i % 2,
                reference=references[i % len(references)] if references else f"receipt {i}",
                reversal_of=made[-1].entry_id if reversal else None,
            )
        )
    return made


async def stream(rows: Iterable[StatementEntry]) -> AsyncIterator[StatementEntry]:
    for row in rows:
        yield row


async def write(
    statement: SignedStatement,
    others: Sequence[SignedStatement] = (),
    rows: Iterable[StatementEntry] = (),
    **options: Any,
) -> bytes:
    out = io.BytesIO()
    options = {"public_key": KEY.public_key, "zone": ZONE, **options}
    await write_statement_workbook(statement, list(others), stream(rows), out, **options)
    return out.getvalue()


# --- reading them back ----------------------------------------------------------------------


def signed_json(statement: SignedStatement) -> Any:
    """The statement as its signed JSON says it, which the workbook's figures must show."""
    return json.loads(statement.document)


def load(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data))


def field(sheet: Any, label: str) -> Any:
    """The value cell of the one line labelled ``label`` (a unit may follow): the first cell
    right of the label that holds a value (a total stands under its column), else column B."""
    found = [
        next((cell for cell in row[1:] if cell.value is not None), row[1])
        for row in sheet.iter_rows()
        if row[0].value == label
        or (isinstance(row[0].value, str) and row[0].value.startswith(f"{label} ("))
    ]
    assert len(found) == 1, f"{label!r} is on {len(found)} lines of {sheet.title}"
    return found[0]


def table(sheet: Any, first_header: str, *, after: str | None = None) -> list[tuple[Any, ...]]:
    """The rows of cells under the header row that starts with ``first_header`` (the first
    such row below the one that starts with ``after``, when given), to a blank."""
    rows = list(sheet.iter_rows())
    below = 0 if after is None else next(i for i, row in enumerate(rows) if row[0].value == after)
    start = next(i for i, row in enumerate(rows) if i >= below and row[0].value == first_header)
    found = []
    for row in rows[start + 1 :]:
        if all(cell.value is None for cell in row) or isinstance(row[1], MergedCell):
            break  # a blank, or a total line under the table (its label merged across)
        found.append(tuple(row))
    return found


def assert_money(cell: Any, expected: str) -> None:
    assert cell.data_type == "n", f"{cell.coordinate} is not a number: {cell.value!r}"
    assert isinstance(cell.value, int | float)
    assert Decimal(str(cell.value)) == Decimal(expected), cell.coordinate
    assert cell.number_format == MONEY, cell.coordinate


def assert_rate(cell: Any, expected: str) -> None:
    """A rate shown exactly as the contract gives it: as many decimals as ``expected`` has."""
    assert cell.data_type == "n", f"{cell.coordinate} is not a number: {cell.value!r}"
    assert Decimal(str(cell.value)) == Decimal(expected), cell.coordinate
    decimals = len(expected.partition(".")[2])
    assert cell.number_format == ("0." + "0" * decimals if decimals else "0"), cell.coordinate


def assert_points(cell: Any, expected: int) -> None:
    assert cell.data_type == "n", f"{cell.coordinate} is not a number: {cell.value!r}"
    assert cell.value == expected, cell.coordinate
    assert isinstance(cell.value, int)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def naive_utc_text(text: str) -> datetime:
    return naive_utc(datetime.fromisoformat(text))


def assert_moment(cell: Any, expected: datetime) -> None:
    assert cell.is_date, f"{cell.coordinate} is not a date: {cell.value!r}"
    assert cell.value == expected, cell.coordinate
    assert cell.number_format == DATETIME, cell.coordinate


def assert_share(cell: Any, expected: str | None) -> None:
    """A share as a number in a percent format (``None``: an empty cell)."""
    if expected is None:
        assert cell.value is None, f"{cell.coordinate} holds {cell.value!r}"
        return
    assert cell.data_type == "n", f"{cell.coordinate} is not a number: {cell.value!r}"
    assert Decimal(str(cell.value)) == Decimal(expected), cell.coordinate
    assert cell.number_format == SHARE, cell.coordinate


# --- the tests ------------------------------------------------------------------------------


async def test_a_partner_workbook_has_the_five_sheets_in_order() -> None:
    data = await write(partner_statement(partners()[0]), rows=entries(3))

    assert load(data).sheetnames == [
        "Summary",
        "Entries",
        "Reconciliation",
        "Contract",
        "Integrity",
    ]
    assert list(pd.read_excel(io.BytesIO(data), sheet_name=None)) == load(data).sheetnames


async def test_the_partner_summary_shows_the_statements_figures() -> None:
    statement = partner_statement(partners()[0])
    body = signed_json(statement)
    summary = load(await write(statement))["Summary"]

    assert field(summary, "Coalition").value == body["coalition"]
    assert field(summary, "Partner").value == body["partner_id"]
    assert field(summary, "Legal name").value == body["legal_name"]
    assert field(summary, "Period").value == PERIOD
    assert field(summary, "Currency").value == body["currency"]
    assert field(summary, "Statement id").value == body["statement_id"]
    assert_points(field(summary, "Sequence number"), body["sequence"])
    assert_moment(field(summary, "Generated at (UTC)"), naive_utc(GENERATED_AT))
    # 00:05:07 UTC on 1 December is 01:05:07 in Berlin (CET, UTC+1).
    berlin = datetime(2026, 12, 1, 1, 5, 7, 250000, tzinfo=ZONE).replace(tzinfo=None)
    assert_moment(field(summary, "Generated at (Europe/Berlin)"), berlin)
    assert_money(field(summary, "Opening position"), body["opening_position"])
    assert_money(field(summary, "Closing position"), body["closing_position"])
    lines = table(summary, "Kind")
    assert len(lines) == len(body["lines"]) == 5
    for cells, line in zip(lines, body["lines"], strict=True):
        kind, version, points, reversed_points, quantity, rate, amount = cells[:7]
        assert (kind.value, version.value) == (line["kind"], line["contract_version"])
        assert_points(points, line["points"])
        assert_points(reversed_points, line["reversed_points"])
        assert_points(quantity, line["quantity"])
        assert_rate(rate, line["rate"])
        assert_money(amount, line["amount"])
    assert_money(field(summary, "Issue amount"), body["issue_amount"])
    assert_money(field(summary, "Redemption amount"), body["redemption_amount"])
    assert_money(field(summary, "Fees"), body["fees"])
    assert_money(field(summary, "Net, redemption - issue - fees"), body["net"])
    assert field(summary, "Who pays whom").value == body["who_pays"]
    assert field(summary, "Direction").value == DIRECTION_IN_WORDS[body["direction"]]
    assert summary.freeze_panes == "A2"
    assert summary["A1"].font.b


async def test_pandas_reads_the_summarys_amounts_as_numbers() -> None:
    statement = partner_statement(partners()[1])
    body = signed_json(statement)
    frame = pd.read_excel(io.BytesIO(await write(statement)), sheet_name="Summary", header=None)
    values = {
        row[0]: next(value for value in row[1:] if not pd.isna(value))
        for row in frame.itertuples(index=False)
        if isinstance(row[0], str) and not all(pd.isna(value) for value in row[1:])
    }

    for label, key in [
        ("Issue amount (EUR)", "issue_amount"),
        ("Redemption amount (EUR)", "redemption_amount"),
        ("Fees (EUR)", "fees"),
        ("Net, redemption - issue - fees (EUR)", "net"),
        ("Opening position (EUR)", "opening_position"),
    ]:
        assert isinstance(values[label], int | float), label
        assert Decimal(str(values[label])) == Decimal(body[key]), label
    assert values["Generated at (UTC)"] == pd.Timestamp(naive_utc(GENERATED_AT))


async def test_entries_have_real_numbers_and_utc_dates_under_a_frozen_filtered_header() -> None:
    rows = entries(12, partner_ids=["p-alpha"])
    data = await write(partner_statement(partners()[0]), rows=rows)
    sheet = load(data)["Entries"]

    header = [cell.value for cell in sheet[1]]
    assert header[:2] == ["Entry id", "Recorded at (UTC)"]
    assert all(cell.font.b for cell in sheet[1])
    assert "UTC" in header[2]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:J{len(rows) + 1}"
    assert sheet.max_row == len(rows) + 1
    assert sheet.column_dimensions["A"].width >= 36  # a UUID fits
    for cells, entry in zip(sheet.iter_rows(min_row=2), rows, strict=True):
        assert cells[0].value == entry.entry_id
        assert_moment(cells[1], naive_utc(entry.recorded_at))
        if entry.occurred_at is None:
            assert cells[2].value is None
        else:
            assert_moment(cells[2], naive_utc(entry.occurred_at))
        assert [c.value for c in cells[3:6]] == [entry.kind, entry.partner_id, entry.member_id]
        assert_points(cells[6], entry.points)
        assert cells[7].value == entry.contract_version
        assert [cells[8].value, cells[9].value] == [entry.reference, entry.reversal_of]

    frame = pd.read_excel(io.BytesIO(data), sheet_name="Entries")
    assert frame["Entry id"].tolist() == [e.entry_id for e in rows]
    assert pd.api.types.is_integer_dtype(frame["Points"])
    assert frame["Points"].tolist() == [e.points for e in rows]
    assert pd.api.types.is_datetime64_any_dtype(frame["Recorded at (UTC)"])
    assert frame["Recorded at (UTC)"].tolist() == [
        pd.Timestamp(naive_utc(e.recorded_at)) for e in rows
    ]


async def test_formula_like_text_comes_back_as_the_same_text() -> None:
    hostile_partner = Partner(
        HOSTILE[0], HOSTILE[3], partners()[0].versions, partners()[0].aggregates
    )
    rows = entries(len(HOSTILE) * 2, partner_ids=HOSTILE, references=HOSTILE)
    data = await write(partner_statement(hostile_partner), rows=rows)
    workbook = load(data)

    sheet = workbook["Entries"]
    for cells, entry in zip(sheet.iter_rows(min_row=2), rows, strict=True):
        for cell, text in [(cells[4], entry.partner_id), (cells[8], entry.reference)]:
            assert cell.data_type == "s", f"{cell.coordinate} holds {cell.value!r}"
            assert cell.value == text
    summary = workbook["Summary"]
    for label, text in [("Partner", HOSTILE[0]), ("Legal name", HOSTILE[3])]:
        assert field(summary, label).data_type == "s"
        assert field(summary, label).value == text
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            xml = archive.read(name)
            assert b"<f>" not in xml
            assert b"<f " not in xml
            assert b't="e"' not in xml, f"{name} holds an error cell"
    frame = pd.read_excel(io.BytesIO(data), sheet_name="Entries", keep_default_na=False)
    assert frame["Reference"].tolist() == [e.reference for e in rows]


def assert_text_cells_quote_prefixed(workbook: Any) -> None:
    """Every text cell carries the quote prefix (an edit keeps it text), no other cell does."""
    for sheet in workbook.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                where = f"{sheet.title}!{cell.coordinate} ({cell.value!r})"
                if isinstance(cell.value, str):
                    assert (cell.data_type, cell.quotePrefix) == ("s", True), where
                elif cell.value is not None:
                    assert not cell.quotePrefix, where


async def test_a_partner_workbooks_text_cells_carry_the_quote_prefix() -> None:
    calc = "=cmd|' /C calc'!A0"
    hostile_partner = Partner(HOSTILE[0], calc, partners()[0].versions, partners()[0].aggregates)
    rows = entries(10, partner_ids=HOSTILE, references=[calc])
    workbook = load(await write(partner_statement(hostile_partner), rows=rows))

    references = [row[8] for row in workbook["Entries"].iter_rows(min_row=2)]
    assert [cell.value for cell in references] == [calc] * len(rows)
    assert all(cell.data_type == "s" and cell.quotePrefix for cell in references)
    assert field(workbook["Summary"], "Legal name").quotePrefix
    assert any(e.points < 0 for e in rows)  # a reversal: a negative number, not prefixed
    assert_text_cells_quote_prefixed(workbook)


async def test_a_coalition_workbooks_text_cells_carry_the_quote_prefix() -> None:
    statement, others = coalition_statements()
    rows = entries(10, partner_ids=["p-alpha", None], references=["=cmd|' /C calc'!A0"])
    workbook = load(await write(statement, others, rows))

    signed = [
        row[0]
        for row in workbook["Reconciliation"].iter_rows()
        if isinstance(row[0].value, str) and row[0].value.startswith(("+", "-", "="))
    ]
    assert [cell.value[:2] for cell in signed] == ["+ ", "- ", "- ", "+/", "= "]  # our labels
    assert_text_cells_quote_prefixed(workbook)


async def test_characters_xml_cannot_hold_become_replacement_characters_in_text_cells() -> None:
    rows = entries(3, references=["bell\x07", "=1+2\x00", "plain"])
    sheet = load(await write(partner_statement(partners()[0]), rows=rows))["Entries"]

    references = [row[8] for row in sheet.iter_rows(min_row=2)]
    assert [cell.value for cell in references] == ["bell\ufffd", "=1+2\ufffd", "plain"]
    assert all(cell.data_type == "s" and cell.quotePrefix for cell in references)


@pytest.mark.parametrize(("count", "rows_per_sheet"), [(7, 3), (4, 3), (0, 3), (5, 6), (3, 2)])
async def test_entries_continue_on_numbered_sheets_with_all_rows_in_order(
    count: int, rows_per_sheet: int
) -> None:
    rows = entries(count, partner_ids=["p-alpha", "p-beta", None])
    statement, others = coalition_statements()
    data = await write(statement, others, rows, rows_per_sheet=rows_per_sheet)
    workbook = load(data)

    sheets = max(1, math.ceil(count / (rows_per_sheet - 1)))
    titles = ["Entries"] + [f"Entries ({n})" for n in range(2, sheets + 1)]
    assert workbook.sheetnames == [
        "Summary",
        *titles,
        "Reconciliation",
        "Breakage",
        "Contract",
        "Integrity",
    ]
    ids: list[str] = []
    for title in titles:
        sheet = workbook[title]
        assert sheet.max_row <= rows_per_sheet
        assert [c.value for c in sheet[1]] == [c.value for c in workbook["Entries"][1]]
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:J{sheet.max_row}"
        ids.extend(row[0] for row in sheet.iter_rows(min_row=2, values_only=True))
    assert ids == [e.entry_id for e in rows]
    frames = pd.read_excel(io.BytesIO(data), sheet_name=titles)
    assert sum(len(frame) for frame in frames.values()) == count


async def test_the_default_row_limit_is_excels() -> None:
    assert write_statement_workbook.__kwdefaults__ == {"rows_per_sheet": EXCEL_ROWS}
    rows = entries(5)
    workbook = load(await write(partner_statement(partners()[2]), rows=rows))

    assert [t for t in workbook.sheetnames if t.startswith("Entries")] == ["Entries"]
    assert workbook["Entries"].max_row == len(rows) + 1


async def test_a_sheet_cannot_hold_less_than_a_header_and_an_entry() -> None:
    with pytest.raises(ValueError, match="at least one entry"):
        await write(partner_statement(partners()[0]), rows=entries(2), rows_per_sheet=1)


async def test_the_integrity_sheets_hash_and_signature_verify_independently() -> None:
    statement = partner_statement(partners()[0])
    sheet = load(await write(statement))["Integrity"]

    served = json.loads(statement.served_json())
    del served["integrity"]
    canonical = rfc8785.dumps(served)
    assert field(sheet, "Statement hash").value == hashlib.sha256(canonical).hexdigest()
    signature = base64.b64decode(field(sheet, "Signature").value, validate=True)
    assert verify(KEY.public_key, signature, canonical)
    assert field(sheet, "Key id").value == KEY.key_id
    assert field(sheet, "Ledger root").value == LEDGER_ROOT.hex()
    assert "RFC 8785" in field(sheet, "Canonicalisation").value
    steps = " ".join(str(row[1]) for row in sheet.iter_rows(values_only=True))
    assert "/v1/keys" in steps
    assert "SHA-256" in steps


async def test_the_partner_reconciliation_rolls_points_forward_per_version() -> None:
    statement = partner_statement(partners()[0])
    body = signed_json(statement)
    sheet = load(await write(statement))["Reconciliation"]

    rows = table(sheet, "Contract version")
    versions = sorted({line["contract_version"] for line in body["lines"]})
    assert [r[0].value for r in rows] == [*versions, "Total"]

    def figures(lines: Iterable[dict[str, Any]]) -> list[int]:
        lines = list(lines)
        issue = [ln for ln in lines if ln["kind"] == "issue"]
        redemption = [ln for ln in lines if ln["kind"] == "redemption"]
        return [
            sum(ln[key] for ln in group)
            for group in (issue, redemption)
            for key in ("points", "reversed_points", "quantity")
        ]

    for row in rows:
        wanted = [ln for ln in body["lines"] if row[0].value in ("Total", ln["contract_version"])]
        for cell, value in zip(row[1:7], figures(wanted), strict=True):
            assert_points(cell, value)
    assert_money(field(sheet, "Opening position"), body["opening_position"])
    assert_money(field(sheet, "Net of the period"), body["net"])
    assert_money(field(sheet, "Closing position"), body["closing_position"])


async def test_the_contract_sheet_lists_the_terms_applied() -> None:
    statement = partner_statement(partners()[0])
    body = signed_json(statement)
    sheet = load(await write(statement))["Contract"]

    rows = list(sheet.iter_rows(min_row=2))
    assert len(rows) == len(body["contract_versions"]) == 2
    for cells, version in zip(rows, body["contract_versions"], strict=True):
        assert cells[0].value == body["partner_id"]
        assert cells[1].value == version["version"]
        assert_moment(cells[2], naive_utc_text(version["effective_from"]))
        assert_moment(cells[3], naive_utc_text(version["effective_from"]) + timedelta(hours=1))
        assert cells[4].value == version["sha256"]
        assert_rate(cells[5], version["issue_rate"])
        assert_rate(cells[6], version["redemption_rate"])
        assert_rate(cells[7], version["fee_per_entry"])
        assert "breakage_share_rate" not in version
        assert cells[8].value is None
        assert_points(cells[9], version["max_points_per_transaction"])
        assert_points(cells[10], version["max_points_per_member_per_day"])
    assert sheet.freeze_panes == "A2"


async def test_the_contract_sheet_shows_a_breakage_share_rate_where_the_version_sets_one() -> None:
    statement = partner_statement(expiring_partner())
    sheet = load(await write(statement))["Contract"]

    assert sheet["I1"].value == "Breakage share rate"
    first, second = sheet.iter_rows(min_row=2)
    assert_rate(first[8], "0.004")
    assert second[8].value is None


async def test_a_coalition_workbook_lists_every_partner() -> None:
    statement, others = coalition_statements()
    body = signed_json(statement)
    rows = entries(9, partner_ids=["p-alpha", "p-beta", "p-gamma", None])
    workbook = load(await write(statement, others, rows))

    summary = workbook["Summary"]
    assert field(summary, "Partner").value == "all partners"
    assert field(summary, "Statement id").value == body["statement_id"]
    lines = table(summary, "Partner id")
    assert [r[0].value for r in lines] == [p["partner_id"] for p in body["partners"]]
    assert len(lines) == 3
    for cells, partner in zip(lines, body["partners"], strict=True):
        assert cells[1].value == partner["legal_name"]
        for cell, key in zip(
            cells[2:5], ["issue_amount", "redemption_amount", "fees"], strict=True
        ):
            assert_money(cell, partner[key])
        assert_money(cells[5], partner["net"])
        assert cells[6].value == DIRECTION_IN_WORDS[partner["direction"]]
        own = next(signed_json(o) for o in others if o.party == partner["partner_id"])
        assert cells[7].value == own["who_pays"]
    assert {r[6].value for r in lines} == set(DIRECTION_IN_WORDS.values())
    assert_money(field(summary, "Partners' net total"), body["partners_net_total"])
    assert_money(field(summary, "Coalition margin"), body["coalition_margin"])
    assert_money(
        field(summary, "Multilateral check, net total + margin"), body["multilateral_check"]
    )
    assert Decimal(body["multilateral_check"]) == 0
    assert body["open_holds_at_cut_off"] == {"holds": 3, "points": 1_200}
    assert field(summary, "Holds open at the cut-off").value == 3
    assert field(summary, "Points they reserve (still in the balances)").value == 1_200

    reconciliation = workbook["Reconciliation"]
    roll = body["points_roll_forward"]
    for label, key in [
        ("Opening outstanding points", "opening"),
        ("+ Issued", "issued"),
        ("- Redeemed", "redeemed"),
        ("- Expired", "expired"),
        ("+/- Adjusted", "adjusted"),
        ("= Closing outstanding points", "closing"),
        ("Member balances at the cut-off", "member_balances_at_cut_off"),
    ]:
        assert_points(field(reconciliation, label), roll[key])
    assert field(reconciliation, "Closing agrees with member balances").value == "yes"
    per_partner = table(reconciliation, "Partner id")
    assert [r[0].value for r in per_partner] == [*(o.party for o in others), "Total"]
    net_issued = [r[4].value for r in per_partner]
    assert net_issued[-1] == sum(net_issued[:-1]) == roll["issued"]

    contract = workbook["Contract"]
    listed = [(r[0], r[1]) for r in contract.iter_rows(min_row=2, values_only=True)]
    assert listed == [
        (o.party, v["version"]) for o in others for v in signed_json(o)["contract_versions"]
    ]
    assert {p for p, _ in listed} == {p["partner_id"] for p in body["partners"]}

    entries_sheet = workbook["Entries"]
    assert [r[4] for r in entries_sheet.iter_rows(min_row=2, values_only=True)] == [
        e.partner_id for e in rows
    ]


async def test_a_roll_forward_that_does_not_close_says_so() -> None:
    statement, others = coalition_statements()
    document = statement.body()
    assert isinstance(document, CoalitionStatement)
    roll = document.points_roll_forward
    off_by_one = msgspec.structs.replace(
        roll, member_balances_at_cut_off=roll.member_balances_at_cut_off + 1
    )
    broken = sign_statement(msgspec.structs.replace(document, points_roll_forward=off_by_one), KEY)

    reconciliation = load(await write(broken, others))["Reconciliation"]
    assert field(reconciliation, "Closing agrees with member balances").value == "NO"


async def test_an_interrupted_write_leaves_no_temporary_files() -> None:
    before = list(ALL_TEMP_FILES)

    async def failing() -> AsyncIterator[StatementEntry]:
        for entry in entries(5):
            yield entry
        raise ConnectionError("the connection was lost")

    out = io.BytesIO()
    with pytest.raises(ConnectionError, match="connection was lost"):
        await write_statement_workbook(
            partner_statement(partners()[0]),
            [],
            failing(),
            out,
            public_key=KEY.public_key,
            zone=ZONE,
            rows_per_sheet=3,
        )
    gc.collect()
    assert before == ALL_TEMP_FILES
    assert out.getvalue() == b""


async def test_memory_does_not_grow_with_the_number_of_entries(tmp_path: Path) -> None:
    statement = partner_statement(partners()[0])

    async def generated(count: int) -> AsyncIterator[StatementEntry]:
        for _ in range(count // 500):
            for entry in entries(500):
                yield entry

    async def peak(count: int) -> int:
        with (tmp_path / f"{count}.xlsx").open("wb") as out:
            tracemalloc.start()
            try:
                await write_statement_workbook(
                    statement, [], generated(count), out, public_key=KEY.public_key, zone=ZONE
                )
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    small = await peak(1_000)
    large = await peak(4_000)
    assert large < small * 1.5, (small, large)


# --- breakage -------------------------------------------------------------------------------

COHORTS = [
    # Of 4,000 points: 25% redeemed (400 + 200 + 400 at ages 0, 1, 2), 25% expired, 50% left.
    Cohort(
        month="2026-09",
        issued=4_000,
        adjusted=0,
        redeemed=1_000,
        expired=1_000,
        outstanding=2_000,
        redeemed_by_age=(400, 200, 400),
    ),
    # Of 1,900 + 100 = 2,000 points: 25% redeemed (300 + 200 at ages 0, 1), 25% expired, 50% left.
    Cohort(
        month="2026-10",
        issued=1_900,
        adjusted=100,
        redeemed=500,
        expired=500,
        outstanding=1_000,
        redeemed_by_age=(300, 200),
    ),
]
CURVE_HEADING = "Redemption curve by age (cumulative share of points redeemed)"


def assert_points_cell(cell: Any, expected: int) -> None:
    assert_points(cell, expected)
    assert cell.number_format == "#,##0", cell.coordinate


async def test_the_breakage_sheet_comes_between_reconciliation_and_contract() -> None:
    statement, others = coalition_statements(cohorts=COHORTS)
    sheetnames = load(await write(statement, others)).sheetnames

    assert sheetnames == [
        "Summary",
        "Entries",
        "Reconciliation",
        "Breakage",
        "Contract",
        "Integrity",
    ]


async def test_the_breakage_sheet_shows_each_cohort_with_its_shares_as_numbers() -> None:
    statement, others = coalition_statements(cohorts=COHORTS)
    sheet = load(await write(statement, others))["Breakage"]

    assert sheet["A1"].font.b
    rows = table(sheet, "Month of issue")
    assert [c.value for c in sheet[rows[0][0].row - 1]][:9] == [
        "Month of issue",
        "Issued",
        "Adjusted",
        "Redeemed",
        "Expired",
        "Outstanding",
        "Redeemed share",
        "Expired share",
        "Outstanding share",
    ]
    assert [r[0].value for r in rows] == ["2026-09", "2026-10", "Total"]
    assert all(r[0].data_type == "s" for r in rows)
    assert rows[-1][0].font.b
    for cells, figures, shares in [
        (rows[0], (4_000, 0, 1_000, 1_000, 2_000), ("0.25", "0.25", "0.5")),
        (rows[1], (1_900, 100, 500, 500, 1_000), ("0.25", "0.25", "0.5")),
        # 1,500 redeemed, 1,500 expired, 3,000 outstanding of 6,000.
        (rows[2], (5_900, 100, 1_500, 1_500, 3_000), ("0.25", "0.25", "0.5")),
    ]:
        for cell, value in zip(cells[1:6], figures, strict=True):
            assert_points_cell(cell, value)
        for cell, share in zip(cells[6:9], shares, strict=True):
            assert_share(cell, share)
    assert_points_cell(field(sheet, "Member balances at the cut-off"), 3_000)
    assert field(sheet, "Outstanding agrees with member balances").value == "yes"
    note = field(sheet, "Note").value
    assert "IFRS 15" in note
    assert "cut-off" in note
    assert "outstanding" in note


async def test_the_redemption_curve_is_the_cumulative_share_redeemed_at_each_age() -> None:
    statement, others = coalition_statements(cohorts=COHORTS)
    data = await write(statement, others)
    sheet = load(data)["Breakage"]

    rows = table(sheet, "Month of issue", after=CURVE_HEADING)
    header = [c.value for c in sheet[rows[0][0].row - 1]]
    assert header[:4] == ["Month of issue", "Age 0", "Age 1", "Age 2"]
    assert header[4:] == [None] * len(header[4:])
    assert [r[0].value for r in rows] == ["2026-09", "2026-10"]
    # 2026-09: 400, 400 + 200, 400 + 200 + 400 of 4,000; 2026-10: 300, 300 + 200 of 2,000, and
    # nothing at age 2, which it has not reached at the cut-off.
    for cells, shares in [
        (rows[0], ("0.1", "0.15", "0.25")),
        (rows[1], ("0.15", "0.25", None)),
    ]:
        for cell, share in zip(cells[1:4], shares, strict=True):
            assert_share(cell, share)
    curve = pd.read_excel(
        io.BytesIO(data), sheet_name="Breakage", header=None, skiprows=rows[0][0].row - 2
    )
    assert curve.iloc[0, 1:4].tolist() == ["Age 0", "Age 1", "Age 2"]
    assert [float(v) for v in curve.iloc[1, 1:4]] == [0.1, 0.15, 0.25]


async def test_a_cohort_with_nothing_issued_or_adjusted_has_no_shares() -> None:
    emptied = Cohort(
        month="2026-11",
        issued=50,
        adjusted=-50,
        redeemed=0,
        expired=0,
        outstanding=0,
        redeemed_by_age=(0,),
    )
    statement, others = coalition_statements(cohorts=[*COHORTS, emptied])
    sheet = load(await write(statement, others))["Breakage"]

    cohort = next(r for r in table(sheet, "Month of issue") if r[0].value == "2026-11")
    assert_points_cell(cohort[1], 50)
    assert_points_cell(cohort[2], -50)
    for cell in cohort[6:9]:
        assert_share(cell, None)
    curve = next(
        r for r in table(sheet, "Month of issue", after=CURVE_HEADING) if r[0].value == "2026-11"
    )
    assert [c.value for c in curve[1:]] == [None] * len(curve[1:])


async def test_a_coalition_statement_without_cohorts_says_so_on_its_breakage_sheet() -> None:
    statement, others = coalition_statements()
    assert "breakage_cohorts" not in signed_json(statement)
    workbook = load(await write(statement, others))

    texts = [v for row in workbook["Breakage"].iter_rows(values_only=True) for v in row if v]
    assert any("carries no cohort data" in str(v) for v in texts)
    assert "Month of issue" not in texts
    summary = workbook["Summary"]
    assert all(row[0] != "Issuing partner" for row in summary.iter_rows(values_only=True))


async def test_the_partner_summary_shows_its_breakage_share_and_expired_points() -> None:
    statement = partner_statement(expiring_partner())
    body = signed_json(statement)
    summary = load(await write(statement))["Summary"]

    lines = table(summary, "Kind")
    breakage = [r for r in lines if r[0].value == "breakage"]
    assert len(breakage) == 1
    version, points, reversed_points, quantity, rate, amount = breakage[0][1:7]
    assert version.value == 1
    assert_points(points, 2_000)
    assert_points(reversed_points, 0)
    assert_points(quantity, 2_000)
    assert_rate(rate, "0.004")
    assert_money(amount, "8.00")
    assert_money(field(summary, "Breakage share"), "8.00")
    assert body["breakage_amount"] == "8.00"
    net = field(summary, "Net, redemption + breakage share - issue - fees")
    assert_money(net, body["net"])
    assert Decimal(body["net"]) == (
        Decimal(body["redemption_amount"])
        + Decimal("8.00")
        - Decimal(body["issue_amount"])
        - Decimal(body["fees"])
    )
    labels = [row[0] for row in summary.iter_rows(values_only=True)]
    assert "Net, redemption - issue - fees (EUR)" not in labels
    assert "Expired points (information)" in labels
    expired = table(summary, "Contract version", after="Expired points (information)")
    assert [c.value for c in summary[expired[0][0].row - 1]][:4] == [
        "Contract version",
        "Expired points",
        "Issue rate",
        "Value at issue rate (EUR)",
    ]
    for cells, (number, count, issue_rate, value) in zip(
        expired, [(1, 2_000, "0.012345", "24.69"), (2, 500, "0.0105", "5.25")], strict=True
    ):
        assert cells[0].value == number
        assert_points_cell(cells[1], count)
        assert_rate(cells[2], issue_rate)
        assert_money(cells[3], value)


async def test_a_partner_summary_without_expired_points_has_no_breakage_figures() -> None:
    summary = load(await write(partner_statement(partners()[0])))["Summary"]

    labels = [row[0] for row in summary.iter_rows(values_only=True)]
    assert "Breakage share (EUR)" not in labels
    assert "Expired points (information)" not in labels
    assert "Net, redemption - issue - fees (EUR)" in labels


async def test_breakage_lines_move_no_points_in_the_partner_reconciliation() -> None:
    expiring = load(await write(partner_statement(expiring_partner())))["Reconciliation"]
    plain = load(await write(partner_statement(partners()[0])))["Reconciliation"]

    def figures(sheet: Any) -> list[list[Any]]:
        return [[c.value for c in row[:7]] for row in table(sheet, "Contract version")]

    assert [row[0] for row in figures(expiring)] == [1, 2, "Total"]
    assert figures(expiring) == figures(plain)
    assert_money(
        field(expiring, "Net of the period"),
        signed_json(partner_statement(expiring_partner()))["net"],
    )


async def test_the_coalition_summary_lists_expired_points_by_issuing_partner() -> None:
    statement, others = coalition_statements([expiring_partner(), partners()[2]], COHORTS)
    body = signed_json(statement)
    summary = load(await write(statement, others))["Summary"]

    rows = table(summary, "Issuing partner")
    assert [c.value for c in summary[rows[0][0].row - 1]][:5] == [
        "Issuing partner",
        "Legal name",
        "Expired points",
        "Value at issue rate (EUR)",
        "Breakage share (EUR)",
    ]
    assert [r[0].value for r in rows] == ["p-alpha", "Total"]  # Gamma had none expire
    alpha, total = rows
    assert alpha[1].value == "Alpha Retail GmbH"
    # 2,000 + 500 points; 24.69 + 5.25 at the issue rates; 2,000 x 0.004 shared.
    for cells in (alpha, total):
        assert_points_cell(cells[2], 2_500)
        assert_money(cells[3], "29.94")
        assert_money(cells[4], "8.00")
    position = next(p for p in body["partners"] if p["partner_id"] == "p-alpha")
    assert (position["expired_points"], position["expired_value"]) == (2_500, "29.94")
    assert position["breakage_amount"] == "8.00"
    assert Decimal(body["multilateral_check"]) == 0
    assert_money(field(summary, "Coalition margin"), body["coalition_margin"])


# --- printing and reading like a statement ----------------------------------------------------


PARTNER_ORIENTATIONS = {
    "Summary": "portrait",
    "Entries": "landscape",
    "Reconciliation": "landscape",
    "Contract": "landscape",
    "Integrity": "portrait",
}
COALITION_ORIENTATIONS = {
    "Summary": "landscape",
    "Entries": "landscape",
    "Entries (2)": "landscape",
    "Reconciliation": "landscape",
    "Breakage": "landscape",
    "Contract": "landscape",
    "Integrity": "portrait",
}


async def both_workbooks() -> list[tuple[Any, str, dict[str, str]]]:
    """A partner's and the coalition's workbook (its entries on two sheets), each with its
    statement id and the orientation each of its sheets prints in."""
    partner = partner_statement(partners()[0])
    coalition, others = coalition_statements(cohorts=COHORTS)
    return [
        (load(await write(partner, rows=entries(3))), f"{PERIOD}/p-alpha", PARTNER_ORIENTATIONS),
        (
            load(await write(coalition, others, entries(5), rows_per_sheet=4)),
            f"{PERIOD}/coalition",
            COALITION_ORIENTATIONS,
        ),
    ]


async def test_every_sheet_prints_one_page_wide_in_its_orientation() -> None:
    for workbook, _, orientations in await both_workbooks():
        assert workbook.sheetnames == list(orientations)
        for sheet in workbook.worksheets:
            assert sheet.page_setup.orientation == orientations[sheet.title], sheet.title
            assert sheet.sheet_properties.pageSetUpPr.fitToPage, sheet.title
            assert sheet.page_setup.fitToWidth == 1, sheet.title
            assert sheet.page_setup.fitToHeight == 0, sheet.title


async def test_every_printed_page_names_the_statement_its_period_and_its_number() -> None:
    for workbook, statement_id, _ in await both_workbooks():
        for sheet in workbook.worksheets:
            assert sheet.oddHeader.left.text == f"Settlement statement {statement_id}"
            assert sheet.oddHeader.right.text == f"Period {PERIOD}"
            assert sheet.oddFooter.left.text == "&A"
            assert sheet.oddFooter.right.text == "Page &P of &N"


async def test_entries_sheets_repeat_their_header_row_on_every_printed_page() -> None:
    for workbook, _, _ in await both_workbooks():
        for sheet in workbook.worksheets:
            repeated = "$1:$1" if sheet.title.startswith("Entries") else None
            assert sheet.print_title_rows == repeated, sheet.title


async def test_the_direction_reads_in_words_where_the_json_keeps_its_code() -> None:
    statement = partner_statement(partners()[0])
    summary = load(await write(statement))["Summary"]
    assert signed_json(statement)["direction"] == "coalition_pays_partner"
    assert field(summary, "Direction").value == "the coalition pays the partner"

    coalition, others = coalition_statements()
    lines = table(load(await write(coalition, others))["Summary"], "Partner id")
    assert {r[6].value for r in lines} == {
        "the coalition pays the partner",
        "the partner pays the coalition",
        "nothing is due",
    }


async def test_no_cell_shows_an_internal_code_or_cites_a_spec() -> None:
    codes = {"coalition_pays_partner", "partner_pays_coalition", "nothing_due", "ed25519"}
    for workbook, _, _ in await both_workbooks():
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows(values_only=True):
                for value in row:
                    assert "SPEC" not in str(value), (sheet.title, value)
                    assert value not in codes, (sheet.title, value)


async def test_the_integrity_steps_explain_the_period_root_and_where_the_key_is() -> None:
    sheet = load(await write(partner_statement(partners()[0])))["Integrity"]
    steps = " ".join(str(row[1]) for row in sheet.iter_rows(values_only=True))
    assert "SHA-256(previous month's root ‖ tree head)" in steps
    assert "32 zero bytes" in steps
    assert "GET /v1/keys" in steps
    assert field(sheet, "Signature algorithm").value == "Ed25519"


async def test_the_document_properties_name_the_statement() -> None:
    for workbook, statement_id, _ in await both_workbooks():
        properties = workbook.properties
        assert properties.title == f"Settlement statement {statement_id}"
        assert properties.creator == "Clearhouse"
        assert PERIOD in properties.subject


async def test_a_statement_makes_the_same_bytes_whenever_its_workbook_is_written() -> None:
    """Made on request, a workbook is still one file: its document's and every zip member's
    time is the statement's own, not the clock's, so two downloads compare byte for byte."""
    coalition, partner_list = coalition_statements()
    for statement in (coalition, partner_list[0]):
        data = await write(statement, partner_list if statement is coalition else (), entries(3))
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            stamps = {member.date_time for member in archive.infolist()}
        assert stamps == {(2026, 12, 1, 0, 5, 6)}  # zip keeps even seconds
        properties = load(data).properties
        made = GENERATED_AT.replace(tzinfo=None, microsecond=0)  # openpyxl reads naive UTC
        assert properties.created == properties.modified == made


# --- reading like a statement: layout, formats, the key, the zone, charts ---------------------


async def test_every_sheet_prints_on_a4() -> None:
    for workbook, _, _ in await both_workbooks():
        for sheet in workbook.worksheets:
            assert sheet.page_setup.paperSize == 9, sheet.title  # A4


async def test_the_partner_summary_reads_top_down_with_its_totals_under_the_amounts() -> None:
    summary = load(await write(partner_statement(partners()[0])))["Summary"]

    labels = [row[0] for row in summary.iter_rows(values_only=True)]
    order = [
        "Settlement statement",
        "Coalition",
        "Generated at (Europe/Berlin)",
        "Kind",
        "Issue amount (EUR)",
        "Redemption amount (EUR)",
        "Fees (EUR)",
        "Net, redemption - issue - fees (EUR)",
        "Who pays whom",
        "Opening position (EUR)",
        "Closing position (EUR)",
        "Note",
    ]
    assert [label for label in labels if label in order] == order
    assert summary["A1"].font.sz == 14
    # Alpha: issue 900 x 0.012345 = 11.11 and 2,500 x 0.0105 = 26.25; redemption 4,000 x
    # 0.019999 = 80.00 and 3,300 x 0.021 = 69.30; fees 34 x 0.05 = 1.70.
    for label, amount in [
        ("Issue amount", "37.36"),
        ("Redemption amount", "149.30"),
        ("Fees", "1.70"),
    ]:
        cell = field(summary, label)
        assert cell.column_letter == "G", label  # under the Amount column
        assert_money(cell, amount)
    net = field(summary, "Net, redemption - issue - fees")
    assert net.column_letter == "G"
    assert_money(net, "110.24")  # 149.30 - 37.36 - 1.70
    assert net.font.b
    assert (net.border.top.style, net.border.bottom.style) == ("thin", "double")
    assert summary.cell(net.row, 1).font.b
    assert (
        field(summary, "Who pays whom").value == "the coalition pays Alpha Retail GmbH: 110.24 EUR"
    )
    assert "(12.00)" in field(summary, "Note").value


async def test_table_headers_wrap_above_their_columns_and_long_text_wraps() -> None:
    summary = load(await write(partner_statement(partners()[0])))["Summary"]

    header = next(row for row in summary.iter_rows() if row[0].value == "Kind")
    assert [c.alignment.horizontal for c in header] == ["left"] + ["right"] * 6
    assert all(c.alignment.wrap_text and c.border.bottom.style == "thin" for c in header)
    # "Contract version" in 9 characters and "Reversed points" in 10 take two lines each.
    assert summary.row_dimensions[header[0].row].height == 2 * 15
    note = field(summary, "Note")
    assert note.alignment.wrap_text
    assert f"B{note.row}:G{note.row}" in {str(r) for r in summary.merged_cells.ranges}
    assert summary.row_dimensions[note.row].height >= 3 * 15  # three lines at the least


async def test_the_coalition_summary_lines_its_totals_up_under_the_nets() -> None:
    statement, others = coalition_statements()
    summary = load(await write(statement, others))["Summary"]

    nets = [r[5] for r in table(summary, "Partner id")]
    # Alpha 110.24; Beta 44.96 - 887.75 = -842.79, printed (842.79); Gamma 7.00 - 7.00.
    for cell, net in zip(nets, ["110.24", "-842.79", "0.00"], strict=True):
        assert_money(cell, net)
    total = field(summary, "Partners' net total")
    assert total.column_letter == "F"
    assert_money(total, "-732.55")  # 110.24 - 842.79 + 0.00
    assert_money(field(summary, "Coalition margin"), "732.55")
    directions = [r[6] for r in table(summary, "Partner id")]
    assert all(cell.alignment.indent == 1 for cell in directions)  # apart from the nets
    check = field(summary, "Multilateral check, net total + margin")
    assert (check.column_letter, check.font.b, check.border.bottom.style) == ("F", True, "double")


async def test_rates_show_the_decimals_of_the_contract() -> None:
    summary = load(await write(partner_statement(partners()[0])))["Summary"]

    rates = {(r[0].value, r[1].value): r[5] for r in table(summary, "Kind")}
    assert rates[("issue", 1)].number_format == "0.000000"  # 0.012345
    assert rates[("issue", 2)].number_format == "0.0000"  # 0.0105
    assert rates[("redemption", 2)].number_format == "0.000"  # 0.021
    assert rates[("fee", 2)].number_format == "0.00"  # 0.05


async def test_points_and_versions_are_right_aligned_numbers_on_the_entries() -> None:
    sheet = load(await write(partner_statement(partners()[0]), rows=entries(3)))["Entries"]

    for cells in sheet.iter_rows(min_row=2):
        assert cells[6].number_format == "#,##0"
        assert isinstance(cells[7].value, int)  # a version: a plain number, right-aligned
    assert sheet["G1"].alignment.horizontal == sheet["H1"].alignment.horizontal == "right"


async def test_the_integrity_sheet_carries_the_public_key_that_verifies_the_signature() -> None:
    statement = partner_statement(partners()[0])
    sheet = load(await write(statement))["Integrity"]

    raw = base64.b64decode(field(sheet, "Public key (Ed25519, base64)").value, validate=True)
    assert raw == KEY.public_key
    pem = field(sheet, "Public key (PEM)").value
    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    key = serialization.load_pem_public_key(pem.encode())
    assert isinstance(key, Ed25519PublicKey)
    served = json.loads(statement.served_json())
    del served["integrity"]
    signature = base64.b64decode(field(sheet, "Signature").value)
    key.verify(signature, rfc8785.dumps(served))  # raises if it does not verify
    steps = " ".join(str(row[1]) for row in sheet.iter_rows(values_only=True))
    assert "with the public key above" in steps
    assert field(sheet, "Signature").alignment.wrap_text


async def test_an_unpublished_key_is_said_to_be_so() -> None:
    sheet = load(await write(partner_statement(partners()[0]), public_key=None))["Integrity"]

    assert field(sheet, "Public key (Ed25519, base64)").value.startswith("not published")
    assert all(row[0] != "Public key (PEM)" for row in sheet.iter_rows(values_only=True))


async def test_the_coalition_summary_charts_the_net_of_each_partner_from_its_cells() -> None:
    statement, others = coalition_statements()
    summary = load(await write(statement, others))["Summary"]

    # Row 1 the title, 2-9 the header block, 10 blank, 11 the table's header, 12-14 partners.
    assert [c.value for c in summary["A12:A14"][0]] == ["p-alpha"]
    (chart,) = summary._charts
    assert (type(chart).__name__, chart.type) == ("BarChart", "bar")
    (series,) = chart.series
    assert series.val.numRef.f == "'Summary'!$F$12:$F$14"
    assert series.cat.strRef.f == "'Summary'!$B$12:$B$14"
    assert chart.anchor._from.row > summary.max_row - 2  # below the tables


async def test_a_partner_reconciliation_charts_points_issued_and_redeemed_per_day() -> None:
    rows = entries(12)
    reconciliation = load(await write(partner_statement(partners()[0]), rows=rows))[
        "Reconciliation"
    ]

    days = table(reconciliation, "Day")
    assert len(days) == 30 + 1  # November, and the total
    first = days[0]
    assert first[0].value == datetime(2026, 11, 1)  # noqa: DTZ001
    assert first[0].number_format == "yyyy-mm-dd"
    # Twelve entries from 00:00:01 UTC on 1 November, a second apart; every fifth (4, 9) a
    # reversal, the others issues (even) and redeems (odd) of 10 x i + 1 points.
    assert_points_cell(first[1], 1 + 21 + 61 + 81 + 101)
    assert_points_cell(first[2], 11 + 31 + 51 + 71 + 111)
    assert all(row[1].value == row[2].value == 0 for row in days[1:-1])
    assert [c.value for c in days[-1]][:3] == ["Total", 265, 275]
    (chart,) = reconciliation._charts
    assert (type(chart).__name__, chart.type, chart.grouping) == ("BarChart", "col", "clustered")
    top, bottom = first[0].row, days[-2][0].row
    assert [s.val.numRef.f for s in chart.series] == [
        f"'Reconciliation'!$B${top}:$B${bottom}",
        f"'Reconciliation'!$C${top}:$C${bottom}",
    ]
    assert [s.tx.strRef.f for s in chart.series] == [
        f"'Reconciliation'!B{top - 1}",
        f"'Reconciliation'!C{top - 1}",
    ]


def test_a_day_is_the_coalitions_day() -> None:
    days = DailyPoints("2026-11", ZONE)

    def at(moment: datetime, kind: str, points: int) -> StatementEntry:
        return StatementEntry(
            str(uuid.uuid4()), moment, None, kind, "p", "m", points, 1, None, None
        )

    for entry in [
        at(datetime(2026, 10, 31, 23, 30, tzinfo=UTC), "issue", 1),  # 1 Nov, 00:30 in Berlin
        at(datetime(2026, 11, 1, 22, 59, tzinfo=UTC), "issue", 2),  # 1 Nov, 23:59
        at(datetime(2026, 11, 1, 23, 0, tzinfo=UTC), "redeem", 4),  # 2 Nov, 00:00
        at(datetime(2026, 11, 1, 12, 0, tzinfo=UTC), "redeem", 8),  # 1 Nov again, out of order
        at(datetime(2026, 11, 30, 22, 59, tzinfo=UTC), "issue", 16),  # 30 Nov, 23:59
        at(datetime(2026, 11, 2, 9, 0, tzinfo=UTC), "reversal", 32),  # not counted
    ]:
        days.add(entry)

    assert len(days.days) == 30
    assert (days.issued[0], days.redeemed[0]) == (3, 8)
    assert (days.issued[1], days.redeemed[1]) == (0, 4)
    assert days.issued[29] == 16
    assert sum(days.issued) + sum(days.redeemed) == 31

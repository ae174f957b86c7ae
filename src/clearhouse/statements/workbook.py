"""Statement workbooks (SPEC section 7): Summary, Entries, Reconciliation, Contract, Integrity.

What an auditor opens in Excel or LibreOffice. Every figure is copied from the signed JSON
statement (which stays authoritative): money as numbers in ``#,##0.00``, rates in ``0.000000``,
points as integers, moments as real dates in UTC. Every string that came from outside (ids,
references, names) is written as a quote-prefixed text cell (``spreadsheet_text``), so
``=HYPERLINK(…)`` or ``@SUM(…)`` is shown as what it is, never evaluated, and stays text when
someone edits the cell.

The workbook is written in openpyxl's write-only mode: each sheet streams into a temporary
file as its rows are appended, and the entries are taken one at a time from an async iterable,
so memory does not grow with the number of entries. Past Excel's 1,048,576 rows (header
included) the entries continue in ``Entries (2)``, ``Entries (3)`` …, each with its own header.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, BinaryIO, Final

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from clearhouse.domain.records import StatementEntry
from clearhouse.statements.documents import COALITION_PARTY, WHO_PAYS, SignedStatement
from clearhouse.statements.spreadsheet_text import put_text, quote_prefixed_cell, text_cell

EXCEL_MAX_ROWS: Final = 1_048_576
"""Rows of one sheet in Excel (and LibreOffice), the header row included."""

MONEY_FORMAT: Final = "#,##0.00"
RATE_FORMAT: Final = "0.000000"
POINTS_FORMAT: Final = "#,##0"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm:ss"

SUMMARY_SHEET: Final = "Summary"
ENTRIES_SHEET: Final = "Entries"
RECONCILIATION_SHEET: Final = "Reconciliation"
CONTRACT_SHEET: Final = "Contract"
INTEGRITY_SHEET: Final = "Integrity"

ENTRY_COLUMNS: Final = (
    ("Entry id", 38),
    ("Recorded at (UTC)", 20),
    ("Occurred at (UTC)", 20),
    ("Kind", 12),
    ("Partner id", 22),
    ("Member id", 26),
    ("Points", 12),
    ("Contract version", 10),
    ("Reference", 40),
    ("Reversal of", 38),
)

YIELD_EVERY: Final = 1000
"""Entries written between two chances for other tasks of the event loop to run."""

ALL_PARTNERS: Final = "all partners"

_BOLD: Final = Font(bold=True)


def entries_sheet_title(number: int) -> str:
    """``Entries`` for the first sheet of entries, ``Entries (2)`` for the second, …"""
    return ENTRIES_SHEET if number == 1 else f"{ENTRIES_SHEET} ({number})"


def _naive_utc(moment: datetime) -> datetime:
    """Excel has no time zones: the moment in UTC, without its zone (naive means UTC)."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _moment(text: str) -> datetime:
    """A document's RFC 3339 ``…Z`` timestamp as a naive UTC datetime."""
    return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


class _Sheet:
    """A write-only sheet and the cells it is written with."""

    def __init__(
        self,
        workbook: Any,
        title: str,
        widths: Sequence[float],
        *,
        freeze: str = "A2",
    ) -> None:
        self.sheet: WriteOnlyWorksheet = workbook.create_sheet(title)
        # Both are written before the first row in write-only mode, so they are set first.
        self.sheet.freeze_panes = freeze
        for index, width in enumerate(widths, 1):
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self.rows = 0

    def append(self, *values: object) -> None:
        self.sheet.append(list(values))
        self.rows += 1

    def blank(self) -> None:
        self.append()

    def text(self, value: str | None) -> Any:
        """A string as a quote-prefixed text cell, never a formula (``spreadsheet_text``)."""
        return None if value is None else text_cell(self.sheet, value)

    def bold(self, value: str) -> Any:
        cell = self.text(value)
        cell.font = _BOLD
        return cell

    def heading(self, *values: str) -> None:
        self.append(*(self.bold(v) for v in values))

    def number(self, value: int | Decimal | None, number_format: str) -> Any:
        if value is None:
            return None
        cell = WriteOnlyCell(self.sheet, value=value)
        cell.number_format = number_format
        return cell

    def money(self, value: str | None) -> Any:
        """A decimal string of the statement as a number: read as ``Decimal``, never through a
        float of ours (openpyxl writes it with 16 significant digits, more than Excel keeps)."""
        return None if value is None else self.number(Decimal(value), MONEY_FORMAT)

    def rate(self, value: str | None) -> Any:
        return None if value is None else self.number(Decimal(value), RATE_FORMAT)

    def points(self, value: int | None) -> Any:
        return self.number(value, POINTS_FORMAT)

    def moment(self, value: str | datetime | None) -> Any:
        if value is None:
            return None
        moment = _moment(value) if isinstance(value, str) else _naive_utc(value)
        cell = WriteOnlyCell(self.sheet, value=moment)
        cell.number_format = DATETIME_FORMAT
        return cell

    def field(self, label: str, value: object) -> None:
        """One line of a label/value block: the label as text, the value as given (a cell)."""
        self.append(self.text(label), self.text(value) if isinstance(value, str) else value)

    def close(self) -> None:
        self.sheet.close()


def _text_or_none(cell: Cell, value: str | None) -> Cell | None:
    return None if value is None else put_text(cell, value)


class _EntriesSheets:
    """Entries across as many sheets as Excel's row limit needs, each with its own header."""

    def __init__(self, workbook: Any, rows_per_sheet: int) -> None:
        self._workbook = workbook
        self._rows_per_sheet = rows_per_sheet
        self._number = 0
        self._last_column = get_column_letter(len(ENTRY_COLUMNS))
        self._open_next()

    def _open_next(self) -> None:
        self._number += 1
        self._sheet = _Sheet(
            self._workbook, entries_sheet_title(self._number), [w for _, w in ENTRY_COLUMNS]
        )
        self._sheet.heading(*(name for name, _ in ENTRY_COLUMNS))
        # One cell per date and per text column, given a new value for every row: write-only
        # sheets write a row as it is appended, and a styled cell is never reused by openpyxl
        # itself, so this saves a styled cell per date and text without ever mixing up two rows.
        self._recorded_at = WriteOnlyCell(self._sheet.sheet)
        self._recorded_at.number_format = DATETIME_FORMAT
        self._occurred_at = WriteOnlyCell(self._sheet.sheet)
        self._occurred_at.number_format = DATETIME_FORMAT
        # The text cells: entry id, kind, partner id, member id, reference, reversal of.
        self._texts = [quote_prefixed_cell(self._sheet.sheet) for _ in range(6)]

    def _finish(self) -> None:
        sheet = self._sheet
        sheet.sheet.auto_filter.ref = f"A1:{self._last_column}{sheet.rows}"
        sheet.close()

    def add(self, entry: StatementEntry) -> None:
        if self._sheet.rows >= self._rows_per_sheet:
            self._finish()
            self._open_next()
        self._recorded_at.value = _naive_utc(entry.recorded_at)
        occurred_at = None
        if entry.occurred_at is not None:
            self._occurred_at.value = _naive_utc(entry.occurred_at)
            occurred_at = self._occurred_at
        entry_id, kind, partner_id, member_id, reference, reversal_of = self._texts
        self._sheet.append(
            put_text(entry_id, entry.entry_id),
            self._recorded_at,
            occurred_at,
            put_text(kind, entry.kind),
            _text_or_none(partner_id, entry.partner_id),
            _text_or_none(member_id, entry.member_id),
            entry.points,
            entry.contract_version,
            _text_or_none(reference, entry.reference),
            _text_or_none(reversal_of, entry.reversal_of),
        )

    def close(self) -> None:
        self._finish()


async def write_statement_workbook(
    statement: SignedStatement,
    partner_statements: Sequence[SignedStatement],
    entries: AsyncIterable[StatementEntry],
    out: BinaryIO,
    *,
    rows_per_sheet: int = EXCEL_MAX_ROWS,
) -> None:
    """Write the workbook of ``statement`` to ``out``, streaming ``entries``.

    ``partner_statements`` are given for the coalition's workbook (its Reconciliation and
    Summary list every partner); empty for a partner's. ``rows_per_sheet`` is the number of
    rows of an Entries sheet, its header included (Excel's limit unless a test lowers it).

    The sheets are zipped into ``out`` once every entry has been read, in a worker thread (it
    is CPU-bound and takes seconds for a big period), so ``out`` must be a plain file-like
    object (a file, ``BytesIO``) that nothing else touches until this returns. If reading the
    entries fails, nothing is written to ``out``; whatever fails, the temporary files go.
    """
    if rows_per_sheet < 2:
        raise ValueError("an Entries sheet holds its header and at least one entry")
    body = statement.body()
    coalition = statement.party == COALITION_PARTY
    partners = [s for s in partner_statements if s.party != COALITION_PARTY]
    workbook = Workbook(write_only=True)
    try:
        if coalition:
            _coalition_summary(workbook, body)
        else:
            _partner_summary(workbook, body)
        sheets = _EntriesSheets(workbook, rows_per_sheet)
        written = 0
        async for entry in entries:
            sheets.add(entry)
            written += 1
            if written % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        sheets.close()
        if coalition:
            _coalition_reconciliation(workbook, body, [p.body() for p in partners])
            _contract(workbook, [p.body() for p in partners])
        else:
            _partner_reconciliation(workbook, body)
            _contract(workbook, [body])
        _integrity(workbook, statement, body)
    except BaseException:
        _discard(workbook)
        raise
    # Compressing the sheets takes a while for a big period; off the event loop.
    await asyncio.to_thread(_save, workbook, out)


def _save(workbook: Any, out: BinaryIO) -> None:
    try:
        workbook.save(out)
    except BaseException:
        _discard(workbook)
        raise


def _discard(workbook: Any) -> None:
    """Close the sheets written so far and remove their temporary files."""
    for sheet in workbook.worksheets:
        with contextlib.suppress(Exception):
            if not sheet.closed:
                sheet.close()
        writer = getattr(sheet, "_writer", None)
        if writer is not None:
            with contextlib.suppress(OSError, ValueError):
                writer.cleanup()


def _header_block(
    sheet: _Sheet, body: dict[str, Any], partner: str, legal_name: str | None
) -> None:
    sheet.field("Coalition", body["coalition"])
    sheet.field("Partner", partner)
    if legal_name is not None:
        sheet.field("Legal name", legal_name)
    sheet.field("Period", body["period"])
    sheet.field("Currency", body["currency"])
    sheet.field("Statement id", body["statement_id"])
    sheet.field("Sequence number", body["sequence"])
    sheet.field("Generated at (UTC)", sheet.moment(body["generated_at"]))


def _partner_summary(workbook: Any, body: dict[str, Any]) -> None:
    currency = body["currency"]
    sheet = _Sheet(workbook, SUMMARY_SHEET, [34, 18, 16, 16, 16, 14, 18])
    sheet.heading("Settlement statement", body["statement_id"])
    _header_block(sheet, body, body["partner_id"], body["legal_name"])
    sheet.field("Entries netted", body["entries"])
    sheet.field(f"Opening position ({currency})", sheet.money(body["opening_position"]))
    sheet.field(f"Closing position ({currency})", sheet.money(body["closing_position"]))
    sheet.blank()
    sheet.heading(
        "Kind",
        "Contract version",
        "Points",
        "Reversed points",
        "Quantity",
        "Rate",
        f"Amount ({currency})",
    )
    for line in body["lines"]:
        sheet.append(
            sheet.text(line["kind"]),
            line["contract_version"],
            sheet.points(line["points"]),
            sheet.points(line["reversed_points"]),
            sheet.points(line["quantity"]),
            sheet.rate(line["rate"]),
            sheet.money(line["amount"]),
        )
    sheet.blank()
    sheet.field(f"Issue amount ({currency})", sheet.money(body["issue_amount"]))
    sheet.field(f"Redemption amount ({currency})", sheet.money(body["redemption_amount"]))
    sheet.field(f"Fees ({currency})", sheet.money(body["fees"]))
    sheet.field(f"Net, redemption - issue - fees ({currency})", sheet.money(body["net"]))
    sheet.field("Direction", body["direction"])
    sheet.field("Who pays whom", body["who_pays"])
    sheet.blank()
    sheet.field(
        "Note",
        "Quantity is net points (points less reversed points) for issue and redemption lines, "
        "the number of entries for a fee line; each amount is quantity x rate, rounded once to "
        "cents (half-even).",
    )
    sheet.close()


def _coalition_summary(workbook: Any, body: dict[str, Any]) -> None:
    currency = body["currency"]
    sheet = _Sheet(workbook, SUMMARY_SHEET, [34, 30, 18, 18, 16, 18, 24, 40])
    sheet.heading("Coalition statement", body["statement_id"])
    _header_block(sheet, body, ALL_PARTNERS, None)
    sheet.blank()
    sheet.heading(
        "Partner id",
        "Legal name",
        f"Issue amount ({currency})",
        f"Redemption amount ({currency})",
        f"Fees ({currency})",
        f"Net ({currency})",
        "Direction",
        "Who pays whom",
    )
    for partner in body["partners"]:
        sheet.append(
            sheet.text(partner["partner_id"]),
            sheet.text(partner["legal_name"]),
            sheet.money(partner["issue_amount"]),
            sheet.money(partner["redemption_amount"]),
            sheet.money(partner["fees"]),
            sheet.money(partner["net"]),
            sheet.text(partner["direction"]),
            sheet.text(_who_pays(partner, currency)),
        )
    sheet.blank()
    sheet.field(f"Partners' net total ({currency})", sheet.money(body["partners_net_total"]))
    sheet.field(f"Coalition margin ({currency})", sheet.money(body["coalition_margin"]))
    sheet.field(
        f"Multilateral check, net total + margin ({currency})",
        sheet.money(body["multilateral_check"]),
    )
    sheet.field("Adds up to zero", "yes" if Decimal(body["multilateral_check"]) == 0 else "NO")
    sheet.close()


def _who_pays(partner: dict[str, Any], currency: str) -> str:
    """Who pays whom, in words, as a partner's own statement says it."""
    words = WHO_PAYS[partner["direction"]].format(partner=partner["legal_name"])
    net = Decimal(partner["net"])
    return words if not net else f"{words}: {abs(net):.2f} {currency}"


_ROLL_COLUMNS: Final = (
    "Points issued",
    "Issue reversals",
    "Net issued",
    "Points redeemed",
    "Redemption reversals",
    "Net redeemed",
)


def _points_by_version(lines: Sequence[dict[str, Any]]) -> dict[int, list[int]]:
    """Per contract version: issued, issue reversals, net issued, and the same for redemption."""
    figures: dict[int, list[int]] = {}
    for line in lines:
        row = figures.setdefault(line["contract_version"], [0] * len(_ROLL_COLUMNS))
        offset = {"issue": 0, "redemption": 3}.get(line["kind"])
        if offset is None:
            continue
        row[offset] += line["points"]
        row[offset + 1] += line["reversed_points"]
        row[offset + 2] += line["quantity"]
    return {v: row for v, row in figures.items() if any(row)}


def _totals(rows: Sequence[Sequence[int]]) -> list[int]:
    return [sum(column) for column in zip(*rows, strict=True)] or [0] * len(_ROLL_COLUMNS)


def _partner_reconciliation(workbook: Any, body: dict[str, Any]) -> None:
    currency = body["currency"]
    sheet = _Sheet(workbook, RECONCILIATION_SHEET, [34, 16, 16, 16, 16, 20, 16])
    sheet.heading("Contract version", *_ROLL_COLUMNS)
    figures = _points_by_version(body["lines"])
    for version, row in sorted(figures.items()):
        sheet.append(version, *(sheet.points(v) for v in row))
    sheet.append(sheet.bold("Total"), *(sheet.points(v) for v in _totals(list(figures.values()))))
    sheet.blank()
    sheet.heading("Settlement position", currency)
    sheet.field("Opening position", sheet.money(body["opening_position"]))
    sheet.field("Net of the period", sheet.money(body["net"]))
    sheet.field("Closing position", sheet.money(body["closing_position"]))
    sheet.close()


def _coalition_reconciliation(
    workbook: Any, body: dict[str, Any], partners: Sequence[dict[str, Any]]
) -> None:
    roll = body["points_roll_forward"]
    sheet = _Sheet(workbook, RECONCILIATION_SHEET, [44, 30, 16, 16, 16, 16, 20, 16])
    sheet.heading("Points roll-forward (all members)", "Points")
    sheet.field("Opening outstanding points", sheet.points(roll["opening"]))
    sheet.field("+ Issued (net of reversals)", sheet.points(roll["issued"]))
    sheet.field("- Redeemed (net of reversals)", sheet.points(roll["redeemed"]))
    sheet.field("- Expired", sheet.points(roll["expired"]))
    sheet.field("+/- Adjusted", sheet.points(roll["adjusted"]))
    sheet.field("= Closing outstanding points", sheet.points(roll["closing"]))
    sheet.field("Member balances at the cut-off", sheet.points(roll["member_balances_at_cut_off"]))
    agree = roll["closing"] == roll["member_balances_at_cut_off"]
    sheet.field("Closing agrees with member balances", "yes" if agree else "NO")
    sheet.blank()
    sheet.heading("Partner id", "Legal name", *_ROLL_COLUMNS)
    rows: list[list[int]] = []
    for partner in sorted(partners, key=lambda p: str(p["partner_id"])):
        row = _totals(list(_points_by_version(partner["lines"]).values()))
        rows.append(row)
        sheet.append(
            sheet.text(partner["partner_id"]),
            sheet.text(partner["legal_name"]),
            *(sheet.points(v) for v in row),
        )
    sheet.append(sheet.bold("Total"), None, *(sheet.points(v) for v in _totals(rows)))
    sheet.close()


def _contract(workbook: Any, bodies: Sequence[dict[str, Any]]) -> None:
    sheet = _Sheet(workbook, CONTRACT_SHEET, [22, 10, 20, 66, 14, 16, 14, 18, 20])
    sheet.heading(
        "Partner id",
        "Version",
        "Effective from (UTC)",
        "Contract file SHA-256",
        "Issue rate",
        "Redemption rate",
        "Fee per entry",
        "Max points per transaction",
        "Max points per member per day",
    )
    for body in sorted(bodies, key=lambda b: str(b["partner_id"])):
        for version in body["contract_versions"]:
            sheet.append(
                sheet.text(body["partner_id"]),
                version["version"],
                sheet.moment(version["effective_from"]),
                sheet.text(version["sha256"]),
                sheet.rate(version["issue_rate"]),
                sheet.rate(version["redemption_rate"]),
                sheet.rate(version["fee_per_entry"]),
                sheet.points(version["max_points_per_transaction"]),
                sheet.points(version["max_points_per_member_per_day"]),
            )
    sheet.close()


def _verification_steps(body: dict[str, Any]) -> list[str]:
    period = body["period"]
    where = (
        f"GET /v1/audit/statements/{period} (auditors)"
        if body["partner_id"] is None
        else f"GET /v1/statements/{period} (the partner) or "
        f"GET /v1/audit/statements/{period}/{body['partner_id']} (auditors)"
    )
    return [
        f"Fetch the statement as JSON: {where}.",
        "Remove its 'integrity' block and canonicalise the rest per RFC 8785 (JCS), "
        "for instance with the Python package rfc8785: rfc8785.dumps(document).",
        "The SHA-256 of those bytes, in hex, must equal the statement hash above.",
        "Decode the signature from base64 and verify it as Ed25519 over the same bytes with "
        "the public key of the key id above, as published at GET /v1/keys.",
        "The ledger root is the period's root (SPEC 7.1): SHA-256 of the previous period's root "
        "and the RFC 9162 Merkle tree head of the period's canonical entries "
        f"(GET /v1/audit/periods/{period}/entries); clearhouse audit verify recomputes it.",
        "The figures of this workbook are copied from the signed JSON statement; where they "
        "differ, the signed JSON is authoritative.",
    ]


def _integrity(workbook: Any, statement: SignedStatement, body: dict[str, Any]) -> None:
    integrity = statement.with_integrity()["integrity"]
    sheet = _Sheet(workbook, INTEGRITY_SHEET, [40, 100])
    sheet.heading("Integrity", body["statement_id"])
    sheet.field("Statement hash (SHA-256, hex)", integrity["sha256"])
    sheet.field("Signature (Ed25519, base64)", integrity["signature"])
    sheet.field("Signature algorithm", integrity["algorithm"])
    sheet.field("Key id", integrity["key_id"])
    sheet.field("Ledger root (SHA-256, hex)", body["ledger_root"])
    sheet.field("Canonicalisation", integrity["canonicalization"])
    sheet.blank()
    sheet.heading("How to verify")
    for number, step in enumerate(_verification_steps(body), 1):
        sheet.append(number, sheet.text(step))
    sheet.close()

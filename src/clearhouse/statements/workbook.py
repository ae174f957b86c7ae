"""Statement workbooks (SPEC section 7): Summary, Entries, Reconciliation, (the coalition's)
Breakage, Contract, Integrity.

What an auditor opens in Excel or LibreOffice. Every figure is copied from the signed statement
(which stays authoritative), read as its type (``statements.model``): money as numbers with two
decimals, a negative amount in brackets; rates with exactly their contract's decimals; points as
integers in ``#,##0``; moments as real dates in UTC, and beside them in the coalition's time
zone where a reader needs its clock (generated at, effective from). Every
string that came from outside (ids, references, names) is written as a quote-prefixed text cell
(``spreadsheet_text``), so ``=HYPERLINK(…)`` or ``@SUM(…)`` is shown as what it is, never
evaluated, and stays text when someone edits the cell. The tables' columns are declared in
``statements.columns``; this module lays the sheets out around them.

The workbook is written in openpyxl's write-only mode: each sheet streams into a temporary
file as its rows are appended, and the entries are taken one at a time from an async iterable,
so memory does not grow with the number of entries. Past Excel's 1,048,576 rows (header
included) the entries continue in ``Entries (2)``, ``Entries (3)`` …, each with its own header.

Printed, a sheet is one A4 page wide: Summary (a partner's) and Integrity in portrait, the
Entries and every wide table (the coalition's Summary, Reconciliation, Breakage, Contract) in
landscape; each page is headed with the statement and its period and numbered, and the Entries
repeat their header row on every page (``Sheet``). A Summary reads top-down on one page: the
header block, the lines, their totals under the column they add up, the net in bold and ruled,
who pays whom in words. The Integrity sheet carries the signing key's public key itself, so the
workbook alone verifies. The workbook's document properties name the statement too, and carry
its generation time, as does every member of the zip: a statement's workbook, made on each
request, is the same file byte for byte every time (``_StampedZip``). Codes of
the JSON statement are shown in words (``DIRECTION_WORDS``). Two charts, drawn from cells
(``statements.charts``): the nets per partner under the coalition's Summary, the points issued
and redeemed per day on a partner's Reconciliation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import zipfile
from collections.abc import AsyncIterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO, Final
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.writer.excel import ExcelWriter

from clearhouse.crypto.ed25519 import public_pem
from clearhouse.domain.netting import LineKind
from clearhouse.domain.records import StatementEntry
from clearhouse.statements.breakage_sheet import breakage_sheet
from clearhouse.statements.charts import DailyPoints, daily_points_table, net_position_chart
from clearhouse.statements.columns import (
    CONTRACT_COLUMNS,
    DIRECTION_WORDS,
    ENTRY_COLUMNS,
    EXPIRED_BY_PARTNER_COLUMNS,
    EXPIRED_COLUMNS,
    LINE_COLUMNS,
    NET_COLUMN,
    PARTNER_POINTS_COLUMNS,
    POSITION_COLUMNS,
    VERSION_POINTS_COLUMNS,
    ExpiredByPartnerRow,
    PointsFigures,
    PointsRow,
    PositionRow,
    TermsRow,
)
from clearhouse.statements.documents import SignedStatement, who_pays
from clearhouse.statements.model import (
    CoalitionStatement,
    PartnerStatement,
    Statement,
    StatementLine,
)
from clearhouse.statements.sheets import PrintedPages, Sheet, local_moment, utc_moment

EXCEL_MAX_ROWS: Final = 1_048_576
"""Rows of one sheet in Excel (and LibreOffice), the header row included."""

SUMMARY_SHEET: Final = "Summary"
ENTRIES_SHEET: Final = "Entries"
RECONCILIATION_SHEET: Final = "Reconciliation"
CONTRACT_SHEET: Final = "Contract"
INTEGRITY_SHEET: Final = "Integrity"

YIELD_EVERY: Final = 1000
"""Entries written between two chances for other tasks of the event loop to run."""

ALL_PARTNERS: Final = "all partners"
CREATOR: Final = "Clearhouse"
SIGNATURE_ALGORITHMS: Final = {"ed25519": "Ed25519"}
"""A statement's signature algorithm as its name is written."""


def entries_sheet_title(number: int) -> str:
    """``Entries`` for the first sheet of entries, ``Entries (2)`` for the second, …"""
    return ENTRIES_SHEET if number == 1 else f"{ENTRIES_SHEET} ({number})"


class _EntriesSheets:
    """Entries across as many sheets as Excel's row limit needs, each with its own header."""

    def __init__(
        self,
        workbook: Any,
        rows_per_sheet: int,
        pages: PrintedPages,
        days: DailyPoints | None,
    ) -> None:
        """``days``: where the points issued and redeemed per day are counted (a partner's)."""
        self._workbook = workbook
        self._rows_per_sheet = rows_per_sheet
        self._pages = pages
        self._days = days
        self._number = 0
        self._last_column = get_column_letter(len(ENTRY_COLUMNS))
        self._open_next()

    def _open_next(self) -> None:
        self._number += 1
        title = entries_sheet_title(self._number)
        self._sheet = Sheet.of_table(
            self._workbook,
            title,
            ENTRY_COLUMNS,
            pages=self._pages,
            orientation="landscape",
            header_repeats=True,
        )
        self._sheet.table_heading(ENTRY_COLUMNS)

    def _finish(self) -> None:
        sheet = self._sheet
        sheet.sheet.auto_filter.ref = f"A1:{self._last_column}{sheet.rows}"
        sheet.close()

    def add(self, entry: StatementEntry) -> None:
        if self._sheet.rows >= self._rows_per_sheet:
            self._finish()
            self._open_next()
        self._sheet.row(ENTRY_COLUMNS, entry)
        if self._days is not None:
            self._days.add(entry)

    def close(self) -> None:
        self._finish()


async def write_statement_workbook(
    statement: SignedStatement,
    partner_statements: Sequence[SignedStatement],
    entries: AsyncIterable[StatementEntry],
    out: BinaryIO,
    *,
    public_key: bytes | None,
    zone: ZoneInfo,
    rows_per_sheet: int = EXCEL_MAX_ROWS,
) -> None:
    """Write the workbook of ``statement`` to ``out``, streaming ``entries``.

    ``partner_statements`` are given for the coalition's workbook (its Reconciliation and
    Summary list every partner); empty for a partner's. ``public_key`` is the raw Ed25519
    public key of the key id that signed ``statement`` (``None``: not published), printed on
    the Integrity sheet so that an auditor verifies with the workbook alone. Times are shown in
    UTC and in ``zone``, the coalition's. ``rows_per_sheet`` is the number of rows of an Entries
    sheet, its header included (Excel's limit unless a test lowers it).

    The sheets are zipped into ``out`` once every entry has been read, in a worker thread (it
    is CPU-bound and takes seconds for a big period), so ``out`` must be a plain file-like
    object (a file, ``BytesIO``) that nothing else touches until this returns. If reading the
    entries fails, nothing is written to ``out``; whatever fails, the temporary files go.
    """
    if rows_per_sheet < 2:
        raise ValueError("an Entries sheet holds its header and at least one entry")
    body = statement.body()
    partners = [
        b for b in (s.body() for s in partner_statements) if isinstance(b, PartnerStatement)
    ]
    workbook = Workbook(write_only=True)
    pages = PrintedPages(body.statement_id, body.period)
    _properties(workbook, body, pages)
    try:
        days = None
        if isinstance(body, CoalitionStatement):
            _coalition_summary(workbook, body, pages, zone)
        else:
            _partner_summary(workbook, body, pages, zone)
            days = DailyPoints(body.period, zone)
        sheets = _EntriesSheets(workbook, rows_per_sheet, pages, days)
        written = 0
        async for entry in entries:
            sheets.add(entry)
            written += 1
            if written % YIELD_EVERY == 0:
                await asyncio.sleep(0)
        sheets.close()
        if isinstance(body, CoalitionStatement):
            _coalition_reconciliation(workbook, body, partners, pages)
            breakage_sheet(workbook, body, pages)
            _contract(workbook, partners, pages, zone)
        else:
            assert days is not None
            _partner_reconciliation(workbook, body, pages, days)
            _contract(workbook, [body], pages, zone)
        _integrity(workbook, statement, body, pages, public_key)
    except BaseException:
        _discard(workbook)
        raise
    # Compressing the sheets takes a while for a big period; off the event loop.
    await asyncio.to_thread(_save, workbook, out, utc_moment(body.generated_at))


def _properties(workbook: Any, body: Statement, pages: PrintedPages) -> None:
    """The document properties a file manager or a PDF printer shows; created and modified
    when the statement was, so that they do not change from one download to the next."""
    party = ALL_PARTNERS if isinstance(body, CoalitionStatement) else body.legal_name
    workbook.properties.title = pages.title
    workbook.properties.subject = f"Loyalty points settlement of {body.period}, {party}"
    workbook.properties.creator = CREATOR
    made = utc_moment(body.generated_at).replace(microsecond=0)
    workbook.properties.created = workbook.properties.modified = made


class _StampedZip(zipfile.ZipFile):
    """A zip being written whose every member carries ``made`` as its time, where ``ZipFile``
    takes the clock's (``writestr``) or a temporary file's (``write``)."""

    def __init__(self, out: BinaryIO, made: datetime) -> None:
        super().__init__(out, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
        self._made = (made.year, made.month, made.day, made.hour, made.minute, made.second)

    def _member(self, name: str) -> zipfile.ZipInfo:
        member = zipfile.ZipInfo(name, date_time=self._made)
        member.compress_type = zipfile.ZIP_DEFLATED
        member.external_attr = 0o600 << 16
        return member

    def writestr(  # type: ignore[override]  # openpyxl passes a name and the data only
        self, name: str | zipfile.ZipInfo, data: bytes | str, *args: Any, **kwargs: Any
    ) -> None:
        member = name if isinstance(name, zipfile.ZipInfo) else self._member(name)
        super().writestr(member, data, *args, **kwargs)

    def write(  # openpyxl passes a file and its member name only
        self, filename: Any, arcname: Any = None, *args: Any, **kwargs: Any
    ) -> None:
        member = self._member(str(arcname if arcname is not None else filename))
        with open(filename, "rb") as source:
            source.seek(0, 2)
            member.file_size = source.tell()
            source.seek(0)
            with self.open(member, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)


def _save(workbook: Any, out: BinaryIO, made: datetime) -> None:
    """Zip the sheets into ``out`` as ``Workbook.save`` would, but stamped ``made`` throughout
    (``save`` sets the document's modified time to the clock's)."""
    try:
        archive = _StampedZip(out, made)
        ExcelWriter(workbook, archive).save()
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
    sheet: Sheet,
    body: Statement,
    partner: str,
    legal_name: str | None,
    zone: ZoneInfo,
    last: int,
) -> None:
    """Who and what the statement is, one line each, the values across columns B to ``last``;
    when it was made in UTC and, beside it, on the coalition's clocks."""
    sheet.block_field("Coalition", body.coalition, last=last)
    sheet.block_field("Partner", partner, last=last)
    if legal_name is not None:
        sheet.block_field("Legal name", legal_name, last=last)
    sheet.block_field("Period", body.period, last=last)
    sheet.block_field("Currency", body.currency, last=last)
    sheet.block_field("Statement id", body.statement_id, last=last)
    sheet.block_field("Sequence number", sheet.points(body.sequence), last=last)
    sheet.block_field("Generated at (UTC)", sheet.moment(body.generated_at), last=last)
    sheet.block_field(
        f"Generated at ({zone.key})",
        sheet.moment(local_moment(body.generated_at, zone)),
        last=last,
    )


LINE_NOTE: Final = (
    "Quantity is net points (points less reversed points) for issue and redemption lines, "
    "the number of entries for a fee line; each amount is quantity x rate, rounded once to "
    "cents (half-even)."
)
EXPIRED_NOTE: Final = (
    " A breakage line's quantity is the version's expired points. Expired points are "
    "valued at their issue rate as information; only a breakage line is in the net."
)
NET_NOTE: Final = (
    "A net in brackets, (12.00), is negative: the partner pays the coalition; without "
    "brackets the coalition pays the partner."
)


def _partner_summary(
    workbook: Any, body: PartnerStatement, pages: PrintedPages, zone: ZoneInfo
) -> None:
    """Top-down on one portrait page: who and what, the lines, their totals under the amounts,
    the net emphasised and in words, the settlement position, and notes."""
    currency = body.currency
    sheet = Sheet.of_table(
        workbook, SUMMARY_SHEET, LINE_COLUMNS, pages=pages, orientation="portrait"
    )
    last = len(LINE_COLUMNS)
    amounts = last  # the Amount column, which the totals line up under
    sheet.title("Settlement statement", body.statement_id)
    _header_block(sheet, body, body.partner_id, body.legal_name, zone, last)
    sheet.block_field("Entries netted", sheet.points(body.entries), last=last)
    sheet.blank()
    sheet.table_heading(LINE_COLUMNS, currency)
    sheet.rows_of(LINE_COLUMNS, body.lines)
    sheet.amount_line(
        f"Issue amount ({currency})", sheet.money(body.issue_amount), column=amounts, ruled=True
    )
    sheet.amount_line(
        f"Redemption amount ({currency})", sheet.money(body.redemption_amount), column=amounts
    )
    sheet.amount_line(f"Fees ({currency})", sheet.money(body.fees), column=amounts)
    net = "redemption - issue - fees"
    if body.breakage_amount is not None:
        sheet.amount_line(
            f"Breakage share ({currency})", sheet.money(body.breakage_amount), column=amounts
        )
        net = "redemption + breakage share - issue - fees"
    sheet.amount_line(f"Net, {net} ({currency})", sheet.money(body.net), column=amounts, net=True)
    sheet.blank()
    sheet.block_field("Who pays whom", body.who_pays, last=last, bold=True)
    sheet.block_field("Direction", DIRECTION_WORDS[body.direction], last=last)
    sheet.blank()
    sheet.amount_line(
        f"Opening position ({currency})",
        sheet.money(body.opening_position),
        column=amounts,
    )
    sheet.amount_line(
        f"Closing position ({currency})",
        sheet.money(body.closing_position),
        column=amounts,
        ruled=True,
    )
    note = LINE_NOTE
    if body.expired_points:
        sheet.blank()
        sheet.heading("Expired points (information)")
        sheet.table_heading(EXPIRED_COLUMNS, currency)
        sheet.rows_of(EXPIRED_COLUMNS, body.expired_points)
        note += EXPIRED_NOTE
    sheet.blank()
    sheet.note("Note", f"{note} {NET_NOTE}", last=last)
    sheet.close()


def _coalition_summary(
    workbook: Any, body: CoalitionStatement, pages: PrintedPages, zone: ZoneInfo
) -> None:
    """Top-down on one landscape page (its table of partners is eight columns wide): who and
    what, a row per partner, the totals under the nets, the holds, the expired points, and a
    chart of the nets."""
    currency = body.currency
    sheet = Sheet.of_table(
        workbook, SUMMARY_SHEET, POSITION_COLUMNS, pages=pages, orientation="landscape"
    )
    last = len(POSITION_COLUMNS)
    sheet.title("Coalition statement", body.statement_id)
    _header_block(sheet, body, ALL_PARTNERS, None, zone, last)
    sheet.blank()
    sheet.table_heading(POSITION_COLUMNS, currency)
    first_partner = sheet.rows + 1
    sheet.rows_of(
        POSITION_COLUMNS,
        (
            PositionRow(p, who_pays(p.direction, p.legal_name, Decimal(p.net), currency))
            for p in body.partners
        ),
    )
    partner_rows = (first_partner, sheet.rows)
    sheet.amount_line(
        f"Partners' net total ({currency})",
        sheet.money(body.partners_net_total),
        column=NET_COLUMN,
        ruled=True,
    )
    sheet.amount_line(
        f"Coalition margin ({currency})",
        sheet.money(body.coalition_margin),
        column=NET_COLUMN,
    )
    sheet.amount_line(
        f"Multilateral check, net total + margin ({currency})",
        sheet.money(body.multilateral_check),
        column=NET_COLUMN,
        net=True,
    )
    zero = Decimal(body.multilateral_check) == 0
    sheet.block_field("Adds up to zero", "yes" if zero else "NO", last=last)
    sheet.blank()
    held = body.open_holds_at_cut_off
    sheet.amount_line("Holds open at the cut-off", sheet.points(held.holds), column=NET_COLUMN)
    sheet.amount_line(
        "Points they reserve (still in the balances)",
        sheet.points(held.points),
        column=NET_COLUMN,
    )
    expired = [
        ExpiredByPartnerRow.of(p) for p in body.partners if p.expired_points or p.breakage_amount
    ]
    if expired:
        sheet.blank()
        sheet.heading("Expired points by issuing partner")
        sheet.table_heading(EXPIRED_BY_PARTNER_COLUMNS, currency)
        sheet.rows_of(EXPIRED_BY_PARTNER_COLUMNS, expired)
        sheet.total_row(EXPIRED_BY_PARTNER_COLUMNS, ExpiredByPartnerRow.total(expired))
        sheet.blank()
        sheet.note(
            "Note",
            "The breakage share is in the partner's net above; the value at the issue rate is "
            "information.",
            last=last,
        )
    sheet.blank()
    sheet.note("Net", NET_NOTE, last=last)
    if body.partners:
        net_position_chart(sheet, currency, partner_rows, at_row=sheet.rows + 2)
    sheet.close()


def _points_by_version(lines: Sequence[StatementLine]) -> dict[int, PointsFigures]:
    """Per contract version: issued, issue reversals, net issued, and the same for redemption
    (fee and breakage lines move no points between members and the partner: a breakage line
    counts points that had already left the balances when they expired)."""
    figures: dict[int, PointsFigures] = {}
    for line in lines:
        moved = (line.points, line.reversed_points, line.quantity)
        if line.kind is LineKind.ISSUE:
            line_figures = PointsFigures(*moved, 0, 0, 0)
        elif line.kind is LineKind.REDEMPTION:
            line_figures = PointsFigures(0, 0, 0, *moved)
        else:
            continue
        before = figures.get(line.contract_version, PointsFigures())
        figures[line.contract_version] = PointsFigures.total([before, line_figures])
    return {version: row for version, row in figures.items() if any(row)}


def _total_row(sheet: Sheet, labels: int, figures: PointsFigures) -> None:
    """The bold Total under a Reconciliation table whose first ``labels`` columns name rows."""
    sheet.append(sheet.bold("Total"), *[None] * (labels - 1), *map(sheet.points, figures))


def _partner_reconciliation(
    workbook: Any, body: PartnerStatement, pages: PrintedPages, days: DailyPoints
) -> None:
    """Points per version, the settlement position, and the points issued and redeemed per day
    of the month with their chart (counted from the Entries as they were written)."""
    sheet = Sheet.of_table(
        workbook,
        RECONCILIATION_SHEET,
        VERSION_POINTS_COLUMNS,
        pages=pages,
        orientation="landscape",
    )
    sheet.table_heading(VERSION_POINTS_COLUMNS)
    figures = _points_by_version(body.lines)
    sheet.rows_of(
        VERSION_POINTS_COLUMNS,
        (PointsRow(version, None, row) for version, row in sorted(figures.items())),
    )
    _total_row(sheet, 1, PointsFigures.total(figures.values()))
    sheet.blank()
    sheet.heading("Settlement position", body.currency)
    sheet.field("Opening position", sheet.money(body.opening_position))
    sheet.field("Net of the period", sheet.money(body.net))
    sheet.field("Closing position", sheet.money(body.closing_position))
    sheet.blank()
    daily_points_table(sheet, days)
    sheet.close()


def _coalition_reconciliation(
    workbook: Any,
    body: CoalitionStatement,
    partners: Sequence[PartnerStatement],
    pages: PrintedPages,
) -> None:
    roll = body.points_roll_forward
    sheet = Sheet.of_table(
        workbook,
        RECONCILIATION_SHEET,
        PARTNER_POINTS_COLUMNS,
        pages=pages,
        orientation="landscape",
    )
    sheet.heading("Points roll-forward (all members)", "Points")
    sheet.field("Opening outstanding points", sheet.points(roll.opening))
    sheet.field("+ Issued (net of reversals)", sheet.points(roll.issued))
    sheet.field("- Redeemed (net of reversals)", sheet.points(roll.redeemed))
    sheet.field("- Expired", sheet.points(roll.expired))
    sheet.field("+/- Adjusted", sheet.points(roll.adjusted))
    sheet.field("= Closing outstanding points", sheet.points(roll.closing))
    sheet.field("Member balances at the cut-off", sheet.points(roll.member_balances_at_cut_off))
    agree = roll.closing == roll.member_balances_at_cut_off
    sheet.field("Closing agrees with member balances", "yes" if agree else "NO")
    sheet.blank()
    sheet.table_heading(PARTNER_POINTS_COLUMNS)
    rows = [
        PointsRow(
            partner.partner_id,
            partner.legal_name,
            PointsFigures.total(_points_by_version(partner.lines).values()),
        )
        for partner in sorted(partners, key=lambda p: p.partner_id)
    ]
    sheet.rows_of(PARTNER_POINTS_COLUMNS, rows)
    _total_row(sheet, 2, PointsFigures.total(row.figures for row in rows))
    sheet.close()


def _contract(
    workbook: Any, bodies: Sequence[PartnerStatement], pages: PrintedPages, zone: ZoneInfo
) -> None:
    sheet = Sheet.of_table(
        workbook, CONTRACT_SHEET, CONTRACT_COLUMNS, pages=pages, orientation="landscape"
    )
    sheet.table_heading(CONTRACT_COLUMNS, zone=zone.key)
    sheet.rows_of(
        CONTRACT_COLUMNS,
        (
            TermsRow(body.partner_id, terms, zone)
            for body in sorted(bodies, key=lambda b: b.partner_id)
            for terms in body.contract_versions
        ),
    )
    sheet.close()


PUBLIC_KEY_MISSING: Final = "not published (GET /v1/keys lists every key that signed)"


def _verification_steps(body: Statement) -> list[str]:
    """How to verify, in the words of the auditor guide, with the public key on this sheet."""
    period = body.period
    where = (
        f"GET /v1/audit/statements/{period} (auditors)"
        if isinstance(body, CoalitionStatement)
        else f"GET /v1/statements/{period} (the partner) or "
        f"GET /v1/audit/statements/{period}/{body.partner_id} (auditors)"
    )
    return [
        f"Fetch the statement as JSON: {where}.",
        "Remove its 'integrity' block and canonicalise the rest per RFC 8785 (JCS), "
        "for instance with the Python package rfc8785: rfc8785.dumps(document).",
        "The SHA-256 of those bytes, in hex, must equal the statement hash above.",
        "Decode the signature from base64 and verify it as Ed25519 over the same bytes with "
        "the public key above (32 raw bytes, base64; the PEM is the same key for tools such "
        "as OpenSSL): the key of the key id above, as published at GET /v1/keys, which lists "
        "every key that ever signed.",
        "The ledger root is the month's root, SHA-256(previous month's root ‖ tree head), "
        "with 32 zero bytes before the coalition's first sealed month, so each root vouches "
        "for every month before it. The tree head is the RFC 9162 Merkle tree head over the "
        "month's entries in their canonical form, one RFC 8785 JSON line each, as "
        f"GET /v1/audit/periods/{period}/entries serves them; GET /v1/audit/periods lists each "
        "month's tree head, previous root and root, and clearhouse audit verify recomputes "
        "them all.",
        "The figures of this workbook are copied from the signed JSON statement; where they "
        "differ, the signed JSON is authoritative.",
    ]


def _integrity(
    workbook: Any,
    statement: SignedStatement,
    body: Statement,
    pages: PrintedPages,
    public_key: bytes | None,
) -> None:
    """What was signed, by which key (the public key itself, base64 and PEM), and the steps
    to verify it; long values wrap within the page."""
    integrity = statement.integrity()
    sheet = Sheet(workbook, INTEGRITY_SHEET, [30, 70], pages=pages, orientation="portrait")
    last = 2
    sheet.title("Integrity", body.statement_id)
    sheet.block_field("Statement hash (SHA-256, hex)", integrity.sha256, last=last)
    sheet.block_field("Signature (Ed25519, base64)", integrity.signature, last=last)
    sheet.block_field("Signature algorithm", SIGNATURE_ALGORITHMS[integrity.algorithm], last=last)
    sheet.block_field("Key id", integrity.key_id, last=last)
    if public_key is None:
        sheet.block_field("Public key (Ed25519, base64)", PUBLIC_KEY_MISSING, last=last)
    else:
        sheet.block_field(
            "Public key (Ed25519, base64)", base64.b64encode(public_key).decode(), last=last
        )
        sheet.block_field("Public key (PEM)", public_pem(public_key).decode().strip(), last=last)
    sheet.block_field("Ledger root (SHA-256, hex)", body.ledger_root, last=last)
    sheet.block_field("Canonicalisation", integrity.canonicalization, last=last)
    sheet.blank()
    sheet.heading("How to verify")
    for number, step in enumerate(_verification_steps(body), 1):
        sheet.note(f"{number}.", step, last=last)
    sheet.close()

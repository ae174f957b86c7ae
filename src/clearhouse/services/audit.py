"""Verifying the ledger as an auditor would, and saying exactly what was checked.

For every closed period, in order: the root is recomputed from the canonical entries and the
chain to the previous root followed; for the periods asked about, every entry's partner
signature is checked from its canonical line alone (the signature base it keeps, the partner's
key it names, valid when it signed), and every statement's SHA-256, its signature with the
coalition key it names, and the root it states. The report counts each kind of check and lists
every finding by period, entry or statement (``domain.verification``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from clearhouse.crypto.http_signatures import check_entry_signature
from clearhouse.domain import merkle
from clearhouse.domain.periods import period_bounds
from clearhouse.domain.records import PartnerKey, SealedPeriod
from clearhouse.domain.verification import Finding, VerificationReport, evidence_problems
from clearhouse.services.database import Database
from clearhouse.statements.documents import SignedStatement, statement_problems
from clearhouse.storage import access as access_store
from clearhouse.storage import clearing as store
from clearhouse.storage.clearing import StatementRow

SIGNATURE_WINDOW_S_MAX: Final = 3600
"""The widest freshness window a coalition can set: a request was accepted at most this far
from its ``created``, and the key was checked valid then (by real time, which no entry keeps)."""


def _key_valid_when(key: PartnerKey, created: int | None) -> bool:
    """Was ``key`` valid at some moment a request signed at ``created`` could be accepted?"""
    if created is None:
        return False
    window = timedelta(seconds=SIGNATURE_WINDOW_S_MAX)
    moment = datetime.fromtimestamp(created, UTC)
    ends = min((t for t in (key.not_after, key.revoked_at) if t is not None), default=None)
    return key.not_before <= moment + window and (ends is None or moment - window < ends)


def _entry_findings(
    period: str, line: dict[str, Any], keys: dict[str, PartnerKey]
) -> list[Finding]:
    problems = evidence_problems(line) if line["evidence"] == "partner_signature" else []
    if line.get("signature_base") is not None:

        def partners_key(key_id: str) -> bytes | None:
            key = keys.get(key_id)
            return None if key is None or key.partner_id != line["partner_id"] else key.public_key

        checked = check_entry_signature(
            line["signature_input"], line["signature"], line["signature_base"], partners_key
        )
        problems += checked.problems
        key = keys.get(checked.key_id or "")
        if key is not None and not _key_valid_when(key, checked.created):
            problems.append(f"its signature was made outside the validity of key {key.key_id}")
    return [Finding(period, f"entry {line['entry_id']}", problem) for problem in problems]


def as_signed(row: StatementRow) -> SignedStatement:
    """A stored statement, as the signed document it is."""
    return SignedStatement(
        row.party, row.sequence, row.document, row.sha256, row.signature, row.key_id
    )


async def verify_ledger(
    database: Database, zone: ZoneInfo, period: str | None = None
) -> VerificationReport:
    """Verify every closed period (or ``period``, whose chain to the first is followed)."""
    if period is not None:
        period_bounds(period, zone)  # a malformed period is an invalid request
    report = VerificationReport(period)
    async with database.transaction() as connection:
        await store.custom_plans(connection)
        rows = await store.fetch_periods(connection)
        if period is not None and period not in {row.period for row in rows}:
            report.findings.append(
                Finding(period, "period", "is not closed (it is open, or lies beyond the ledger)")
            )
            return report
        partner_keys = {k.key_id: k for k in await access_store.fetch_all_keys(connection)}
        coalition_keys = {
            # Only statement keys sign statements (the webhook key never does).
            k.key_id: k.public_key
            for k in await access_store.fetch_coalition_keys(connection)
            if k.purpose == "statements"
        }
        previous_root = merkle.FIRST_PREVIOUS_ROOT
        for row in rows:
            checked = period is None or row.period == period
            tree = merkle.TreeBuilder()
            async for leaf in store.canonical_entries(connection, row.starts_at, row.ends_at):
                tree.add(leaf)
                if checked:
                    line = json.loads(leaf)
                    report.entries += 1
                    if line["evidence"] == "partner_signature":
                        report.partner_signatures += 1
                    else:
                        report.entries_without_partner_signature += 1
                    report.findings += _entry_findings(row.period, line, partner_keys)
            root = merkle.period_root(previous_root, tree.head())
            if checked:
                report.periods += 1
                report.findings += _period_findings(row, tree.size, root, previous_root)
                for statement in await store.fetch_statements(connection, row.period):
                    report.statement_hashes += 1
                    report.statement_signatures += 1
                    signed = as_signed(statement)
                    public_key = coalition_keys.get(statement.key_id)
                    if public_key is None:
                        report.findings.append(
                            Finding(
                                row.period,
                                f"statement {statement.party}",
                                f"it is signed by {statement.key_id}, which is no coalition key",
                            )
                        )
                        continue
                    report.findings += [
                        Finding(row.period, f"statement {statement.party}", problem)
                        for problem in statement_problems(signed, public_key, row.root)
                    ]
            previous_root = row.root
    return report


def _period_findings(
    row: SealedPeriod, size: int, root: bytes, previous_root: bytes
) -> list[Finding]:
    findings = []
    if size != row.entry_count:
        findings.append(
            Finding(row.period, "period", f"{size} entries now, {row.entry_count} sealed")
        )
    if root != row.root:
        findings.append(Finding(row.period, "period", "the ledger root does not match"))
    if row.previous_root != previous_root:
        findings.append(Finding(row.period, "period", "the chain to the previous root breaks"))
    return findings

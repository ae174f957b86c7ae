"""Contracts: a partner's commercial and data-sharing terms, one immutable version per file.

A contract file is TOML (SPEC section 5). ``parse_contract`` reads one and returns either a
``ContractVersion`` or every problem it found, each naming the file, the line and key where it
could be located, and what is wrong (so one report lists them all, not the first only).
``check_versions`` judges new versions against those already stored: a version number is never
reused with other content, versions come in order, each takes effect after the one before and
never reaches back over entries already recorded.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from clearhouse.domain.errors import LimitExceeded
from clearhouse.domain.holds import HOLD_SECONDS_CONTRACT_DEFAULT
from clearhouse.domain.money import POINTS_PER_ENTRY_MAX
from clearhouse.domain.purposes import DataField, LegalBasis, Purpose, PurposeGrant

RATE_PATTERN: Final = re.compile(r"^-?\d+(\.\d+)?$")
RATE_DECIMALS_MAX: Final = 6
RETENTION_DAYS_MAX: Final = 3650
MAX_HOLD_SECONDS_MAX: Final = 90 * 86_400
"""No hold reserves points for longer than 90 days, whatever a contract says."""
ID_PATTERN: Final = re.compile(r"^[!-9;-~]{1,64}$")


class SettlementTerms(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    issue_rate: str
    """Money the partner pays the coalition per point issued (decimal string, ≤ 6 decimals)."""
    redemption_rate: str
    """Money the coalition pays the partner per point redeemed."""
    fee_per_entry: str = "0"
    """An operator fee per entry, paid by the partner."""
    breakage_share_rate: str = "0"
    """Money the coalition returns to the partner per point of its issue that expired (0: none;
    expiry then moves no money)."""


class LimitTerms(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    max_points_per_transaction: int
    max_points_per_member_per_day: int
    """Per member, per calendar day in the coalition's time zone, per kind (issue, redeem)."""
    max_hold_seconds: int = HOLD_SECONDS_CONTRACT_DEFAULT
    """The longest a hold may reserve a member's points, in seconds (default seven days)."""


class PurposeTerms(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    legal_basis: LegalBasis
    fields: list[DataField]
    retention_days: int | None = None
    """How long entry metadata sent for this purpose is kept (absent: as long as the entry)."""


class ContractFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The shape of a contract file; ``contracts/schema.json`` is generated from it."""

    partner_id: str
    version: int
    effective_from: datetime
    legal_name: str
    settlement: SettlementTerms
    limits: LimitTerms
    purposes: dict[Purpose, PurposeTerms]
    currency: str = "EUR"


@dataclass(frozen=True, slots=True)
class ContractProblem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


@dataclass(frozen=True, slots=True)
class ContractVersion:
    """One immutable version of a partner's terms, with the SHA-256 of its file."""

    partner_id: str
    version: int
    effective_from: datetime
    legal_name: str
    currency: str
    issue_rate: Decimal
    redemption_rate: Decimal
    fee_per_entry: Decimal
    max_points_per_transaction: int
    max_points_per_member_per_day: int
    grants: Mapping[Purpose, PurposeGrant]
    sha256: str
    source: str
    max_hold_seconds: int = HOLD_SECONDS_CONTRACT_DEFAULT
    breakage_share_rate: Decimal = Decimal("0")


class ContractInvalid(ValueError):
    """One or more contract files are refused; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[ContractProblem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = list(problems)


def contract_json_schema() -> dict[str, Any]:
    """The JSON Schema of contract files, for partners' own tools."""
    return msgspec.json.schema(ContractFile)


def _line_of(text: str, key_path: str) -> int | None:
    """The line where ``key_path`` (``settlement.issue_rate``) is written, if it can be found."""
    parts = key_path.split(".")
    lines = text.splitlines()
    start = 0
    if len(parts) > 1:
        table = re.compile(rf"^\s*\[\s*{re.escape('.'.join(parts[:-1]))}\s*\]")
        for number, line in enumerate(lines):
            if table.match(line):
                start = number + 1
                break
    key = re.compile(rf"^\s*{re.escape(parts[-1])}\s*=")
    for number in range(start, len(lines)):
        if key.match(lines[number]):
            return number + 1
    if len(parts) > 1:
        table = re.compile(rf"^\s*\[\s*{re.escape(key_path)}\s*\]")
        for number, line in enumerate(lines):
            if table.match(line):
                return number + 1
    return None


def _rate(value: str, key: str, problems: list[tuple[str, str]]) -> Decimal:
    if not RATE_PATTERN.match(value):
        problems.append((key, f"{value!r} is not a decimal number written as a string"))
        return Decimal(0)
    amount = Decimal(value)
    if amount < 0:
        problems.append((key, f"a rate cannot be negative ({value})"))
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > RATE_DECIMALS_MAX:
        problems.append((key, f"{value} has more than {RATE_DECIMALS_MAX} decimals"))
    return amount


def _msgspec_key(error: msgspec.ValidationError) -> str:
    """The dotted key an error is about, e.g. ``settlement.issue_rate``."""
    match = re.search(r"at `\$\.?([^`]*)`", str(error))
    path = match[1].replace("[...]", "") if match else ""
    unknown = re.search(r"unknown field `([^`]*)`", str(error))
    if unknown:
        path = f"{path}.{unknown[1]}" if path else unknown[1]
    return path or "(file)"


def parse_contract(name: str, data: bytes) -> ContractVersion:
    """Read one contract file; raise ``ContractInvalid`` with every problem found."""
    text = data.decode("utf-8", errors="replace")
    sha256 = hashlib.sha256(data).hexdigest()

    def refuse(found: list[tuple[str, str]]) -> ContractInvalid:
        return ContractInvalid(
            [ContractProblem(name, _line_of(text, key), key, message) for key, message in found]
        )

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ContractInvalid(
            [ContractProblem(name, int(line[1]) if line else None, "(file)", f"not TOML: {exc}")]
        ) from exc
    problems: list[tuple[str, str]] = []
    known = {p.value for p in Purpose}
    for purpose in raw.get("purposes", {}) if isinstance(raw.get("purposes"), dict) else {}:
        if purpose not in known:
            problems.append(
                (f"purposes.{purpose}", f"unknown purpose (known: {', '.join(sorted(known))})")
            )
        terms = raw["purposes"][purpose]
        fields = terms.get("fields", []) if isinstance(terms, dict) else []
        for field in fields if isinstance(fields, list) else []:
            if field not in {f.value for f in DataField}:
                problems.append((f"purposes.{purpose}.fields", f"unknown field {field!r}"))
    if problems:
        raise refuse(problems)
    try:
        contract = msgspec.convert(raw, ContractFile, strict=True)
    except msgspec.ValidationError as exc:
        raise refuse([(_msgspec_key(exc), str(exc).split(" - at ")[0])]) from exc

    if not ID_PATTERN.match(contract.partner_id):
        problems.append(("partner_id", "1 to 64 printable ASCII characters without ':'"))
    if contract.version < 1:
        problems.append(("version", "versions start at 1"))
    if contract.effective_from.tzinfo is None:
        problems.append(("effective_from", "needs a UTC offset, e.g. 2026-11-15T00:00:00+01:00"))
    if not re.fullmatch(r"[A-Z]{3}", contract.currency):
        problems.append(("currency", "an ISO 4217 code such as EUR"))
    if not contract.legal_name.strip():
        problems.append(("legal_name", "must not be empty"))
    issue_rate = _rate(contract.settlement.issue_rate, "settlement.issue_rate", problems)
    redemption_rate = _rate(
        contract.settlement.redemption_rate, "settlement.redemption_rate", problems
    )
    fee = _rate(contract.settlement.fee_per_entry, "settlement.fee_per_entry", problems)
    breakage_share = _rate(
        contract.settlement.breakage_share_rate, "settlement.breakage_share_rate", problems
    )
    for key, limit in (
        ("limits.max_points_per_transaction", contract.limits.max_points_per_transaction),
        ("limits.max_points_per_member_per_day", contract.limits.max_points_per_member_per_day),
    ):
        if not 1 <= limit <= POINTS_PER_ENTRY_MAX:
            problems.append((key, f"must lie between 1 and {POINTS_PER_ENTRY_MAX}, not {limit}"))
    if not 1 <= contract.limits.max_hold_seconds <= MAX_HOLD_SECONDS_MAX:
        problems.append(
            ("limits.max_hold_seconds", f"must lie between 1 and {MAX_HOLD_SECONDS_MAX}")
        )
    for purpose, terms in contract.purposes.items():
        if len(set(terms.fields)) != len(terms.fields):
            problems.append((f"purposes.{purpose.value}.fields", "a field is listed twice"))
        if terms.retention_days is not None and not 1 <= terms.retention_days <= RETENTION_DAYS_MAX:
            problems.append(
                (
                    f"purposes.{purpose.value}.retention_days",
                    f"must lie between 1 and {RETENTION_DAYS_MAX}",
                )
            )
    if problems:
        raise refuse(problems)
    return ContractVersion(
        partner_id=contract.partner_id,
        version=contract.version,
        effective_from=contract.effective_from,
        legal_name=contract.legal_name,
        currency=contract.currency,
        issue_rate=issue_rate,
        redemption_rate=redemption_rate,
        fee_per_entry=fee,
        breakage_share_rate=breakage_share,
        max_points_per_transaction=contract.limits.max_points_per_transaction,
        max_points_per_member_per_day=contract.limits.max_points_per_member_per_day,
        max_hold_seconds=contract.limits.max_hold_seconds,
        grants={
            purpose: PurposeGrant(terms.legal_basis, frozenset(terms.fields), terms.retention_days)
            for purpose, terms in contract.purposes.items()
        },
        sha256=sha256,
        source=text,
    )


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """What the store already holds of a partner's version."""

    version: int
    effective_from: datetime
    sha256: str


def check_versions(
    file_names: Mapping[tuple[str, int], str],
    new: Sequence[ContractVersion],
    stored: Mapping[str, Sequence[StoredVersion]],
    last_entry_at: Mapping[str, datetime],
) -> tuple[list[ContractVersion], list[ContractProblem]]:
    """Which of ``new`` to store, and every problem with the set.

    Identical files of versions already stored are skipped (loading is idempotent). A stored
    version number with other content, a gap or a version out of order, an ``effective_from``
    not after the previous version's, or one at or before the partner's last recorded entry
    (terms never reach back) is refused.
    """
    to_store: list[ContractVersion] = []
    problems: list[ContractProblem] = []
    by_partner: dict[str, list[ContractVersion]] = {}
    for version in new:
        by_partner.setdefault(version.partner_id, []).append(version)
    for partner_id, versions in by_partner.items():
        known = {s.version: s for s in stored.get(partner_id, ())}
        latest = max(known.values(), key=lambda s: s.version, default=None)
        for version in sorted(versions, key=lambda v: v.version):
            name = file_names[(partner_id, version.version)]
            existing = known.get(version.version)
            if existing is not None:
                if existing.sha256 != version.sha256:
                    problems.append(
                        ContractProblem(
                            name,
                            None,
                            "version",
                            f"version {version.version} of {partner_id} is stored already with "
                            "other content; versions are immutable: give the change a new number",
                        )
                    )
                continue
            expected = 1 if latest is None else latest.version + 1
            if version.version != expected:
                problems.append(
                    ContractProblem(
                        name, None, "version", f"the next version of {partner_id} is {expected}"
                    )
                )
                continue
            if latest is not None and version.effective_from <= latest.effective_from:
                problems.append(
                    ContractProblem(
                        name,
                        None,
                        "effective_from",
                        f"must lie after version {latest.version}'s "
                        f"({latest.effective_from.isoformat()})",
                    )
                )
                continue
            last = last_entry_at.get(partner_id)
            if last is not None and version.effective_from <= last:
                problems.append(
                    ContractProblem(
                        name,
                        None,
                        "effective_from",
                        f"would reach back over entries already recorded (last at "
                        f"{last.isoformat()}); terms never apply retroactively",
                    )
                )
                continue
            to_store.append(version)
            latest = StoredVersion(version.version, version.effective_from, version.sha256)
    return to_store, problems


def check_points_limit(version: ContractVersion, points: int) -> None:
    """Refuse more points in one transaction than the contract version allows."""
    if points > version.max_points_per_transaction:
        raise LimitExceeded(
            f"contract version {version.version} allows at most "
            f"{version.max_points_per_transaction} points per transaction"
        )

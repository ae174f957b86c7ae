"""What an audit checked and what it found: counts that say what was verified, and findings
that name the period, entry or statement that does not match.

A verification that checked nothing never says "verifies": an empty ledger is
``nothing_to_verify``, and a period that is not closed is a finding. The partner evidence of an
entry is checked here as far as it can be without a key: that the signature base the partner
signed speaks of this entry (its method, path, purpose and body digest); the Ed25519 check of
the base against the partner's key is the caller's (``crypto``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

PURPOSE_OF_KIND: Final = {"issue": "accrual", "redeem": "redemption"}
SIGNED_KINDS: Final = frozenset({"issue", "redeem", "reversal"})


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing that does not match, named so that it can be found."""

    period: str
    subject: str
    """``period``, ``entry <entry_id>`` or ``statement <party>``."""
    problem: str

    def __str__(self) -> str:
        return f"period {self.period}: {self.subject}: {self.problem}"


@dataclass(slots=True)
class VerificationReport:
    """The counts of what was checked, and every finding."""

    period: str | None
    """The period asked for; None: every closed period."""
    periods: int = 0
    entries: int = 0
    statement_hashes: int = 0
    statement_signatures: int = 0
    partner_signatures: int = 0
    entries_without_partner_signature: int = 0
    """Operator and settlement entries: no partner request made them, and their lines say so."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``verifies``, ``problems`` or ``nothing_to_verify`` (no closed period at all)."""
        if self.findings:
            return "problems"
        return "nothing_to_verify" if self.periods == 0 else "verifies"

    @property
    def verifies(self) -> bool:
        return self.outcome == "verifies"

    def summary(self) -> str:
        if self.outcome == "nothing_to_verify":
            return "nothing to verify: no closed period"
        counts = (
            f"{self.periods} period(s), {self.entries} entries, "
            f"{self.statement_hashes} statement hash(es), "
            f"{self.statement_signatures} statement signature(s), "
            f"{self.partner_signatures} partner signature(s) on entries "
            f"({self.entries_without_partner_signature} entries without one: operator or "
            "settlement)"
        )
        if self.outcome == "verifies":
            return f"verifies: {counts}"
        return f"{len(self.findings)} problem(s) in {counts}"

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "period": self.period,
            "checked": {
                "periods": self.periods,
                "entries": self.entries,
                "statement_hashes": self.statement_hashes,
                "statement_signatures": self.statement_signatures,
                "partner_signatures": self.partner_signatures,
                "entries_without_partner_signature": self.entries_without_partner_signature,
            },
            "problems": [
                {"period": f.period, "subject": f.subject, "problem": f.problem}
                for f in self.findings
            ],
        }


def signature_base_lines(base: str) -> dict[str, str]:
    """The covered components of an RFC 9421 signature base, by their identifier."""
    lines: dict[str, str] = {}
    for line in base.split("\n"):
        name, separator, value = line.partition(": ")
        if not separator:
            raise ValueError("a line of the signature base has no ': '")
        lines[name] = value
    return lines


BATCH_PATH: Final = "/v1/transactions/batch"
"""Where an issue or a redeem sent as an item of a batch was signed: the batch's request."""


def expected_paths(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The paths a partner's request for this entry may have been sent to: an issue's or a
    redeem's own, or a batch's; a capture's redeem went to its hold's capture."""
    if entry.get("hold_id") is not None:
        return (f"/v1/holds/{entry['hold_id']}/capture",)
    if entry["kind"] == "reversal":
        return (f"/v1/transactions/{entry['reversal_of']}/reversals",)
    return (f"/v1/transactions/{entry['kind']}", BATCH_PATH)


def expected_purpose(entry: Mapping[str, Any]) -> str:
    """The ``Data-Purpose`` of the request: a reversal's is that of the entry it reverses,
    which its member posting shows (a reversed issue takes points back, a reversed redeem
    gives them back)."""
    kind = str(entry["kind"])
    if kind != "reversal":
        return PURPOSE_OF_KIND[kind]
    member = [p for p in entry["postings"] if str(p["account"]).startswith("member:")]
    return "accrual" if member and int(member[0]["amount"]) < 0 else "redemption"


def evidence_problems(entry: Mapping[str, Any]) -> list[str]:
    """What in an entry's partner evidence does not speak of the entry (keys aside)."""
    base = entry.get("signature_base")
    if base is None:
        return ["it carries a partner signature but no signature base"]
    try:
        lines = signature_base_lines(base)
    except ValueError as exc:
        return [f"its signature base is malformed: {exc}"]
    problems = []
    if lines.get('"@method"') != "POST":
        problems.append("its signature base is not of a POST")
    target = lines.get('"@target-uri"')
    paths = expected_paths(entry)
    if target is None or urlsplit(target).path.lower() not in [p.lower() for p in paths]:
        problems.append(f"its signature base is of another path than {' or '.join(paths)}")
    if lines.get('"data-purpose"') != expected_purpose(entry):
        problems.append(
            f"its signature base declares another purpose than {expected_purpose(entry)}"
        )
    if lines.get('"content-digest"') != entry.get("content_digest"):
        problems.append("its signature base covers another body digest than the entry's")
    if '"@signature-params"' not in lines:
        problems.append("its signature base has no @signature-params line")
    return problems

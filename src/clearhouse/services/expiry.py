"""The expiry run: points past their lot's time leave their members for breakage.

One run at a time in the coalition (a session advisory lock; another is
``ExpiryRunInProgress``). A run first ends the holds whose time ran out, so that what they
reserved is free again, then expires members' due lots in batches of members, each batch one
transaction of one statement (``expiry_run_batch``): per member one expiry entry whose lot
consumptions name the lots it expired. A rerun finds nothing left: what a lot expired is no
longer in it.

Then the reminders (``Reminders``): for points that will expire, one ``points.expiring`` event
per member, day of expiry (in the coalition's time zone) and offset to each related partner
whose contract version in force grants ``member.balance`` for ``customer_service`` (and, where
that purpose rests on consent, whose member consented), recorded in the outbox with its
disclosure in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from clearhouse.domain.errors import ExpiryRunInProgress
from clearhouse.domain.expiry import (
    REMINDER_DAYS_DEFAULT,
    ExpiringPoints,
    reminders_due,
    validate_within_days,
)
from clearhouse.domain.purposes import DataField, Purpose, decide_disclosure
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.holds import Holds
from clearhouse.services.posting import refusals_as_errors
from clearhouse.storage import expiry as store
from clearhouse.storage.expiry import Reminder
from clearhouse.storage.ledger import ledger_now

BATCH_MEMBERS = 2000


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    """What one run did."""

    holds_expired: int
    members: int
    entries: int
    points: int
    reminders: int = 0
    """``points.expiring`` events recorded (each one partner's, and a disclosure)."""


class Reminders:
    """The reminders before expiry, at the offsets of the coalition's policy."""

    def __init__(
        self,
        database: Database,
        contracts: ContractBook,
        zone: str,
        reminder_days: tuple[int, ...] = REMINDER_DAYS_DEFAULT,
    ) -> None:
        self._database = database
        self._contracts = contracts
        self._zone = ZoneInfo(zone)
        self._reminder_days = reminder_days

    async def send(self, batch_members: int = BATCH_MEMBERS) -> int:
        """Record every reminder due at the ledger clock and not recorded before; how many."""
        if not self._reminder_days:
            return 0
        sent = 0
        after = ""
        while True:
            async with self._database.transaction() as connection:
                now = await ledger_now(connection)
                until = now + timedelta(days=max(self._reminder_days))
                found = await store.members_expiring(connection, now, until, after, batch_members)
                if not found:
                    return sent
                reminders = [
                    reminder
                    for member in found
                    for reminder in await self._reminders_of(member, now)
                ]
                sent += await store.record_reminders(connection, reminders)
                after = found[-1].member_id

    async def _reminders_of(self, member: store.MemberExpiring, now: datetime) -> list[Reminder]:
        due = reminders_due(now, member.expiring, self._reminder_days, self._zone)
        if not due:
            return []
        reminders: list[Reminder] = []
        for partner_id in member.partners:
            version = await self._contracts.in_force(partner_id, now)
            decision = decide_disclosure(
                None if version is None else version.grants,
                partner_id,
                Purpose.CUSTOMER_SERVICE,
                member.consents,
                {DataField.BALANCE},
            )
            if version is None or DataField.BALANCE not in decision.fields:
                continue
            assert decision.legal_basis is not None
            reminders.extend(
                Reminder(
                    partner_id,
                    member.member_id,
                    reminder.day,
                    reminder.expires_at,
                    reminder.points,
                    reminder.days_before,
                    version.version,
                    decision.legal_basis.value,
                )
                for reminder in due
            )
        return reminders


class Expiry:
    """Runs expiry (and then the reminders, when given) and answers which of a member's points
    expire when."""

    def __init__(
        self, database: Database, holds: Holds, zone: str, reminders: Reminders | None = None
    ) -> None:
        self._database = database
        self._holds = holds
        self._zone = zone
        self._reminders = reminders

    async def run(self, batch_members: int = BATCH_MEMBERS) -> ExpiryRun:
        """Expire every point past its lot's time that no open hold reserves."""
        async with self._database.driver_connection() as connection:
            if not await store.try_lock(connection):
                raise ExpiryRunInProgress("another expiry run is under way; this one did nothing")
            try:
                holds_expired = await self._holds.expire_due()
                members = entries = points = 0
                after = ""
                while True:
                    async with refusals_as_errors(keyed=False):
                        batch = await store.expire_batch(
                            connection, after, batch_members, self._zone
                        )
                    if batch.last_member is None:
                        break
                    members += batch.members
                    entries += batch.entries
                    points += batch.points
                    after = batch.last_member
                reminders = 0 if self._reminders is None else await self._reminders.send()
            finally:
                await store.unlock(connection)
        return ExpiryRun(holds_expired, members, entries, points, reminders)

    async def expiring(self, member_id: str, within_days: int) -> list[ExpiringPoints]:
        """The member's points expiring within ``within_days`` days of the ledger clock."""
        validate_within_days(within_days)
        async with self._database.driver_connection() as connection:
            now = await ledger_now(connection)
            return await store.member_expiring(
                connection, member_id, now, now + timedelta(days=within_days)
            )

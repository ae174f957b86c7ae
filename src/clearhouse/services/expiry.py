"""The expiry run: points past their lot's time leave their members for breakage.

One run at a time in the coalition (a session advisory lock; another is
``ExpiryRunInProgress``). A run first ends the holds whose time ran out, so that what they
reserved is free again, then expires members' due lots in batches of members, each batch one
transaction of one statement (``expiry_run_batch``): per member one expiry entry whose lot
consumptions name the lots it expired. A rerun finds nothing left: what a lot expired is no
longer in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from clearhouse.domain.errors import ExpiryRunInProgress
from clearhouse.domain.expiry import ExpiringPoints, validate_within_days
from clearhouse.services.database import Database
from clearhouse.services.holds import Holds
from clearhouse.services.posting import refusals_as_errors
from clearhouse.storage import expiry as store
from clearhouse.storage.ledger import ledger_now

BATCH_MEMBERS = 2000


@dataclass(frozen=True, slots=True)
class ExpiryRun:
    """What one run did."""

    holds_expired: int
    members: int
    entries: int
    points: int


class Expiry:
    """Runs expiry and answers which of a member's points expire when."""

    def __init__(self, database: Database, holds: Holds, zone: str) -> None:
        self._database = database
        self._holds = holds
        self._zone = zone

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
            finally:
                await store.unlock(connection)
        return ExpiryRun(holds_expired, members, entries, points)

    async def expiring(self, member_id: str, within_days: int) -> list[ExpiringPoints]:
        """The member's points expiring within ``within_days`` days of the ledger clock."""
        validate_within_days(within_days)
        async with self._database.driver_connection() as connection:
            now = await ledger_now(connection)
            return await store.member_expiring(
                connection, member_id, now, now + timedelta(days=within_days)
            )

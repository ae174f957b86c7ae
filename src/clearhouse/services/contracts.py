"""Loading contract files, and the contract version in force for a partner.

``load_contracts`` validates every file first and stores all or nothing. ``ContractBook`` keeps
each partner's versions in memory (they are immutable, so the only way to be stale is to miss a
version loaded since): the ledger names the version it used in ``ledger_post``, which checks it
against the version in force at the database clock and refuses a mismatch; the book then
reloads and the posting is tried once more. Disclosures check the same way.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from clearhouse.domain.contracts import (
    ContractInvalid,
    ContractProblem,
    ContractVersion,
    check_points_limit,
    check_versions,
    parse_contract,
)
from clearhouse.domain.errors import ContractChanged, PurposeNotPermitted
from clearhouse.domain.ledger import partner_accounts
from clearhouse.domain.purposes import Purpose
from clearhouse.services.database import Database
from clearhouse.storage import contracts as store
from clearhouse.storage import events as event_store
from clearhouse.storage import ledger as ledger_store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LoadReport:
    stored: list[tuple[str, int]]
    unchanged: list[tuple[str, int]]
    partners_added: list[str]


async def load_contracts(database: Database, files: Sequence[tuple[str, bytes]]) -> LoadReport:
    """Validate every file, then store the new versions (and their partners) at once.

    Raises ``ContractInvalid`` naming every problem of every file; nothing is stored then.
    """
    versions: list[ContractVersion] = []
    problems: list[ContractProblem] = []
    names: dict[tuple[str, int], str] = {}
    for name, data in files:
        try:
            version = parse_contract(name, data)
        except ContractInvalid as invalid:
            problems.extend(invalid.problems)
            continue
        key = (version.partner_id, version.version)
        if key in names:
            problems.append(ContractProblem(name, None, "version", f"same version as {names[key]}"))
            continue
        names[key] = name
        versions.append(version)
    if problems:
        raise ContractInvalid(problems)
    partner_ids = sorted({v.partner_id for v in versions})
    async with database.transaction() as connection:
        # Loads take turns, so two operators cannot both store "the next" version.
        await connection.execute("LOCK TABLE contract_versions IN SHARE ROW EXCLUSIVE MODE")
        stored = await store.stored_versions(connection, partner_ids)
        last = await store.last_entries(connection, partner_ids)
        to_store, problems = check_versions(names, versions, stored, last)
        if problems:
            raise ContractInvalid(problems)
        existing = await store.existing_partners(connection, partner_ids)
        added = []
        for version in sorted(to_store, key=lambda v: (v.partner_id, v.version)):
            if version.partner_id not in existing:
                await ledger_store.insert_partner(
                    connection,
                    version.partner_id,
                    version.legal_name,
                    partner_accounts(version.partner_id),
                )
                existing.add(version.partner_id)
                added.append(version.partner_id)
        await store.insert_versions(connection, to_store)
        # A version in force at once is announced with the load (contract.version_effective);
        # one that takes effect later, by the maintenance loop of serve once it does.
        await event_store.announce_contract_versions(connection)
    stored_keys = [(v.partner_id, v.version) for v in to_store]
    return LoadReport(
        stored=stored_keys,
        unchanged=sorted(k for k in names if k not in set(stored_keys)),
        partners_added=added,
    )


class ContractBook:
    """Each partner's contract versions, cached; the database has the last word."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._versions: dict[str, list[ContractVersion]] = {}
        self._clock_offset: timedelta | None = None
        self._lock = asyncio.Lock()

    def forget(self, partner_id: str | None = None) -> None:
        """Drop what is cached (of one partner, or of all and the clock offset)."""
        if partner_id is None:
            self._versions.clear()
            self._clock_offset = None
        else:
            self._versions.pop(partner_id, None)

    async def versions(self, partner_id: str) -> list[ContractVersion]:
        cached = self._versions.get(partner_id)
        if cached is None:
            async with self._database.driver_connection() as connection:
                cached = await store.partner_versions(connection, partner_id)
            self._versions[partner_id] = cached
        return cached

    async def ledger_time(self) -> datetime:
        """The ledger clock, estimated from the cached sandbox offset (exact in the database)."""
        if self._clock_offset is None:
            async with self._lock, self._database.driver_connection() as connection:
                now = await ledger_store.ledger_now(connection)
                self._clock_offset = now - datetime.now(UTC)
        return datetime.now(UTC) + self._clock_offset

    async def in_force(self, partner_id: str, at: datetime | None = None) -> ContractVersion | None:
        """The version whose ``effective_from`` is the latest at or before ``at``."""
        moment = at or await self.ledger_time()
        versions = await self.versions(partner_id)
        index = bisect_right([v.effective_from for v in versions], moment)
        return versions[index - 1] if index else None

    async def require_grant(self, partner_id: str, purpose: Purpose) -> ContractVersion:
        """The version in force, which must grant ``purpose``: the one check of every partner
        request that serves a purpose (posting, reading entries, members' data).

        One code for both causes a partner can mend only with the operator: no version in
        force grants nothing, so it is ``purpose_not_permitted`` like a version that does not
        grant this purpose (``forbidden`` stays for a caller whose role may not do a thing at
        all). A miss is read again from the database first: a version may have been loaded
        elsewhere since it was cached.
        """
        version = await self.in_force(partner_id)
        if version is None or purpose not in version.grants:
            self.forget(partner_id)
            version = await self.in_force(partner_id)
        if version is None:
            raise PurposeNotPermitted("the partner has no contract version in force")
        if purpose not in version.grants:
            raise PurposeNotPermitted(
                f"contract version {version.version} grants nothing for {purpose.value}"
            )
        return version

    async def under_contract(
        self,
        partner_id: str,
        purpose: Purpose,
        points: int,
        write: Callable[[ContractVersion], Awaitable[T]],
    ) -> T:
        """``write`` under the version in force, which must grant ``purpose`` and allow
        ``points`` per transaction; once more when the database refuses the version because a
        newer one took effect since it was cached (``ContractChanged``)."""
        for attempt in range(2):
            version = await self.require_grant(partner_id, purpose)
            check_points_limit(version, points)
            try:
                return await write(version)
            except ContractChanged:
                self.forget()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def version(self, partner_id: str, number: int) -> ContractVersion | None:
        for version in await self.versions(partner_id):
            if version.version == number:
                return version
        self.forget(partner_id)
        for version in await self.versions(partner_id):
            if version.version == number:
                return version
        return None

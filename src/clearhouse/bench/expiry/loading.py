"""The lots an expiry benchmark expires: one partner, M members and N lots issued in January 2029
and loaded in bulk in one transaction, each expiring a year later; the ledger clock then past
all of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from clearhouse.bench.ledger.coalition import BENCH_CONTRACT_VERSION, bench_contract
from clearhouse.bench.lots import LotMembers, issue_lots
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import load_contracts
from clearhouse.services.database import Database
from clearhouse.storage import ledger as ledger_store
from clearhouse.storage.migrate import upgrade

BENCH_DATABASE: Final = "clearhouse_bench_expiry"
RUN_DATABASE: Final = "clearhouse_bench_expiry_run"
ZONE: Final = ZoneInfo("Europe/Berlin")
PARTNER: Final = "bench-partner-1"
MEMBER_PREFIX: Final = "bench-member-"
ISSUED_FROM: Final = datetime(2029, 1, 1, tzinfo=ZONE)
ISSUED_OVER: Final = timedelta(days=31)
"""The lots are recorded evenly over January 2029."""
LOT_LIFETIME: Final = timedelta(days=365)
EXPIRY_AT: Final = datetime(2030, 3, 1, 12, tzinfo=ZONE)
"""The ledger clock of the expiry runs: past every lot's ``expires_at``, in an open period."""
DEFAULT_OUT: Final = Path("reports") / "bench-expiry.json"


@dataclass(frozen=True, slots=True)
class LoadFigures:
    seconds: float
    lots: int
    points: int
    database_bytes: int
    invariant_violations: list[str]
    vacuum_analyze_s: float


async def prepare(
    database: Database, *, lots: int, members: int, progress: Callable[[str], None]
) -> LoadFigures:
    """Migrate, the partner's contract, the members, then the lots in bulk; the clock past them."""
    progress("migrating; the partner through load_contracts; members through enrol_members")
    await upgrade(database.engine)
    await set_ledger_time(database, sandbox=True, at=ISSUED_FROM)
    await load_contracts(database, [(f"{PARTNER}.v1.toml", bench_contract(PARTNER).encode())])
    owners = LotMembers(MEMBER_PREFIX, members)
    await enrol_members(database, owners.ids())

    progress(f"loading {lots:,} lots over {members:,} members in bulk, one transaction")
    began = time.perf_counter()
    async with database.transaction() as connection:
        await connection.execute("SET LOCAL work_mem = '256MB'")
        issued = await issue_lots(
            connection,
            owners,
            lots=lots,
            partner_id=PARTNER,
            contract_version=BENCH_CONTRACT_VERSION,
            recorded_from=ISSUED_FROM,
            step=ISSUED_OVER / lots,
            expires_after=LOT_LIFETIME,
        )
    seconds = time.perf_counter() - began

    progress("VACUUM ANALYZE; checking the ledger's invariants")
    began = time.perf_counter()
    async with database.driver_connection() as connection:
        await connection.execute(
            "VACUUM (ANALYZE) entries, postings, lots, member_balances, events, accounts"
        )
        vacuum_s = time.perf_counter() - began
        violations = await ledger_store.invariant_violations(connection)
        size = int(await connection.fetchval("SELECT pg_database_size(current_database())"))
    await set_ledger_time(database, sandbox=True, at=EXPIRY_AT)
    return LoadFigures(
        seconds=seconds,
        lots=issued.lots,
        points=issued.points,
        database_bytes=size,
        invariant_violations=violations,
        vacuum_analyze_s=vacuum_s,
    )

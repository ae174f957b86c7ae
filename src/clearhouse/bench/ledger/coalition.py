"""The ledger benchmark's coalition: its partners and contracts, its members seeded through the
ledger service, and the figures of the mix every run posts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from clearhouse.bench.ledger.driving import Throughput
from clearhouse.bench.lots import LotMembers, issue_lots
from clearhouse.domain.money import POINTS_PER_ENTRY_MAX
from clearhouse.services.coalition import enrol_members
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.posting import Ledger, PointsRequest
from clearhouse.storage.migrate import upgrade

BENCH_DATABASE: Final = "clearhouse_bench"
PARTNERS: Final = 5
MEMBERS: Final = 10_000
SEED_POINTS: Final = 1_000_000
"""Each member's opening balance: far more than the redeems of any run can take."""
POINTS_MAX: Final = 100
"""Each issue or redeem moves 1 to this many points."""
ISSUE_SHARE: Final = 0.5
"""The share of issues in the mix; the rest are redeems."""
WARMUP_SECONDS: Final = 1.0
BENCH_CONTRACT_VERSION: Final = 1
BENCH_ZONE: Final = "Europe/Berlin"
DEFAULT_OUT: Final = Path("reports") / "bench-ledger.json"

LOT_REDEEM_POINTS: Final = 20
"""What each redeem of the lot runs takes: all of its member's points."""
LOT_SHAPES: Final = {"one_lot": 1, "twenty_lots": 20}
"""The lot runs' members hold LOT_REDEEM_POINTS in this many lots: one of 20 points, or twenty
of 1 point, so that their redeem takes one lot or twenty."""
LOT_MEMBERS: Final = 2_000
"""Members of each lot shape, each redeemed once: half of them in each of the shape's two runs."""


def bench_ids() -> tuple[list[str], list[str]]:
    """The ids of the bench's partners and members."""
    partner_ids = [f"bench-partner-{n}" for n in range(1, PARTNERS + 1)]
    member_ids = [f"bench-member-{n:05d}" for n in range(1, MEMBERS + 1)]
    return partner_ids, member_ids


async def prepare(
    database: Database,
    partner_ids: Sequence[str],
    member_ids: Sequence[str],
    workers: int,
    progress: Callable[[str], None],
) -> Throughput:
    """Migrate an empty database, add the partners, enrol and seed the members."""
    progress("migrating, adding partners, enrolling members")
    await upgrade(database.engine)
    await load_contracts(
        database,
        [
            (f"{partner_id}.v1.toml", bench_contract(partner_id).encode())
            for partner_id in partner_ids
        ],
    )
    await enrol_members(database, member_ids)
    progress(f"seeding {len(member_ids):,} members with {SEED_POINTS:,} points each (issues)")
    return await seed(bench_ledger(database), partner_ids, member_ids, workers)


def lot_members(shape: str) -> LotMembers:
    return LotMembers(f"bench-{shape.replace('_', '-')}-", LOT_MEMBERS)


async def prepare_lot_members(
    database: Database, partner_id: str, progress: Callable[[str], None]
) -> int:
    """Enrol the lot runs' members and load their lots in bulk (one transaction, issues by
    ``partner_id``, never expiring, as the seed's); the issue entries loaded."""
    for shape in LOT_SHAPES:
        await enrol_members(database, lot_members(shape).ids())
    loaded = 0
    async with database.transaction() as connection:
        for shape, lots in LOT_SHAPES.items():
            progress(f"loading {LOT_MEMBERS:,} members with {lots} lot(s) each, in bulk")
            issued = await issue_lots(
                connection,
                lot_members(shape),
                lots=LOT_MEMBERS * lots,
                partner_id=partner_id,
                contract_version=BENCH_CONTRACT_VERSION,
                recorded_from=datetime.now(UTC) - timedelta(hours=1),
                step=timedelta(milliseconds=1),
                points_per_lot=LOT_REDEEM_POINTS // lots,
            )
            loaded += issued.lots
    return loaded


def bench_contract(partner_id: str) -> str:
    """Contract version 1 for a bench partner: in force since 2000, limits out of the way."""
    return f"""
partner_id = "{partner_id}"
version = {BENCH_CONTRACT_VERSION}
effective_from = "2000-01-01T00:00:00Z"
legal_name = "Bench partner {partner_id}"

[settlement]
issue_rate = "0.01"
redemption_rate = "0.008"

[limits]
max_points_per_transaction = {SEED_POINTS}
max_points_per_member_per_day = {POINTS_PER_ENTRY_MAX}

[purposes.accrual]
legal_basis = "contract"
fields = ["member.balance"]

[purposes.redemption]
legal_basis = "contract"
fields = ["member.balance"]
"""


def bench_ledger(database: Database) -> Ledger:
    return Ledger(database, ContractBook(database), BENCH_ZONE)


async def seed(
    ledger: Ledger, partner_ids: Sequence[str], member_ids: Sequence[str], workers: int
) -> Throughput:
    """One issue of ``SEED_POINTS`` to every member, by the partners in turn."""
    loop = asyncio.get_running_loop()
    todo = iter(enumerate(member_ids))
    start = loop.time()

    async def worker() -> None:
        for n, member_id in todo:
            request = PointsRequest(member_id, SEED_POINTS, datetime.now(UTC), "bench seed")
            partner_id = partner_ids[n % len(partner_ids)]
            await ledger.issue(partner_id, request, idempotency_key=f"bench-seed-{n}")

    await asyncio.gather(*(worker() for _ in range(workers)))
    return Throughput(len(member_ids), 0, loop.time() - start)

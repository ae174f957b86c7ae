"""A settled month of three partners like the demo's, its workbooks, and LibreOffice to print
them: what the print tests and ``render_summary`` share.

The statements are built and signed in memory (``tests.statements.test_workbook``), so no
database is needed; the workbooks are written by the product's writer, as a download is.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from clearhouse.domain.netting import LineKind
from clearhouse.domain.records import StatementEntry
from tests.statements.test_workbook import (
    COHORTS,
    Partner,
    aggregate,
    coalition_statements,
    contract_version,
    partner_statement,
    write,
)

CONVERT_TIMEOUT: Final = 240.0
"""Seconds LibreOffice may take to print a few workbooks (its first start makes a profile)."""


def demo_partners() -> list[Partner]:
    """The demo's three partners with their contracts' rates: the bakery under two versions,
    the fuel stations with a fee per entry, the online shop paying more than it is paid."""
    bakery, fuel, shop = "baeckerei-schmidt", "tankstelle-nord", "shopwelt"
    return [
        Partner(
            bakery,
            "Bäckerei Schmidt GmbH",
            [
                contract_version(bakery, 1, issue_rate="0.0100", redemption_rate="0.0085"),
                contract_version(bakery, 2, issue_rate="0.0100", redemption_rate="0.0080"),
            ],
            [
                aggregate(bakery, 1, LineKind.ISSUE, 41_250, 320),
                aggregate(bakery, 1, LineKind.REDEMPTION, 18_400, 150),
                aggregate(bakery, 2, LineKind.ISSUE, 36_900, 75),
                aggregate(bakery, 2, LineKind.REDEMPTION, 52_730, 0),
            ],
        ),
        Partner(
            fuel,
            "Tankstelle Nord AG",
            [
                contract_version(
                    fuel, 1, issue_rate="0.012500", redemption_rate="0.010000", fee="0.0020"
                )
            ],
            [
                aggregate(fuel, 1, LineKind.ISSUE, 96_400, 1_250),
                aggregate(fuel, 1, LineKind.REDEMPTION, 31_075, 40),
            ],
        ),
        Partner(
            shop,
            "Shopwelt Online GmbH",
            [contract_version(shop, 1, issue_rate="0.009000", redemption_rate="0.007500")],
            [
                aggregate(shop, 1, LineKind.ISSUE, 12_800),
                aggregate(shop, 1, LineKind.REDEMPTION, 64_150, 900),
            ],
        ),
    ]


def month_entries(partner_ids: list[str], per_day: int = 6) -> Iterator[StatementEntry]:
    """Entries through November 2026, ``per_day`` a day per partner, issues and redeems."""
    start = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 1 November, 00:00 in Berlin
    number = 0
    for day in range(30):
        for slot in range(per_day):
            for partner_id in partner_ids:
                number += 1
                moment = start + timedelta(days=day, hours=7 + 2 * slot, minutes=number % 50)
                yield StatementEntry(
                    entry_id=f"00000000-0000-4000-8000-{number:012d}",
                    recorded_at=moment,
                    occurred_at=moment - timedelta(minutes=2),
                    kind="issue" if slot % 3 else "redeem",
                    partner_id=partner_id,
                    member_id=f"m-{1001 + number % 40}",
                    points=40 + (number * 37) % 460,
                    contract_version=1 if day < 14 else 2,
                    reference=f"receipt {number:06d}",
                    reversal_of=None,
                )


async def _write_month(folder: Path) -> list[Path]:
    members = demo_partners()
    paths = []
    for member in members:
        data = await write(
            partner_statement(member), rows=month_entries([member.partner_id], per_day=4)
        )
        paths.append(folder / f"statement-2026-11-{member.partner_id}.xlsx")
        paths[-1].write_bytes(data)
    coalition, others = coalition_statements(members, COHORTS)
    rows = month_entries([m.partner_id for m in members], per_day=2)
    paths.append(folder / "statement-2026-11-coalition.xlsx")
    paths[-1].write_bytes(await write(coalition, others, rows))
    return paths


def write_month(folder: Path) -> list[Path]:
    """The month's workbooks, each partner's and the coalition's, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_write_month(folder))


def soffice() -> str:
    """LibreOffice's command; its absence is a failure, not a reason to skip (the print
    tests run where the Debian package libreoffice-calc-nogui is installed)."""
    found = shutil.which("soffice")
    assert found is not None, "soffice not found: install libreoffice-calc-nogui"
    return found


def to_pdf(workbooks: list[Path], folder: Path) -> list[Path]:
    """Each workbook printed to PDF by LibreOffice headless, in ``folder``; with a profile of
    its own there, so that runs side by side do not share (and lock) one."""
    profile = (folder / "libreoffice-profile").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            soffice(),
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "pdf",
            "--outdir",
            str(folder),
            *map(str, workbooks),
        ],
        check=True,
        capture_output=True,
        timeout=CONVERT_TIMEOUT,
        env={**os.environ, "HOME": str(profile)},
    )
    pdfs = [folder / f"{workbook.stem}.pdf" for workbook in workbooks]
    missing = [pdf.name for pdf in pdfs if not pdf.exists()]
    assert not missing, f"LibreOffice printed no {missing}"
    return pdfs

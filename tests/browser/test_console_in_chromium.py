"""The console in a real browser: Debian's Chromium driven by Playwright against a real
``clearhouse serve``. An operator signs in, opens the ended month, closes it, looks at the net
positions chart, settles, downloads a statement (the same bytes as the API's) and signs out.
Screenshots go to ``reports/console/``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from tests.conftest import REPO, fresh_database
from tests.e2e.conftest import serving
from tests.services.builders import a_ledger, a_member, a_partner, points_request, unique

CHROMIUM: Final = "/usr/bin/chromium"
SHOTS: Final = REPO / "reports" / "console"
BERLIN = ZoneInfo("Europe/Berlin")
PERIOD = "2031-03"
START = datetime(2031, 3, 2, 10, tzinfo=BERLIN)
ENDED = datetime(2031, 4, 1, 0, 0, 1, tzinfo=BERLIN)
ARGS: Final = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _a_month(database: Database) -> tuple[str, str]:
    """Two partners' month (700 points issued at the bakery, 200 redeemed at the fuel
    station), the clock past its end; an operator's token and the bakery's id."""
    await set_ledger_time(database, sandbox=True, at=START)
    bakery = await a_partner(database, "bakery", legal_name="Bäckerei <b>Schmidt</b> GmbH")
    fuel = await a_partner(database, "fuel", legal_name="Tankstelle Nord GmbH")
    member = await a_member(database)
    ledger = a_ledger(database)
    await ledger.issue(bakery, points_request(member, 700), idempotency_key=unique("i"))
    await ledger.redeem(fuel, points_request(member, 200), idempotency_key=unique("r"))
    await set_ledger_time(database, sandbox=True, at=ENDED)
    token = await access.create_token(
        database, Role.OPERATOR, datetime.now(BERLIN) + timedelta(hours=1), label="month end"
    )
    return token.secret, bakery


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / name), full_page=True)


async def test_month_end_in_a_browser(browser: Browser, tmp_path: Path) -> None:
    async with fresh_database() as database:
        secret, bakery = await _a_month(database)
        environment = {
            **os.environ,
            "DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
            "CLEARHOUSE_SANDBOX": "1",
            "CLEARHOUSE_DATA_DIR": str(tmp_path / "data"),
            "CLEARHOUSE_LOG_LEVEL": "WARNING",
            "CLEARHOUSE_WEBHOOK_WORKERS": "0",
            "CLEARHOUSE_EXPIRY_INTERVAL_S": "0",
        }
        with serving(environment, tmp_path) as url:
            context = await browser.new_context(
                accept_downloads=True, viewport={"width": 1280, "height": 900}
            )
            page = await context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            await page.goto(f"{url}/console/periods")
            await expect(page).to_have_url(f"{url}/console/sign-in")
            await page.get_by_label("Token").fill(secret)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page).to_have_url(f"{url}/console/periods")
            await expect(page.get_by_text("month end · operator")).to_be_visible()
            await _shot(page, "01-periods.png")

            # The confirmation comes in place (HTMX), then the close itself.
            await page.get_by_role("link", name=f"Close {PERIOD}…").click()
            confirm = page.locator("#confirm")
            await expect(confirm.get_by_text("cannot be undone")).to_be_visible()
            await expect(page).to_have_url(f"{url}/console/periods")  # no page load
            await _shot(page, "02-confirm-close.png")
            await confirm.get_by_role("button", name=f"Close {PERIOD}").click()
            await expect(page).to_have_url(f"{url}/console/periods/{PERIOD}")

            chart = page.locator("#net-positions svg")
            await expect(chart).to_be_visible()
            await expect(chart.locator("rect")).to_have_count(2)
            await expect(chart.locator("text.value")).to_have_text(["-7.00", "1.60"])
            await _shot(page, "03-period-closed.png")

            await page.get_by_role("link", name=f"Settle {PERIOD}…").click()
            await expect(page.get_by_text("the partner pays the coalition")).to_be_visible()
            await _shot(page, "04-confirm-settle.png")
            await page.get_by_role("button", name=f"Settle {PERIOD}").click()
            await expect(page).to_have_url(f"{url}/console/periods/{PERIOD}/statements")
            await expect(page.locator("#verification strong")).to_have_text("verifies")
            await _shot(page, "05-statements.png")

            row = page.locator("tr", has_text=f"{PERIOD}/{bakery}")
            async with page.expect_download() as downloading:
                await row.get_by_role("link", name="JSON").click()
            download = await downloading.value
            saved = tmp_path / "statement.json"
            await download.save_as(saved)
            auditor = await access.create_token(
                database, Role.AUDITOR, datetime.now(BERLIN) + timedelta(hours=1)
            )
            async with httpx.AsyncClient(base_url=url) as client:
                served = await client.get(
                    f"/v1/audit/statements/{PERIOD}/{bakery}",
                    headers={"Authorization": f"Bearer {auditor.secret}"},
                )
            assert saved.read_bytes() == served.content

            await page.goto(f"{url}/console/periods/{PERIOD}")
            await expect(page.locator("#multilateral-check")).to_have_text("0.00")
            await expect(page.locator("#roll-forward svg")).to_be_visible()
            # A partner's legal name is text, not markup.
            name = "Bäckerei <b>Schmidt</b> GmbH"
            await expect(page.get_by_role("cell", name=name, exact=False)).to_be_visible()
            await expect(page.locator("td b")).to_have_count(0)
            await _shot(page, "06-period-settled.png")

            await page.get_by_role("button", name="Sign out").click()
            await expect(page).to_have_url(f"{url}/console/sign-in")
            await page.goto(f"{url}/console/periods/{PERIOD}")
            await expect(page).to_have_url(f"{url}/console/sign-in")
            await context.close()
            assert errors == []

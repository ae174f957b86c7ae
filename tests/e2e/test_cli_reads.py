"""The read commands (key list, member show, entry list and show, statement show) through
click, on a real database, in tables and as JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from clearhouse.cli import main
from clearhouse.config import SANDBOX_MASTER_KEY
from clearhouse.domain.purposes import Purpose
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.contracts import ContractBook
from clearhouse.services.database import Database
from clearhouse.services.members import Members
from tests.conftest import fresh_database
from tests.services.builders import a_member, a_partner, unique
from tests.services.test_clearing import FEB_START, JAN_START, JANUARY


def _env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_DATA_DIR": str(tmp_path),
    }


async def _clearhouse(args: list[str], env: dict[str, str]) -> Result:
    # The command runs its own event loop, so it gets a thread of its own.
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
    assert result.exit_code == 0, result.output
    return result


async def _a_coalition(database_url: str) -> tuple[str, str]:
    """A partner with a member it issued 300 points to, who consented to marketing."""
    database = Database.for_url(database_url, pool_size=2)
    try:
        partner_id = await a_partner(database)
        member_id = await a_member(database, balance=300, partner_id=partner_id)
        members = Members(database, ContractBook(database), SANDBOX_MASTER_KEY)
        await members.record_consents_as_operator(
            member_id, [(partner_id, Purpose.MARKETING, True)]
        )
    finally:
        await database.dispose()
    return partner_id, member_id


def test_key_list_shows_a_partners_keys_whole_in_the_table_and_as_json(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path)
    runner = CliRunner()
    partner_id = unique("a-partner-with-a-rather-long-name")
    assert (
        runner.invoke(main, ["partner", "add", partner_id, "--name", "P"], env=env).exit_code == 0
    )
    prefix = tmp_path / "keys" / partner_id
    prefix.parent.mkdir()
    assert runner.invoke(main, ["key", "generate", str(prefix)], env=env).exit_code == 0
    added = runner.invoke(main, ["key", "add", partner_id, f"{prefix}.pub.pem", "--json"], env=env)
    assert added.exit_code == 0, added.output
    key_id = json.loads(added.output)["key_id"]

    listed = runner.invoke(main, ["key", "list", partner_id, "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.output)
    assert shown["key_id"] == key_id
    assert shown["valid_now"] is True
    table = runner.invoke(main, ["key", "list", partner_id], env=env)
    assert key_id in table.output


async def test_member_show_gives_balance_and_consents_but_no_personal_data(
    database_url: str, tmp_path: Path
) -> None:
    partner_id, member_id = await _a_coalition(database_url)
    env = _env(database_url, tmp_path)
    shown = json.loads((await _clearhouse(["member", "show", member_id, "--json"], env)).output)
    assert shown["member_id"] == member_id
    assert shown["balance_points"] == 300
    assert [(c["partner_id"], c["purpose"], c["granted"]) for c in shown["consents"]] == [
        (partner_id, "marketing", True)
    ]
    assert not {"email", "given_name", "personal_fields_held"} & set(shown)
    table = (await _clearhouse(["member", "show", member_id], env)).output
    assert "300" in table
    assert partner_id in table


async def test_entry_list_and_entry_show_read_a_partners_entries_with_whole_ids(
    database_url: str, tmp_path: Path
) -> None:
    partner_id, member_id = await _a_coalition(database_url)
    env = _env(database_url, tmp_path)
    month = json.loads((await _clearhouse(["clock", "show", "--json"], env)).output)["ledger_time"][
        :7
    ]
    listing = ["entry", "list", "--period", month, "--partner", partner_id]
    [listed] = json.loads((await _clearhouse([*listing, "--json"], env)).output)
    assert (listed["kind"], listed["member_id"], listed["points"]) == ("issue", member_id, 300)
    assert listed["entry_id"] in (await _clearhouse(listing, env)).output

    entry_id = listed["entry_id"]
    shown = json.loads((await _clearhouse(["entry", "show", entry_id, "--json"], env)).output)
    assert shown == listed
    assert entry_id in (await _clearhouse(["entry", "show", entry_id], env)).output


def test_entry_show_of_an_unknown_entry_is_one_line(database_url: str, tmp_path: Path) -> None:
    unknown = "00000000-0000-7000-8000-000000000000"
    result = CliRunner().invoke(main, ["entry", "show", unknown], env=_env(database_url, tmp_path))
    assert result.exit_code == 1
    assert result.output == f"Error: not_found: no entry {unknown}\n"


async def test_statement_show_prints_the_signed_statement_settle_made(tmp_path: Path) -> None:
    async with fresh_database() as database:
        await set_ledger_time(database, sandbox=True, at=JAN_START + timedelta(hours=1))
        partner_id = await a_partner(database)
        await a_member(database, balance=300, partner_id=partner_id)
        await set_ledger_time(database, sandbox=True, at=FEB_START + timedelta(seconds=1))
        env = _env(database.engine.url.render_as_string(hide_password=False), tmp_path)
        settled = json.loads((await _clearhouse(["settle", JANUARY, "--json"], env)).output)
        [written] = [s for s in settled if s["partner_id"] == partner_id]

        shown = await _clearhouse(["statement", "show", JANUARY, partner_id], env)
        assert json.loads(shown.output) == written
        assert json.loads(shown.output)["integrity"]["sha256"]

        table = (await _clearhouse(["settle", JANUARY], env)).output
        assert written["integrity"]["sha256"] in table


def test_token_list_shows_whole_token_ids_even_in_a_narrow_terminal(
    database_url: str, tmp_path: Path
) -> None:
    env = _env(database_url, tmp_path)
    runner = CliRunner()
    created = runner.invoke(
        main, ["token", "create", "--role", "auditor", "--label", unique("a"), "--json"], env=env
    )
    assert created.exit_code == 0, created.output
    token_id = json.loads(created.output)["token_id"]
    listed = runner.invoke(main, ["token", "list"], env={**env, "COLUMNS": "40"})
    assert listed.exit_code == 0, listed.output
    assert token_id in listed.output
    as_json = runner.invoke(main, ["token", "list", "--json"], env=env)
    assert token_id in [t["token_id"] for t in json.loads(as_json.output)]

"""An auditor with none of Clearhouse's code verifies a settled month from the API alone.

The month is built the way partners and operators make one: a partner's signed issue, redeem
and reversal, the clock past the month's end, settlement through the operator API; then the
next month is closed too, so that the chain links two roots and a settlement entry (no partner
signed it) is sealed. The checking is ``tests/web/independent_auditor.py``, which imports
nothing of Clearhouse's (a test below holds it to that) and is the program the auditor guide
prints (``tests/docs`` holds the two to being the same text). It is handed only a way to GET
a path with an auditor token. Each tampering runs in a database of its own.
"""

from __future__ import annotations

import ast
import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from clearhouse.domain import merkle
from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from tests.conftest import fresh_database
from tests.web import independent_auditor
from tests.web.harness import SignedApi, signed_api, utc_now

BERLIN: Final = ZoneInfo("Europe/Berlin")
MARCH, APRIL = "2030-03", "2030-04"
MARCH_START: Final = datetime(2030, 3, 1, tzinfo=BERLIN)
APRIL_START: Final = datetime(2030, 4, 1, tzinfo=BERLIN)
MAY_START: Final = datetime(2030, 5, 1, tzinfo=BERLIN)
AUDITOR_MODULE: Final = Path(independent_auditor.__file__)


@dataclass(frozen=True)
class SettledCoalition:
    api: SignedApi
    auditor: dict[str, str]
    partner_id: str
    partner_key_id: str
    redeem_id: uuid.UUID

    async def downloads(self) -> dict[str, Any]:
        """``independent_auditor.download`` in a thread of its own, its GETs sent through this
        test's event loop (where the app and its database connections live)."""
        loop = asyncio.get_running_loop()

        def get(path: str) -> bytes:
            sent = asyncio.run_coroutine_threadsafe(
                self.api.client.get(path, headers=self.auditor), loop
            )
            response = sent.result()
            response.raise_for_status()
            return response.content

        downloads: dict[str, Any] = await asyncio.to_thread(independent_auditor.download, get)
        return downloads

    async def independent_audit(self) -> dict[str, Any]:
        report: dict[str, Any] = independent_auditor.verify(await self.downloads())
        return report

    async def clearhouse_verify(self) -> dict[str, Any]:
        response = await self.api.client.get("/v1/audit/verify", headers=self.auditor)
        assert response.status_code == 200, response.text
        verified: dict[str, Any] = response.json()
        return verified


@asynccontextmanager
async def a_settled_coalition(tmp_path: Path) -> AsyncIterator[SettledCoalition]:
    """March 2030 traded through the signed API and settled, April closed, in a database of
    its own: 3 partner-signed entries in March, April's one settlement entry."""
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=MARCH_START + timedelta(hours=1))
        expires = utc_now() + timedelta(hours=1)
        operator_token = await access.create_token(database, Role.OPERATOR, expires)
        auditor_token = await access.create_token(database, Role.AUDITOR, expires)
        operator = {"Authorization": f"Bearer {operator_token.secret}"}
        partner = await api.partner("bakery")
        member = await api.member()
        issued = await api.issued(partner, member, 700)
        redeemed = await api.accepted(api.points("redeem", partner, member, 200))
        await api.accepted(api.reversal(partner, issued, 100))

        await set_ledger_time(database, sandbox=True, at=APRIL_START + timedelta(seconds=1))
        settled = await api.client.post(f"/v1/admin/periods/{MARCH}/settle", headers=operator)
        assert settled.status_code == 200, settled.text
        await set_ledger_time(database, sandbox=True, at=MAY_START + timedelta(seconds=1))
        closed = await api.client.post(f"/v1/admin/periods/{APRIL}/close", headers=operator)
        assert closed.status_code == 200, closed.text

        yield SettledCoalition(
            api,
            {"Authorization": f"Bearer {auditor_token.secret}"},
            partner.partner_id,
            partner.key.key_id,
            uuid.UUID(redeemed["entry_id"]),
        )


async def test_an_auditor_without_clearhouse_code_verifies_roots_statements_and_signatures(
    tmp_path: Path,
) -> None:
    async with a_settled_coalition(tmp_path) as coalition:
        report = await coalition.independent_audit()
        assert report["problems"] == []
        assert report["outcome"] == "verifies"
        assert report["checked"] == {
            "periods": 2,
            "entries": 4,
            "statement_hashes": 2,
            "statement_signatures": 2,
            "partner_signatures": 3,
            "entries_without_partner_signature": 1,
        }
        assert report["without_partner_signature"] == {"settlement": 1}
        # The same counts on Clearhouse's own path.
        own = await coalition.clearhouse_verify()
        assert (own["verified"], own["checked"]) == (True, report["checked"])
        assert independent_auditor.summary(report).splitlines() == [
            "2 sealed month(s): roots and chain recomputed from 4 entry lines",
            "2 statement hash(es), 2 statement signature(s)",
            "3 partner signature(s) on entries; entries without one: 1 settlement",
            "verifies",
        ]


async def test_entries_sent_in_batches_verify_with_the_batch_request_as_their_evidence(
    tmp_path: Path,
) -> None:
    """Each item of a batch keeps the batch's signed request: its base is of a POST to the
    batch's path for the items' purpose, and both audits accept it for every entry."""
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=MARCH_START + timedelta(hours=1))
        expires = utc_now() + timedelta(hours=1)
        operator_token = await access.create_token(database, Role.OPERATOR, expires)
        auditor_token = await access.create_token(database, Role.AUDITOR, expires)
        partner = await api.partner("kiosk")
        member = await api.member()

        def batch(kind: str, purpose: str, points: list[int]) -> Any:
            items = [
                {
                    "kind": kind,
                    "idempotency_key": str(uuid.uuid4()),
                    "member_id": member,
                    "points": n,
                    "occurred_at": "2030-03-01T09:00:00Z",
                    "reference": "till 1",
                }
                for n in points
            ]
            body = {"items": items}
            return api.request(
                "POST", "/v1/transactions/batch", partner, body=body, purpose=purpose
            )

        await api.accepted(batch("issue", "accrual", [50, 60, 70]), status=200)
        await api.accepted(batch("redeem", "redemption", [20, 30]), status=200)
        await set_ledger_time(database, sandbox=True, at=APRIL_START + timedelta(seconds=1))
        operator = {"Authorization": f"Bearer {operator_token.secret}"}
        settled = await api.client.post(f"/v1/admin/periods/{MARCH}/settle", headers=operator)
        assert settled.status_code == 200, settled.text
        coalition = SettledCoalition(
            api,
            {"Authorization": f"Bearer {auditor_token.secret}"},
            partner.partner_id,
            partner.key.key_id,
            uuid.uuid4(),
        )

        report = await coalition.independent_audit()
        own = await coalition.clearhouse_verify()

    assert report["problems"] == []
    assert report["checked"]["partner_signatures"] == 5
    assert (own["verified"], own["checked"]) == (True, report["checked"])


async def _tamper(database: Database, statements: str, *commands: str) -> None:
    """Run ``commands`` with the append-only triggers off, as only an attacker of the
    database itself could."""
    url = database.engine.url.set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        for table in ("entries", "statements"):
            await connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
        for command in commands:
            await connection.execute(command, statements)
        for table in ("entries", "statements"):
            await connection.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
    finally:
        await connection.close()


Tampering = Callable[[SettledCoalition], Awaitable[list[str]]]


async def _a_signature_base_altered(coalition: SettledCoalition) -> list[str]:
    """The redeem's signature base now says another content type than the partner signed."""
    await _tamper(
        coalition.api.database,
        str(coalition.redeem_id),
        "UPDATE entries SET signature_base = replace(signature_base,"
        " '\"content-type\": application/json', '\"content-type\": text/plain')"
        " WHERE entry_id = $1::uuid",
    )
    return [
        f"{MARCH}: the tree head of its entry lines is not the published tree_head",
        f"{MARCH}: SHA-256(previous_root ‖ tree head of its lines) is not its root",
        f"{MARCH}: entry {coalition.redeem_id}: its partner signature does not verify with key"
        f" {coalition.partner_key_id}",
    ]


async def _a_statement_signature_altered(coalition: SettledCoalition) -> list[str]:
    """The partner statement's signature with its first byte's lowest bit flipped."""
    await _tamper(
        coalition.api.database,
        coalition.partner_id,
        "UPDATE statements SET signature = set_byte(signature, 0, get_byte(signature, 0) # 1)"
        " WHERE party = $1",
    )
    coalition_key_id = next(iter(coalition.api.coalition_keys))
    return [
        f"{MARCH}: statement {coalition.partner_id}: its signature does not verify with key"
        f" {coalition_key_id}",
    ]


@pytest.mark.parametrize(
    "tampering",
    [_a_signature_base_altered, _a_statement_signature_altered],
    ids=["an entry's signature base", "a statement's signature"],
)
async def test_the_independent_audit_names_what_was_tampered_with(
    tmp_path: Path, tampering: Tampering
) -> None:
    async with a_settled_coalition(tmp_path) as coalition:
        assert (await coalition.independent_audit())["outcome"] == "verifies"
        expected = await tampering(coalition)
        report = await coalition.independent_audit()
        assert report["outcome"] == "problems"
        assert sorted(report["problems"]) == sorted(expected)
        assert (await coalition.clearhouse_verify())["verified"] is False


async def test_a_genuine_partner_signature_on_another_entry_is_named(tmp_path: Path) -> None:
    """A signature that verifies is not enough: its base must be of the entry's own request."""
    async with a_settled_coalition(tmp_path) as coalition:
        downloads = await coalition.downloads()
    issue, redeem, _ = (json.loads(line) for line in downloads["entries"][MARCH].splitlines())
    keys = {k["key_id"]: k for k in json.loads(downloads["partner_keys"])}
    check = independent_auditor.partner_signature_problems
    assert check(issue, keys) == check(redeem, keys) == []

    evidence = ("signature_input", "signature", "signature_base")
    replayed = {**redeem, **{name: issue[name] for name in evidence}}
    assert check(replayed, keys) == [
        "its signature base is not of a request to /v1/transactions/redeem"
        " or /v1/transactions/batch",
        "its signature base does not declare the purpose redemption",
        "its signature base covers another content-digest than its line's",
    ]
    other_body = {**issue, "content_digest": redeem["content_digest"]}
    assert check(other_body, keys) == [
        "its signature base covers another content-digest than its line's"
    ]
    key_id = coalition.partner_key_id
    elsewhere = {key_id: {**keys[key_id], "partner_id": "another-partner"}}
    assert check(issue, elsewhere) == [f"keyid {key_id} is no key of partner {issue['partner_id']}"]
    renonced = {**issue, "signature_input": issue["signature_input"].replace('nonce="', 'nonce="x')}
    assert check(renonced, keys) == [
        "its signature base does not end in its Signature-Input's parameters"
    ]


def test_the_independent_auditor_imports_nothing_of_clearhouse() -> None:
    """Only the standard library's hashing, JSON, base64 and URL parsing, and Ed25519 from
    ``cryptography``; the script part adds what reaching a server needs."""
    tree = ast.parse(AUDITOR_MODULE.read_text())
    verifying, running = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found = {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found = {node.module or ""}
        else:
            continue
        (verifying if node.col_offset == 0 else running).update(found)
    assert verifying == {
        "base64",
        "hashlib",
        "json",
        "urllib.parse",
        "cryptography.exceptions",
        "cryptography.hazmat.primitives.asymmetric.ed25519",
    }
    assert running == {"os", "urllib.request"}


@pytest.mark.parametrize("size", range(34))
def test_the_independent_head_and_root_are_clearhouses(size: int) -> None:
    """The independent tree head and chaining against ``clearhouse.domain.merkle``, for every
    tree shape up to 33 leaves (the splits of 32 and 33 included)."""
    leaves = [f'{{"entry":{n}}}'.encode() for n in range(size)]
    head = merkle.tree_head(leaves)
    assert independent_auditor.tree_head(leaves) == head
    assert independent_auditor.FIRST_PREVIOUS_ROOT == merkle.FIRST_PREVIOUS_ROOT
    previous = bytes(range(32))
    sealed = {
        "previous_root": previous.hex(),
        "entry_count": size,
        "tree_head": head.hex(),
        "root": merkle.period_root(previous, head).hex(),
    }
    assert independent_auditor.root_problems(sealed, leaves, previous.hex()) == []
    other = {**sealed, "root": merkle.period_root(bytes(32), head).hex()}
    assert independent_auditor.root_problems(other, leaves, previous.hex()) == [
        "SHA-256(previous_root ‖ tree head of its lines) is not its root"
    ]

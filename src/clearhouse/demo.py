"""``clearhouse demo``: one coalition month, end to end, on the embedded PostgreSQL.

A clean start every run, in a database of its own (``clearhouse_demo``, made afresh): a sandbox
coalition, the real HTTP server in a process of its own, the three example partners of
``contracts/`` with freshly generated keys, members with a mix of consents, a month of signed
issues, redeems, reversals and the fuel station's holds (captured for less, voided, expired)
through the partner client (with the bakery's contract changing
on the 15th, refused requests of every kind, and one member's erasure), then the month's end
on the sandbox clock, closing, settling, verifying, and the workbooks under
``reports/demo/2026-11/``.

Points expire in this coalition a month after issue (``EXPIRY_POLICY``, for the demo's sake; a
real coalition would say 36 months): a prelude on 2 October enrols the members and gives some
of them welcome points, the expiry run reminds their partners 30 and 7 days ahead
(``points.expiring``), October is closed and settled, and on 2 November what the members did not
redeem first expires, for the coalition workbook's Breakage sheet.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.engine import make_url

from clearhouse.config import SANDBOX_MASTER_KEY, Settings
from clearhouse.crypto.ed25519 import CoalitionKey, load_or_create_private_key, public_bytes
from clearhouse.crypto.webhooks import WebhookSignatureInvalid, verify_v1a
from clearhouse.domain.events import PARTNER_EVENT_TYPES
from clearhouse.domain.purposes import ALL_PARTNERS, Purpose
from clearhouse.domain.verification import VerificationReport
from clearhouse.services import access, coalition_keys
from clearhouse.services.clearing import Clearing, Settlement
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.composition import Services
from clearhouse.services.contracts import ContractBook, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.delivery import DeliveryWorker
from clearhouse.services.expiry import Expiry
from clearhouse.services.members import Members
from clearhouse.storage.engine import resolve_database_url
from clearhouse.storage.migrate import upgrade
from clearhouse_client import AsyncPartnerClient, ClearhouseProblem, Entry

DEMO_DATABASE: Final = "clearhouse_demo"
MONTH: Final = "2026-11"
BERLIN: Final = ZoneInfo("Europe/Berlin")
MONTH_START: Final = datetime(2026, 11, 1, 8, 0, tzinfo=BERLIN)
PRELUDE: Final = datetime(2026, 10, 2, 9, 0, tzinfo=BERLIN)
"""Members enrol and get welcome points, which expire on 2 November at 09:00."""
REMINDER_RUNS: Final = (
    datetime(2026, 10, 3, 12, 0, tzinfo=BERLIN),
    datetime(2026, 10, 27, 12, 0, tzinfo=BERLIN),
)
"""Expiry runs past the 30-day and the 7-day reminder of the welcome points."""
OCTOBER_END: Final = datetime(2026, 11, 1, 0, 0, 5, tzinfo=BERLIN)
WELCOMED: Final = 24
EXPIRY_POLICY: Final = {
    "CLEARHOUSE_EXPIRY_MODE": "fixed",
    "CLEARHOUSE_EXPIRY_MONTHS": "1",
    "CLEARHOUSE_EXPIRY_ALIGN": "exact",
}
MONTH_END: Final = datetime(2026, 12, 1, 0, 0, 5, tzinfo=BERLIN)
MEMBERS: Final = 60
DAYS: Final = 30
REQUESTS_PER_DAY: Final = 12
HOLDS_PER_DAY: Final = 3
READY_TIMEOUT_S: Final = 30.0
CHECKOUT_CONTRACTS: Final = Path(__file__).resolve().parents[2] / "contracts"
"""The example contracts in a checkout; a built wheel carries a copy as package data."""
SHIPPED_CONTRACTS: Final = "example_contracts"

Progress = Callable[[str, int, int], None]
"""(step, done, total): how far a long step has come."""


@dataclass
class DemoResult:
    settlement: Settlement | None = None
    refused: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    erased_member: str = ""
    workbooks: list[Path] = field(default_factory=list)
    verification: VerificationReport | None = None
    key_file: Path | None = None
    """The coalition key the demo signed with, kept beside its database."""
    holds_left_open: int = 0
    """Holds the pumps never ended: expired by the clock, or open over the month's end."""
    holds_expired: int = 0
    """Holds the sweeper ended at the month's end."""
    webhooks: WebhookTally | None = None
    """What the partners' loopback receivers got."""
    welcome_points: int = 0
    """Points issued in the October prelude, to expire on 2 November."""
    reminders: int = 0
    """``points.expiring`` events the expiry runs recorded."""
    expired_points: int = 0
    """Points the expiry runs expired."""
    october: Settlement | None = None


@contextlib.asynccontextmanager
async def _served(
    url: str, folder: Path, key_file: Path, webhook_key_file: Path
) -> AsyncIterator[str]:
    """``clearhouse serve`` in a process of its own on a free port; its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    base_url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "DATABASE_URL": url,
        "CLEARHOUSE_SANDBOX": "1",
        "CLEARHOUSE_PORT": str(port),
        "CLEARHOUSE_PUBLIC_BASE_URL": base_url,
        "CLEARHOUSE_SIGNING_KEY_FILE": str(key_file),
        "CLEARHOUSE_WEBHOOK_KEY_FILE": str(webhook_key_file),
        "CLEARHOUSE_DATABASE_NAME": "",
        "CLEARHOUSE_LOG_LEVEL": "WARNING",
        **EXPIRY_POLICY,
    }
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "clearhouse.cli", "serve", "--port", str(port),
            env=environment, cwd=folder, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as http:
                for _ in range(int(READY_TIMEOUT_S / 0.2)):
                    with contextlib.suppress(httpx.TransportError):
                        if (await http.get("/ready")).status_code == 200:
                            break
                    if process.returncode is not None:
                        raise RuntimeError(log_path.read_text(errors="replace")[-2000:])
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError("the server did not become ready")
            yield base_url
        finally:
            if process.returncode is None:
                process.terminate()
                await process.wait()


def demo_key_file(settings: Settings, database_name: str) -> Path:
    """Where the demo keeps the coalition key of its database."""
    return settings.data_dir / "demo" / f"{database_name}-coalition-signing-key.pem"


async def _fresh_database(settings: Settings, name: str) -> str:
    server_url = resolve_database_url(dataclasses.replace(settings, database_name=None))
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def example_contracts() -> list[tuple[str, bytes]]:
    """The example partners' contract files, by name: ``contracts/`` of the repository, which
    the wheel ships as ``clearhouse/example_contracts/`` (pyproject's ``force-include``)."""
    shipped = resources.files("clearhouse") / SHIPPED_CONTRACTS
    folder = shipped if shipped.is_dir() else CHECKOUT_CONTRACTS
    files = (f for f in folder.iterdir() if f.name.endswith(".toml"))
    return [(f.name, f.read_bytes()) for f in sorted(files, key=lambda f: f.name)]


async def run_demo(
    settings: Settings, out: Path, progress: Progress, *, database_name: str = DEMO_DATABASE
) -> DemoResult:
    """The month, start to end; see the module's docstring. The database stays for a look."""
    rng = random.Random(2026)
    url = await _fresh_database(settings, database_name)
    database = Database.for_url(url, pool_size=4)
    try:
        progress("migrations", 0, 1)
        await upgrade(database.engine)
        await set_ledger_time(database, sandbox=True, at=PRELUDE)
        loaded = await load_contracts(database, example_contracts())
        partners = sorted({p for p, _ in loaded.stored})
        keys = {p: Ed25519PrivateKey.generate() for p in partners}
        key_ids = {
            p: await access.add_key(database, p, _b64(public_bytes(keys[p]))) for p in partners
        }
        progress("migrations", 1, 1)
        # The key stays with the database it signed in: anyone can verify the demo later
        # (the public keys are in the database), and serving it signs with the same key.
        key_file = demo_key_file(settings, database_name)
        key_file.unlink(missing_ok=True)
        coalition_key = CoalitionKey.of(load_or_create_private_key(key_file))
        await coalition_keys.register(database, coalition_key)
        clearing = Clearing(
            database, zone=BERLIN, key=coalition_key, coalition=settings.coalition_name
        )
        expiry = Services(settings, database).expiry
        with tempfile.TemporaryDirectory(prefix="clearhouse-demo-") as folder:
            webhook_key_file = key_file.with_name(key_file.name.replace("signing", "webhook"))
            webhook_key_file.unlink(missing_ok=True)
            webhook_key = CoalitionKey.of(load_or_create_private_key(webhook_key_file))
            receiver = WebhookReceiver(webhook_key.public_key)
            async with _served(url, Path(folder), key_file, webhook_key_file) as base_url:
                clients = {
                    p: AsyncPartnerClient(base_url, key_id=key_ids[p], private_key=keys[p])
                    for p in partners
                }
                try:
                    for partner, client in clients.items():
                        await client.add_webhook_endpoint(
                            receiver.url(partner), sorted(PARTNER_EVENT_TYPES)
                        )
                    result = await _month(
                        database, clients, partners, rng, progress, expiry, clearing
                    )
                finally:
                    for client in clients.values():
                        await client.aclose()
            await set_ledger_time(database, sandbox=True, at=MONTH_END)
            # What the sweeper in serve would do: the pumps' forgotten holds end.
            result.holds_expired = await Services(settings, database).holds.expire_due()
            progress("closing and settling", 0, 1)
            result.settlement = await clearing.settle(MONTH)
            result.verification = await clearing.verify(MONTH)
            progress("delivering webhooks", 0, 1)
            result.webhooks = await _deliver_the_rest(database, webhook_key, receiver)
            receiver.close()
            progress("delivering webhooks", 1, 1)
            result.key_file = key_file
            progress("closing and settling", 1, 1)
            out.mkdir(parents=True, exist_ok=True)
            statements = result.settlement.statements
            for number, statement in enumerate(statements):
                progress("writing workbooks", number, len(statements))
                path = out / f"statement-{MONTH}-{statement.party}.xlsx"
                with path.open("wb") as workbook:
                    await clearing.write_workbook(MONTH, statement.party, workbook)
                (out / f"statement-{MONTH}-{statement.party}.json").write_bytes(
                    _json(json.loads(statement.served_json()))
                )
                result.workbooks.append(path)
            progress("writing workbooks", len(statements), len(statements))
        return result
    finally:
        await database.dispose()


async def _month(
    database: Database,
    clients: dict[str, AsyncPartnerClient],
    partners: list[str],
    rng: random.Random,
    progress: Progress,
    expiry: Expiry,
    clearing: Clearing,
) -> DemoResult:
    result = DemoResult()
    members: list[str] = []
    coalition = Members(database, ContractBook(database), SANDBOX_MASTER_KEY)
    for n in range(MEMBERS):
        partner = partners[n % len(partners)]
        consents = [{"purpose": "marketing", "granted": rng.random() < 0.5}]
        to_every_partner = rng.random() < 0.2
        members.append(
            await clients[partner].enrol(
                member_id=f"m-{1001 + n}",
                personal={
                    "given_name": rng.choice(["Anna", "Ben", "Cem", "Dana", "Emil", "Fatma"]),
                    "family_name": rng.choice(["Berg", "Krause", "Yilmaz", "Nowak", "Weber"]),
                    "email": f"member{1001 + n}@example.org",
                    "postal_code": f"{10115 + n:05d}",
                },
                consents=consents,
            )
        )
        if to_every_partner:
            # Some members consent to every partner, through the coalition's own channel.
            await coalition.record_consents_as_operator(
                members[-1], [(ALL_PARTNERS, Purpose.MARKETING, True)]
            )
        progress("enrolling members", n + 1, MEMBERS)
    await _prelude(clients, partners, members, rng, result)
    for moment in REMINDER_RUNS:
        await set_ledger_time(database, sandbox=True, at=moment)
        result.reminders += (await expiry.run()).reminders
    await set_ledger_time(database, sandbox=True, at=OCTOBER_END)
    result.october = await clearing.settle("2026-10")
    entries: list[Entry] = []
    fuel = clients[next(p for p in partners if p.startswith("tankstelle"))]
    total = DAYS * REQUESTS_PER_DAY
    for day in range(DAYS):
        today = MONTH_START + timedelta(days=day)
        await set_ledger_time(database, sandbox=True, at=today)
        # What serve's schedule does, at the start of each demo day.
        ran = await expiry.run()
        result.expired_points += ran.points
        result.reminders += ran.reminders
        for n in range(REQUESTS_PER_DAY):
            partner = rng.choice(partners)
            client = clients[partner]
            member = rng.choice(members)
            kind = rng.random()
            try:
                if kind < 0.55:
                    entries.append(
                        await client.issue(
                            member,
                            rng.randint(20, 900),
                            reference=f"r-{day}-{n}",
                            occurred_at=today,
                        )
                    )
                    result.accepted["issue"] += 1
                elif kind < 0.9:
                    entries.append(
                        await client.redeem(
                            member,
                            rng.randint(10, 150),
                            reference=f"r-{day}-{n}",
                            occurred_at=today,
                        )
                    )
                    result.accepted["redeem"] += 1
                elif entries:
                    original = rng.choice(entries)
                    await clients[str(original.partner_id)].reverse(
                        original, reason="returned goods", points=rng.choice([None, 5])
                    )
                    result.accepted["reversal"] += 1
            except ClearhouseProblem as problem:
                result.refused[problem.code] += 1
            progress("signed traffic", day * REQUESTS_PER_DAY + n + 1, total)
        await _pump_holds(fuel, members, rng, today, day == DAYS - 1, result)
        if day == 20:
            result.erased_member = members.pop(rng.randrange(len(members)))
            await coalition.erase(result.erased_member)
    await _refusals(clients, partners, members, result)
    return result


@dataclass(frozen=True)
class WebhookTally:
    events: int
    """Distinct events (webhook-ids) received."""
    verified: int
    """Of those, the ones whose v1a signature verified with the published webhook key."""
    by_type: Counter[str]
    undelivered: int
    """Deliveries still pending or failed when the demo stopped waiting."""


class _Receiving(ThreadingHTTPServer):
    # A worker sends a batch at once: room for all of it in the accept queue.
    request_queue_size = 128
    daemon_threads = True


class WebhookReceiver:
    """The partners' webhook receivers, on loopback (a sandbox delivers there): one HTTP server
    in a thread, a path per partner, every request kept and its signature checked."""

    def __init__(self, public_key: bytes) -> None:
        self.received: list[tuple[str, str, bool]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    verify_v1a(public_key, dict(self.headers), body, now=int(time.time()))
                    verified = True
                except WebhookSignatureInvalid:
                    verified = False
                event_type = str(json.loads(body).get("type", ""))
                received.append((str(self.headers.get("webhook-id")), event_type, verified))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _Receiving(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, partner: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/{partner}"

    def tally(self, undelivered: int) -> WebhookTally:
        distinct = {webhook_id: (kind, ok) for webhook_id, kind, ok in list(self.received)}
        return WebhookTally(
            events=len(distinct),
            verified=sum(ok for _, ok in distinct.values()),
            by_type=Counter(kind for kind, _ in distinct.values()),
            undelivered=undelivered,
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


async def _deliver_the_rest(
    database: Database, webhook_key: CoalitionKey, receiver: WebhookReceiver
) -> WebhookTally:
    """What the server's workers had not sent yet (the month's end, the statements), sent by a
    worker of the demo's own, as serve's would."""
    worker = DeliveryWorker(database, webhook_key, SANDBOX_MASTER_KEY, sandbox=True, lease_s=30)
    async with database.driver_connection() as connection:
        # The server has exited: what its workers had claimed and not recorded is no one's now.
        await connection.execute(
            "UPDATE webhook_deliveries SET lease_until = NULL WHERE status = 'pending'"
        )
    undelivered = 0
    for _ in range(600):
        await worker.run_once()
        async with database.driver_connection() as connection:
            undelivered = int(
                await connection.fetchval(
                    "SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'failed')"
                )
            )
        if not undelivered:
            break
        async with database.driver_connection() as connection:
            # A rehearsal does not wait out the retry schedule: what a busy machine made fail
            # once is due again at once (as an operator's replay would make it).
            await connection.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = clock_timestamp()"
                " WHERE status = 'pending' AND next_attempt_at > clock_timestamp()"
                " AND (lease_until IS NULL OR lease_until < clock_timestamp())"
            )
        await asyncio.sleep(0.05)
    return receiver.tally(undelivered)


async def _prelude(
    clients: dict[str, AsyncPartnerClient],
    partners: list[str],
    members: list[str],
    rng: random.Random,
    result: DemoResult,
) -> None:
    """Welcome points on 2 October from the partner each member enrolled with: they expire a
    month later unless redeemed first (earliest-expiring points go first)."""
    for n, member in enumerate(members[:WELCOMED]):
        points = rng.randint(100, 300)
        await clients[partners[n % len(partners)]].issue(
            member, points, reference=f"welcome {n + 1}", occurred_at=PRELUDE
        )
        result.welcome_points += points


async def _pump_holds(
    fuel: AsyncPartnerClient,
    members: list[str],
    rng: random.Random,
    today: datetime,
    last_day: bool,
    result: DemoResult,
) -> None:
    """The fuel station's pumps: each authorizes before it knows the litres, then captures less,
    or the driver leaves and the pump voids; a pump that loses track lets its hold expire (an
    hour, passed by the next day's clock). On the last day two holds stay open over the month's
    end, for the coalition statement's open holds at the cut-off."""
    for pump in range(HOLDS_PER_DAY):
        member = rng.choice(members)
        reserved = rng.randint(100, 400)
        try:
            hold = await fuel.authorize(
                member,
                reserved,
                reference=f"pump {pump + 1}",
                hold_seconds=3 * 86_400 if last_day else 3_600,
                occurred_at=today,
            )
        except ClearhouseProblem as problem:
            result.refused[problem.code] += 1
            continue
        result.accepted["hold"] += 1
        if last_day and pump < 2:
            result.holds_left_open += 1
            continue
        fate = rng.random()
        if fate < 0.6:
            await fuel.capture(hold, rng.randint(reserved // 2, reserved))
            result.accepted["capture"] += 1
        elif fate < 0.85:
            await fuel.void(hold, reason="driver left")
            result.accepted["void"] += 1
        else:
            result.holds_left_open += 1


async def _refusals(
    clients: dict[str, AsyncPartnerClient],
    partners: list[str],
    members: list[str],
    result: DemoResult,
) -> None:
    """One of each kind of refusal a partner can meet, on purpose."""
    bakery, shop, fuel = (
        clients[next(p for p in partners if p.startswith(name))]
        for name in ("baeckerei", "shopwelt", "tankstelle")
    )
    member = members[0]
    at = MONTH_START + timedelta(days=DAYS - 1)
    attempts = [
        bakery.issue(result.erased_member, 10, reference="after erasure", occurred_at=at),
        bakery.redeem(member, 4_999, reference="more than held", occurred_at=at),
        fuel.issue(member, 2_001, reference="over the limit", occurred_at=at),
        fuel.member(member, purpose="marketing"),  # purpose_not_permitted
        shop.issue("m-nobody", 10, reference="who?", occurred_at=at),  # unknown_member
        bakery.issue(member, 10, reference="a", idempotency_key="demo-reused", occurred_at=at),
        bakery.issue(member, 11, reference="b", idempotency_key="demo-reused", occurred_at=at),
    ]  # member_erased, insufficient_points, limit_exceeded, …, idempotency_key_reused
    for attempt in attempts:
        try:
            await attempt
        except ClearhouseProblem as problem:
            result.refused[problem.code] += 1
    for candidate in members:
        refusal = await _marketing_refusal(shop, candidate)
        if refusal == "consent_required":
            result.refused[refusal] += 1
            break


async def _marketing_refusal(client: AsyncPartnerClient, member: str) -> str | None:
    """Why the partner may not read the member for marketing; None when it may.

    ``not_found`` too: a member the partner has no relationship with does not exist for it.
    """
    try:
        await client.member(member, purpose="marketing")
    except ClearhouseProblem as problem:
        if problem.code in {"consent_required", "not_found"}:
            return problem.code
        raise
    return None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()

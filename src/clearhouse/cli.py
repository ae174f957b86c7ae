"""The ``clearhouse`` command: each subcommand a few lines over a service."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shlex
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click

from clearhouse.config import Settings, SettingsError
from clearhouse.crypto.ed25519 import (
    CoalitionKey,
    load_or_create_private_key,
    public_bytes,
    public_pem,
)
from clearhouse.domain.contracts import ContractInvalid, contract_json_schema
from clearhouse.domain.errors import ClearhouseError, InvalidRequest
from clearhouse.domain.periods import period_bounds
from clearhouse.domain.verification import VerificationReport
from clearhouse.services import access, coalition_keys
from clearhouse.services.access import Role
from clearhouse.services.audit import verify_ledger
from clearhouse.services.clearing import Clearing
from clearhouse.services.clock import ledger_time, set_ledger_time
from clearhouse.services.coalition import add_partner, enrol_members
from clearhouse.services.contracts import ContractBook, LoadReport, load_contracts
from clearhouse.services.database import Database
from clearhouse.services.members import Members
from clearhouse.services.posting import Ledger
from clearhouse.services.retention import run_retention
from clearhouse.storage.engine import resolve_database_url
from clearhouse.storage.migrate import current_revision, upgrade

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _run(work: Callable[[Database], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``work`` on the configured database; a domain error becomes one clear line."""
    settings = settings or _settings()

    async def _main() -> T:
        database = Database.for_url(resolve_database_url(settings), pool_size=2)
        try:
            return await work(database)
        finally:
            await database.dispose()

    try:
        return asyncio.run(_main())
    except ClearhouseError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Clearhouse: the clearing house of a loyalty coalition.

    With no DATABASE_URL, every command uses the embedded PostgreSQL in .clearhouse/.
    """


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration not yet applied.

    Example: clearhouse db upgrade
    """

    async def _upgrade(database: Database) -> str | None:
        await upgrade(database.engine)
        return await current_revision(database.engine)

    click.echo(f"database at revision {_run(_upgrade)}")


@main.command()
@click.option("--host", default=None, help="Address to listen on (CLEARHOUSE_HOST).")
@click.option("--port", type=int, default=None, help="Port to listen on (CLEARHOUSE_PORT).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Run the HTTP API.

    Example: clearhouse serve --port 8000
    """
    import uvicorn

    from clearhouse.web.server import BoundedHttpToolsProtocol

    settings = _settings()
    try:
        settings.require_master_key()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    # Made here, once: workers starting together would each make a key of their own.
    load_or_create_private_key(settings.signing_key_file)
    uvicorn.run(
        "clearhouse.web.app:app_from_env",
        factory=True,
        # Bounds the size of each request head and the time its head and body take to arrive
        # (uvicorn's own has no such bounds).
        http=BoundedHttpToolsProtocol,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )


def _emit(rows: list[dict[str, Any]], as_json: bool, title: str) -> None:
    """A table for people, or JSON lines for scripts."""
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in rows[0] if rows else ["(none)"]:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(table)


def _progress(quiet: bool) -> Any:
    """Progress bars on standard error for long work (none when the output is for scripts)."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an RFC 3339 time", param_hint=name) from exc
    if moment.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-12-01T00:00:00Z", param_hint=name)
    return moment


def _duration(value: str) -> timedelta:
    units = {"m": 60, "h": 3600, "d": 86400}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit():
        raise click.BadParameter(f"{value!r}: write a duration like 90m, 12h or 30d")
    return timedelta(seconds=int(value[:-1]) * units[value[-1]])


@main.group()
def partner() -> None:
    """Partners of the coalition."""


@partner.command("add")
@click.argument("partner_id")
@click.option("--name", "legal_name", required=True, help="The partner's legal name.")
def partner_add(partner_id: str, legal_name: str) -> None:
    """Register a partner and open its accounts.

    Example: clearhouse partner add baeckerei-schmidt --name "Bäckerei Schmidt GmbH"
    """

    async def _add(database: Database) -> None:
        await add_partner(database, partner_id, legal_name)

    _run(_add)
    click.echo(f"partner {partner_id} added")


@partner.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def partner_list(as_json: bool) -> None:
    """List partners with their number of active keys.

    Example: clearhouse partner list --json
    """
    rows = [
        {"partner_id": p, "legal_name": n, "created_at": c.isoformat(), "active_keys": k}
        for p, n, c, k in _run(access.list_partners)
    ]
    _emit(rows, as_json, "Partners")


@main.group()
def member() -> None:
    """Members (partners enrol them through the API; this is for operators and sandboxes)."""


@member.command("enrol")
@click.argument("member_ids", nargs=-1, required=True)
def member_enrol(member_ids: tuple[str, ...]) -> None:
    """Enrol members with a zero balance.

    Example: clearhouse member enrol m-1001 m-1002
    """

    async def _enrol(database: Database) -> None:
        await enrol_members(database, list(member_ids))

    _run(_enrol)
    click.echo(f"{len(member_ids)} member(s) enrolled")


@member.command("erase")
@click.argument("member_id")
def member_erase(member_id: str) -> None:
    """Erase a member's personal data (GDPR Art. 17): the member's key is destroyed.

    Balances, entries and statements stay, under the pseudonymous member id.
    Example: clearhouse member erase m-1001
    """
    settings = _settings()

    async def _erase(database: Database) -> bool:
        return await _members(database, settings).erase(member_id)

    click.echo(f"member {member_id} erased" if _run(_erase) else f"{member_id} was erased before")


@member.command("adjust")
@click.argument("member_id")
@click.option("--points", type=int, required=True, help="Positive: goodwill; negative: correction.")
@click.option("--reason", required=True, help="Why: goodwill, a correction, ...")
def member_adjust(member_id: str, points: int, reason: str) -> None:
    """Goodwill (positive POINTS) or a correction (negative) against coalition:adjustments.

    Mistakes are corrected this way, in the open period, never by editing entries.
    Example: clearhouse member adjust m-1001 --points=-250 --reason "double issue on 3 Nov"
    """

    async def _adjust(database: Database) -> Any:
        return await Ledger(database, ContractBook(database), _settings().timezone.key).adjust(
            member_id, points, reason
        )

    posted = _run(_adjust)
    click.echo(
        f"adjusted {member_id} by {points:+,} points: entry {posted.entry.entry_id}, "
        f"balance {posted.entry.member_balance_after:,}"
    )


@member.command("expire")
@click.argument("member_id")
@click.argument("points", type=int)
def member_expire(member_id: str, points: int) -> None:
    """Move lapsed points of a member to coalition:breakage.

    Example: clearhouse member expire m-1001 120
    """

    async def _expire(database: Database) -> Any:
        return await Ledger(database, ContractBook(database), _settings().timezone.key).expire(
            member_id, points
        )

    posted = _run(_expire)
    click.echo(
        f"expired {points:,} points of {member_id}: entry {posted.entry.entry_id}, "
        f"balance {posted.entry.member_balance_after:,}"
    )


@member.command("access-report")
@click.argument("member_id")
def member_access_report(member_id: str) -> None:
    """What is held of a member and to whom it was disclosed (GDPR Art. 15), as JSON.

    Example: clearhouse member access-report m-1001 > m-1001.json
    """
    settings = _settings()

    async def _report(database: Database) -> dict[str, Any]:
        return await _members(database, settings).access_report(member_id)

    click.echo(json.dumps(_run(_report), indent=2, default=str))


@main.group()
def contracts() -> None:
    """Partners' contract versions (TOML files under contracts/)."""


@contracts.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def contracts_load(directory: Path) -> None:
    """Validate every *.toml file in DIRECTORY, then store the new versions (all or none).

    Example: clearhouse contracts load contracts/
    """
    files = [(path.name, path.read_bytes()) for path in sorted(directory.glob("*.toml"))]
    if not files:
        raise click.ClickException(f"no *.toml files in {directory}")

    async def _load(database: Database) -> LoadReport:
        return await load_contracts(database, files)

    try:
        report = _run(_load)
    except ContractInvalid as invalid:
        for problem in invalid.problems:
            click.echo(str(problem), err=True)
        raise click.ClickException(f"{len(invalid.problems)} problem(s); nothing stored") from None
    for partner_id, version in report.stored:
        click.echo(f"stored {partner_id} version {version}")
    for partner_id, version in report.unchanged:
        click.echo(f"unchanged {partner_id} version {version}")


@contracts.command("schema")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def contracts_schema(out: Path | None) -> None:
    """Write the JSON Schema of contract files (default: to standard output).

    Example: clearhouse contracts schema --out contracts/schema.json
    """
    text = json.dumps(contract_json_schema(), indent=2, sort_keys=True) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"schema written to {out}")


@main.group()
def retention() -> None:
    """Removal of data past its retention."""


@retention.command("run")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def retention_run(as_json: bool) -> None:
    """Remove entry metadata past its contract's retention, and report what went.

    Example: clearhouse retention run
    """
    removals = _run(run_retention)
    rows = [
        {
            "partner_id": r.partner_id,
            "purpose": r.purpose,
            "retention_days": r.retention_days,
            "removed": r.removed,
        }
        for r in removals
    ]
    _emit(rows, as_json, "Entry metadata removed")


def _members(database: Database, settings: Settings) -> Members:
    try:
        master_key = settings.require_master_key()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    return Members(database, ContractBook(database), master_key)


def _clearing(database: Database, settings: Settings, *, make_key: bool = True) -> Clearing:
    """Clearing with the coalition's key; only settling may make the key on a first run."""
    if not make_key and not settings.signing_key_file.exists():
        raise click.ClickException(
            f"no coalition key at {settings.signing_key_file} (CLEARHOUSE_SIGNING_KEY_FILE)"
        )
    key = CoalitionKey.of(load_or_create_private_key(settings.signing_key_file))
    return Clearing(database, zone=settings.timezone, key=key, coalition=settings.coalition_name)


@main.group()
def period() -> None:
    """Monthly periods: close them after their end, list them."""


@period.command("close")
@click.argument("month")
def period_close(month: str) -> None:
    """Seal a month once it has ended; prints its ledger root.

    Example: clearhouse period close 2026-11
    """
    settings = _settings()

    async def _close(database: Database) -> Any:
        return await _clearing(database, settings).close(month)

    closed = _run(_close)
    click.echo(f"{closed.period} closed: {closed.entry_count} entries, root {closed.root.hex()}")


@period.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def period_list(as_json: bool) -> None:
    """Closed and settled periods with their roots.

    Example: clearhouse period list
    """
    settings = _settings()

    async def _list(database: Database) -> Any:
        return await _clearing(database, settings).periods()

    rows = [
        {
            "period": p.period,
            "status": p.status,
            "entries": p.entry_count,
            "root": p.root.hex(),
            "closed_at": p.closed_at.isoformat(),
        }
        for p in _run(_list)
    ]
    _emit(rows, as_json, "Periods")


@main.command()
@click.argument("month")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write each statement's JSON and workbook into this folder.",
)
@click.option("--json", "as_json", is_flag=True, help="The statements as JSON, for scripts.")
def settle(month: str, out: Path | None, as_json: bool) -> None:
    """Close (if need be) and settle a month: net, post, state and sign; idempotent.

    A month that does not add up is refused (settlement_refused, with every reason) and nothing
    is written.

    Example: clearhouse settle 2026-11 --out reports/2026-11
    """
    settings = _settings()

    async def _settle(database: Database) -> Any:
        clearing = _clearing(database, settings)
        with _progress(as_json) as bars:
            step = bars.add_task(f"closing and settling {month}", total=None)
            settlement = await clearing.settle(month)
            bars.update(step, total=1, completed=1)
            if out is None:
                return settlement
            out.mkdir(parents=True, exist_ok=True)
            writing = bars.add_task("writing workbooks", total=len(settlement.statements))
            for statement in settlement.statements:
                (out / f"{statement.party}.json").write_text(
                    json.dumps(statement.with_integrity(), indent=2, sort_keys=True) + "\n"
                )
                with (out / f"{statement.party}.xlsx").open("wb") as workbook:
                    await clearing.write_workbook(month, statement.party, workbook)
                bars.advance(writing)
        return settlement

    settlement = _run(_settle)
    if as_json:
        click.echo(json.dumps([s.with_integrity() for s in settlement.statements], indent=2))
        return
    verb = "settled" if settlement.settled_now else "was settled before"
    click.echo(f"{month} {verb}; root {settlement.period.root.hex()}")
    rows = [
        {
            "party": s.party,
            "net": s.body().get("net", s.body().get("coalition_margin")),
            "direction": s.body().get("direction", "margin"),
            "sha256": s.sha256.hex()[:16],
        }
        for s in settlement.statements
    ]
    _emit(rows, False, f"Statements {month}")


@main.group()
def audit() -> None:
    """Checks an auditor can run."""


@audit.command("verify")
@click.option("--period", "month", default=None, help="Only this period (YYYY-MM).")
@click.option(
    "--database",
    "database_name",
    default=None,
    help="Another database on the server (e.g. clearhouse_demo, what make demo made).",
)
@click.option("--json", "as_json", is_flag=True, help="The counts and every problem, as JSON.")
def audit_verify(month: str | None, database_name: str | None, as_json: bool) -> None:
    """Recompute ledger roots, check statement hashes and signatures and every entry's partner
    signature; say what was checked, and name what does not match.

    Exit status: 0 verifies; 1 a problem, a period not closed, or nothing to verify; 2 a
    malformed period.

    Example: clearhouse audit verify --period 2026-11
    """
    settings = _settings()
    if database_name is not None:
        settings = dataclasses.replace(settings, database_name=database_name)
    try:
        if month is not None:
            period_bounds(month, settings.timezone)
    except InvalidRequest as exc:
        raise click.UsageError(f"invalid_request: {exc.detail}") from exc

    async def _verify(database: Database) -> VerificationReport:
        return await verify_ledger(database, settings.timezone, month)

    report = _run(_verify, settings)
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
    else:
        for finding in report.findings:
            click.echo(str(finding))
        click.echo(report.summary())
    if not report.verifies:
        raise SystemExit(1)


_ARROWS = {
    "coalition_pays_partner": "coalition -> partner",
    "partner_pays_coalition": "partner -> coalition",
    "nothing_due": "nothing due",
}


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/demo/2026-11"),
    show_default=True,
    help="Where the month's statements (JSON and workbooks) go.",
)
@click.option(
    "--database",
    "database_name",
    default="clearhouse_demo",
    show_default=True,
    help="The database the demo makes afresh (and leaves for a look) on the server.",
)
def demo(out: Path, database_name: str) -> None:
    """Run a whole coalition month in sandbox mode, from a clean start, and summarise it.

    Three partners from contracts/, members, a month of signed traffic through the HTTP
    server, the month's end, closing, settlement, verification and the workbooks.
    Example: clearhouse demo
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from clearhouse.demo import DemoResult, run_demo

    settings = _settings()
    console = Console()
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    ) as bars:

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total)
            bars.update(tasks[step], completed=done, total=total)

        try:
            result: DemoResult = asyncio.run(
                run_demo(settings, out, progress, database_name=database_name)
            )
        except ClearhouseError as exc:
            raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    assert result.settlement is not None
    table = Table(title=f"Clearing {result.settlement.period.period}")
    for column in ("partner", "issued (net)", "redeemed (net)", "net", "who pays whom"):
        table.add_column(
            column, justify="left" if column in ("partner", "who pays whom") else "right"
        )
    coalition: dict[str, Any] = {}
    for statement in result.settlement.statements:
        body = statement.body()
        if statement.party == "coalition":
            coalition = body
            continue
        issued = sum(line["quantity"] for line in body["lines"] if line["kind"] == "issue")
        redeemed = sum(line["quantity"] for line in body["lines"] if line["kind"] == "redemption")
        table.add_row(
            body["legal_name"],
            f"{issued:,}",
            f"{redeemed:,}",
            f"{body['net']} {body['currency']}",
            _ARROWS[body["direction"]],
        )
    console.print(table)
    console.print(
        f"multilateral check: partners' nets {coalition['partners_net_total']} + coalition margin "
        f"{coalition['coalition_margin']} = {coalition['multilateral_check']}"
    )
    roll = coalition["points_roll_forward"]
    console.print(
        f"points: opening {roll['opening']:,} + issued {roll['issued']:,} - redeemed "
        f"{roll['redeemed']:,} - expired {roll['expired']:,} + adjusted {roll['adjusted']:,} "
        f"= {roll['closing']:,} = member balances at the cut-off "
        f"{roll['member_balances_at_cut_off']:,}"
    )
    console.print("accepted: " + ", ".join(f"{k} {v}" for k, v in sorted(result.accepted.items())))
    console.print("refused: " + ", ".join(f"{k} {v}" for k, v in sorted(result.refused.items())))
    console.print(
        f"erased: {result.erased_member}; ledger root {result.settlement.period.root.hex()}"
    )
    assert result.verification is not None
    assert result.key_file is not None
    console.print(f"audit verify: {result.verification.summary()}")
    for finding in result.verification.findings:
        console.print(f"  {finding}")
    console.print(f"statements and workbooks: {out}/")
    if not result.verification.verifies:
        raise click.ClickException("the month does not verify")
    prefix = _environment_prefix(settings)
    command = _this_command()
    console.print(
        "look at it: CLEARHOUSE_SANDBOX=1 "
        f"CLEARHOUSE_DATABASE_NAME={database_name} "
        f"CLEARHOUSE_SIGNING_KEY_FILE={_here(result.key_file)} "
        f"{prefix}{command} serve",
        soft_wrap=True,
    )
    console.print("verify it yourself:")
    # The last line: a command that anyone may run as it stands.
    click.echo(f"{prefix}{command} audit verify --database {database_name}")


def _this_command() -> str:
    """How to call this ``clearhouse`` again."""
    path = Path(sys.argv[0]).resolve()
    if path.name != "clearhouse":  # python -m clearhouse.cli
        return f"{shlex.quote(sys.executable)} -m clearhouse.cli"
    return _here(path)


def _here(path: Path) -> str:
    """``path`` for a shell in this folder: relative when it lies below, quoted."""
    resolved = path.resolve()
    try:
        return shlex.quote(str(resolved.relative_to(Path.cwd())))
    except ValueError:
        return shlex.quote(str(resolved))


def _environment_prefix(settings: Settings) -> str:
    """The settings another command needs to reach the database this one used."""
    prefix = ""
    if settings.database_url:
        prefix += f"DATABASE_URL={shlex.quote(settings.database_url)} "
    if settings.data_dir != Path(".clearhouse").resolve():
        prefix += f"CLEARHOUSE_DATA_DIR={_here(settings.data_dir)} "
    return prefix


@main.group("coalition-key")
def coalition_key() -> None:
    """The coalition's own key, which signs receipts and statements."""


@coalition_key.command("rotate")
def coalition_key_rotate() -> None:
    """Write a new key to CLEARHOUSE_SIGNING_KEY_FILE and make it current; the old one retires.

    Every key that ever signed stays published at GET /v1/keys, so what it signed verifies
    for ever. Restart `clearhouse serve` afterwards: a running server signs receipts with the
    key it started with.

    Example: clearhouse coalition-key rotate
    """
    settings = _settings()

    async def _rotate(database: Database) -> tuple[str, CoalitionKey]:
        return await coalition_keys.rotate(database, settings.signing_key_file)

    retired, current = _run(_rotate, settings)
    click.echo(f"{current.key_id} is current" + (f"; {retired} retired" if retired else ""))


@coalition_key.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def coalition_key_list(as_json: bool) -> None:
    """Every coalition key that ever signed, with the time it took over and retired.

    Example: clearhouse coalition-key list
    """

    async def _list(database: Database) -> list[dict[str, Any]]:
        return [
            {
                "key_id": k.key_id,
                "status": "current" if k.retired_at is None else "retired",
                "not_before": k.not_before.isoformat(),
                "retired_at": None if k.retired_at is None else k.retired_at.isoformat(),
            }
            for k in await coalition_keys.published(database)
        ]

    _emit(_run(_list), as_json, "Coalition keys")


@main.group()
def key() -> None:
    """Partners' Ed25519 signing keys."""


@key.command("generate")
@click.argument("out_prefix", type=click.Path(dir_okay=False, path_type=Path))
def key_generate(out_prefix: Path) -> None:
    """Make a key pair for a partner: OUT_PREFIX.pem (private, 0600) and OUT_PREFIX.pub.pem.

    Example: clearhouse key generate keys/baeckerei-schmidt
    """
    private_path = out_prefix.with_suffix(".pem")
    if private_path.exists():
        raise click.ClickException(f"{private_path} exists already")
    private_key = load_or_create_private_key(private_path)
    public_path = out_prefix.with_suffix(".pub.pem")
    public_path.write_bytes(public_pem(public_bytes(private_key)))
    click.echo(f"private key {private_path}, public key {public_path}")


@key.command("add")
@click.argument("partner_id")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key-id", default=None, help="Name of the key (default: PARTNER-fingerprint).")
@click.option("--not-before", default=None, help="RFC 3339 time the key becomes valid.")
@click.option("--not-after", default=None, help="RFC 3339 time the key stops being valid.")
def key_add(
    partner_id: str,
    key_file: Path,
    key_id: str | None,
    not_before: str | None,
    not_after: str | None,
) -> None:
    """Add a partner's public key from a PEM file or a file of base64 raw bytes.

    Example: clearhouse key add baeckerei-schmidt keys/baeckerei-schmidt.pub.pem
    """
    public_key = key_file.read_bytes()
    starts, ends = _moment(not_before, "--not-before"), _moment(not_after, "--not-after")

    async def _add(database: Database) -> str:
        return await access.add_key(
            database, partner_id, public_key, key_id=key_id, not_before=starts, not_after=ends
        )

    click.echo(f"key {_run(_add)} added to {partner_id}")


@key.command("revoke")
@click.argument("key_id")
def key_revoke(key_id: str) -> None:
    """Revoke a key at once: its next signature fails.

    Example: clearhouse key revoke baeckerei-schmidt-3f2a9c0d1e4b5a6f
    """

    async def _revoke(database: Database) -> None:
        await access.revoke_key(database, key_id)

    _run(_revoke)
    click.echo(f"key {key_id} revoked")


@main.group()
def token() -> None:
    """Operator and auditor bearer tokens."""


@token.command("create")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 90m, 12h, 30d.")
@click.option("--label", default="", help="Whose token this is.")
def token_create(role: str, expires: str, label: str) -> None:
    """Create a token; the secret is shown once and stored only as a hash.

    Example: clearhouse token create --role auditor --expires 30d --label "Audit firm"
    """
    expires_at = datetime.now(UTC) + _duration(expires)

    async def _create(database: Database) -> access.IssuedToken:
        return await access.create_token(database, Role(role), expires_at, label)

    issued = _run(_create)
    click.echo(f"token {issued.token_id} ({issued.role}) expires {issued.expires_at.isoformat()}")
    click.echo(issued.secret)


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token at once.

    Example: clearhouse token revoke tok_0123456789abcdef
    """

    async def _revoke(database: Database) -> None:
        await access.revoke_token(database, token_id)

    _run(_revoke)
    click.echo(f"token {token_id} revoked")


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def token_list(as_json: bool) -> None:
    """List tokens (never their secrets).

    Example: clearhouse token list
    """
    rows = [
        {
            "token_id": t.token_id,
            "role": t.role,
            "label": t.label,
            "expires_at": t.expires_at.isoformat(),
            "revoked_at": None if t.revoked_at is None else t.revoked_at.isoformat(),
        }
        for t in _run(access.list_tokens)
    ]
    _emit(rows, as_json, "Tokens")


@main.group()
def clock() -> None:
    """The ledger clock (settable in sandbox mode only)."""


@clock.command("show")
def clock_show() -> None:
    """Print the ledger clock.

    Example: clearhouse clock show
    """
    click.echo(_run(ledger_time).isoformat())


@clock.command("set")
@click.argument("moment")
def clock_set(moment: str) -> None:
    """Set the ledger clock in sandbox mode; it keeps ticking from there.

    Example: CLEARHOUSE_SANDBOX=1 clearhouse clock set 2026-12-01T00:00:05Z
    """
    try:
        at = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise click.BadParameter(f"{moment!r} is not an RFC 3339 time") from exc
    sandbox = _settings().sandbox

    async def _set(database: Database) -> datetime:
        return await set_ledger_time(database, sandbox=sandbox, at=at)

    click.echo(_run(_set).isoformat())


@main.group()
def bench() -> None:
    """Benchmarks of this machine: figures, not tests."""


@bench.command("ledger")
@click.option(
    "--seconds", type=click.IntRange(1, 3600), default=10, show_default=True, help="Per run."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=16,
    show_default=True,
    help="Concurrent workers (and pgbench clients).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="reports/bench-ledger.json",
    show_default=True,
    help="Where the figures go, as JSON.",
)
def bench_ledger(seconds: int, workers: int, out: str) -> None:
    """Post through the ledger service for a fixed time, beside bare posting and pgbench.

    Works in databases of its own (clearhouse_bench, clearhouse_pgbench), dropped at the end.

    Example: clearhouse bench ledger --seconds 10
    """
    from pathlib import Path

    from clearhouse.bench.ledger import BenchError, render, run_ledger_bench, write_report

    settings = _settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = asyncio.run(
            run_ledger_bench(settings, workers=workers, seconds=seconds, progress=progress)
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    except ClearhouseError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


@bench.command("api")
@click.option(
    "--seconds", type=click.IntRange(2, 3600), default=10, show_default=True, help="Per run."
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=32,
    show_default=True,
    help="Concurrent client tasks sending signed requests.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=16,
    show_default=True,
    help="Concurrent workers of the ledger service run (and pgbench clients).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="reports/bench-api.json",
    show_default=True,
    help="Where the figures go, as JSON.",
)
def bench_api(seconds: int, concurrency: int, workers: int, out: str) -> None:
    """Signed issues and redeems over HTTP against clearhouse serve --workers 2.

    Beside the ledger service and pgbench TPC-B, measured in the same run. Works in databases
    of its own (clearhouse_bench_api, clearhouse_pgbench_api), dropped at the end.

    Example: clearhouse bench api --seconds 10 --concurrency 32
    """
    from pathlib import Path

    from clearhouse.bench.api import render, run_api_bench, write_report
    from clearhouse.bench.servers import BenchError
    from clearhouse.client import AsyncPartnerClient

    client_class = AsyncPartnerClient
    settings = _settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = asyncio.run(
            run_api_bench(
                settings,
                client_class,
                concurrency=concurrency,
                workers=workers,
                seconds=seconds,
                progress=progress,
            )
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    except ClearhouseError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


@bench.command("clearing")
@click.option(
    "--entries",
    type=click.IntRange(1, 100_000_000),
    default=1_000_000,
    show_default=True,
    help="Entries of the month, loaded in bulk.",
)
@click.option("--members", type=click.IntRange(1, 10_000_000), default=100_000, show_default=True)
@click.option("--partners", type=click.IntRange(1, 1000), default=5, show_default=True)
@click.option(
    "--repeats",
    type=click.IntRange(1, 3),
    default=3,
    show_default=True,
    help="Runs of the netting's aggregate part and of the raw GROUP BY (median taken); at most "
    "3, so that with settle's own run no query runs more than 4 times on one connection "
    "(from the 6th, PostgreSQL may switch to a generic plan, which is far slower here).",
)
@click.option(
    "--tracemalloc/--no-tracemalloc",
    "traced_pass",
    default=True,
    show_default=True,
    help="A second pass under tracemalloc, on a copy of the database, for the Python heap.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="reports/bench-clearing.json",
    show_default=True,
    help="Where the figures go, as JSON.",
)
def bench_clearing(
    entries: int, members: int, partners: int, repeats: int, traced_pass: bool, out: str
) -> None:
    """Close, settle and write the workbooks of a month loaded in bulk, beside a raw GROUP BY
    and a bare openpyxl writer; seconds, rows/s, peak memory and the ratios.

    Works in databases of its own (clearhouse_bench_clearing, and a copy for the traced pass),
    dropped at the end.

    Example: clearhouse bench clearing --entries 100000 --members 10000
    """
    from pathlib import Path

    from clearhouse.bench.clearing import render, run_clearing_bench, write_report
    from clearhouse.bench.servers import BenchError

    settings = _settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = asyncio.run(
            run_clearing_bench(
                settings,
                entries=entries,
                members=members,
                partners=partners,
                repeats=repeats,
                traced_pass=traced_pass,
                progress=progress,
            )
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    except ClearhouseError as exc:
        raise click.ClickException(f"{exc.code}: {exc.detail}") from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""``clearhouse bench``: benchmarks of this machine, written as JSON to reports/."""

from __future__ import annotations

from pathlib import Path

import click

from clearhouse.cli.common import run_coroutine
from clearhouse.cli.common import settings as read_settings


@click.group()
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
    from clearhouse.bench.ledger import BenchError, render, run_ledger_bench, write_report

    settings = read_settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = run_coroutine(
            run_ledger_bench(settings, workers=workers, seconds=seconds, progress=progress)
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


@bench.command("api")
@click.option(
    "--seconds", type=click.IntRange(2, 3600), default=10, show_default=True, help="Per run."
)
@click.option(
    "--connections",
    type=click.IntRange(1, 512),
    default=32,
    show_default=True,
    help="wrk's connections for the throughput run.",
)
@click.option(
    "--latency-connections",
    type=click.IntRange(1, 512),
    default=4,
    show_default=True,
    help="wrk's connections for the latency run.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 512),
    default=32,
    show_default=True,
    help="Concurrent tasks of the Python client run.",
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
def bench_api(
    seconds: int,
    connections: int,
    latency_connections: int,
    concurrency: int,
    workers: int,
    out: str,
) -> None:
    """Signed issues, redeems and batches over HTTP against clearhouse serve --workers 2.

    Requests signed beforehand with the partner client's code are replayed by wrk (Debian's
    package: `make bench-deps`, or run `make bench-api`); the Python partner client drives the
    server too, as a second figure; the ledger service and pgbench TPC-B run beside them.
    Works in databases of its own (clearhouse_bench_api, clearhouse_pgbench_api), dropped at
    the end.

    Example: clearhouse bench api --seconds 10 --connections 32
    """
    from clearhouse.bench.api import render, run_api_bench, write_report
    from clearhouse.bench.servers import BenchError
    from clearhouse_client import AsyncPartnerClient

    client_class = AsyncPartnerClient
    settings = read_settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = run_coroutine(
            run_api_bench(
                settings,
                client_class,
                connections=connections,
                latency_connections=latency_connections,
                concurrency=concurrency,
                workers=workers,
                seconds=seconds,
                progress=progress,
            )
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


@bench.command("clearing")
@click.option(
    "--entries",
    type=click.IntRange(1, 100_000_000),
    multiple=True,
    default=(1_000_000, 3_000_000),
    show_default=True,
    help="Entries of the month, loaded in bulk; given again, a further month of that many (the "
    "smallest runs in full, each other count for its close, netting, coalition workbook and "
    "memory).",
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
    entries: tuple[int, ...], members: int, partners: int, repeats: int, traced_pass: bool, out: str
) -> None:
    """Close, settle and write the workbooks of a month loaded in bulk, beside a raw GROUP BY
    and a bare openpyxl writer; seconds, rows/s, peak memory and the ratios.

    Works in databases of its own (clearhouse_bench_clearing, and a copy for the traced pass),
    dropped at the end.

    Example: clearhouse bench clearing --entries 100000 --entries 300000 --members 10000
    """
    from clearhouse.bench.clearing import render, run_clearing_bench, write_report
    from clearhouse.bench.servers import BenchError

    settings = read_settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = run_coroutine(
            run_clearing_bench(
                settings,
                entries=min(entries),
                larger=sorted(set(entries))[1:],
                members=members,
                partners=partners,
                repeats=repeats,
                traced_pass=traced_pass,
                progress=progress,
                finished=lambda so_far: write_report(so_far, Path(out)),
            )
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


@bench.command("expiry")
@click.option(
    "--lots",
    type=click.IntRange(100, 100_000_000),
    default=1_000_000,
    show_default=True,
    help="Lots loaded in bulk, all past their time.",
)
@click.option(
    "--members",
    type=click.IntRange(10, 10_000_000),
    default=100_000,
    show_default=True,
    help="Members the lots are spread over (at most --lots).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="reports/bench-expiry.json",
    show_default=True,
    help="Where the figures go, as JSON.",
)
def bench_expiry(lots: int, members: int, out: str) -> None:
    """Expire lots loaded in bulk through the product's expiry run, beside one raw statement
    doing the same writes; seconds, lots/s, members/s, peak memory and the ratio.

    Works in databases of its own (clearhouse_bench_expiry, and a copy of it for each run),
    dropped at the end.

    Example: clearhouse bench expiry --lots 100000 --members 10000
    """
    from clearhouse.bench.expiry import render, run_expiry_bench, write_report
    from clearhouse.bench.servers import BenchError

    if lots < members:
        raise click.BadParameter("give every member at least one lot", param_hint="--lots")
    settings = read_settings()

    def progress(message: str) -> None:
        click.echo(f"... {message}", err=True)

    try:
        report = run_coroutine(
            run_expiry_bench(settings, lots=lots, members=members, progress=progress)
        )
    except BenchError as exc:
        raise click.ClickException(str(exc)) from exc
    write_report(report, Path(out))
    click.echo(render(report))
    click.echo(f"\nwritten to {out}")


COMMANDS = [bench]

"""The pieces of ``clearhouse bench api`` that need neither wrk nor a server: the pre-signed
requests and their files, wrk's command line and the figures its script prints, the report's
goals and checks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clearhouse.bench.api.presigned import (
    PartnerKey,
    Presigner,
    batches,
    read_request_file,
    singles,
    write_request_files,
)
from clearhouse.bench.api.report import ApiBenchPlan, ApiBenchReport, render
from clearhouse.bench.api.run import check_freshness
from clearhouse.bench.api.traffic import ApiRun
from clearhouse.bench.api.wrk import MARKER, SCRIPT, WrkRun, parse_wrk_output, wrk_arguments
from clearhouse.bench.cpu import CpuUse
from clearhouse.bench.ledger import Throughput
from clearhouse.bench.servers import BenchError
from clearhouse_client.http_signatures import (
    HeaderFields,
    RequestMessage,
    parse_dictionary,
    verify_signature,
)

BASE_URL = "http://127.0.0.1:8123"
MEMBERS = [f"m-{n}" for n in range(50)]


@pytest.fixture
def keys() -> dict[str, PartnerKey]:
    return {
        partner_id: PartnerKey(f"{partner_id}-key", Ed25519PrivateKey.generate())
        for partner_id in ("p-1", "p-2")
    }


def _parsed(raw: bytes) -> tuple[RequestMessage, bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    request_line, *lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ")
    assert version == "HTTP/1.1"
    fields = [tuple(line.split(": ", 1)) for line in lines]
    return RequestMessage(method, BASE_URL + target, HeaderFields(fields)), body  # type: ignore[arg-type]


def _verified_by(keys: dict[str, PartnerKey], raw: bytes) -> tuple[RequestMessage, bytes]:
    """The request, once its signature verifies with one of the partners' public keys."""
    message, body = _parsed(raw)
    signature_input = parse_dictionary(message.headers.get("signature-input") or "")
    ((_, params),) = signature_input.values()
    key = next(k for k in keys.values() if k.key_id == params["keyid"])
    public = key.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    covered = verify_signature(message, key.key_id, public)
    assert {'"@target-uri"', '"content-digest"', '"idempotency-key"', '"data-purpose"'} <= set(
        covered
    )
    digest = parse_dictionary(message.headers.get("content-digest") or "")
    assert digest["sha-256"][0] == hashlib.sha256(body).digest()
    assert int(message.headers.get("content-length") or -1) == len(body)
    return message, body


def _nonce(message: RequestMessage) -> str:
    ((_, params),) = parse_dictionary(message.headers.get("signature-input") or "").values()
    return str(params["nonce"])


def test_presigned_requests_verify_each_with_its_own_nonce_and_idempotency_key(
    keys: dict[str, PartnerKey], tmp_path: Path
) -> None:
    presigner = Presigner(BASE_URL, keys)
    try:
        counts = write_request_files(singles(presigner, MEMBERS, 41, "t"), tmp_path / "r", 2)
    finally:
        presigner.close()

    assert counts == [21, 20]
    raws = read_request_file(tmp_path / "r.0") + read_request_file(tmp_path / "r.1")
    assert len(raws) == 41
    messages = [_verified_by(keys, raw) for raw in raws]
    assert len({_nonce(m) for m, _ in messages}) == 41
    assert len({m.headers.get("idempotency-key") for m, _ in messages}) == 41
    for message, body in messages:
        kind = message.url.rsplit("/", 1)[1]
        assert kind in {"issue", "redeem"}
        assert message.headers.get("data-purpose") == (
            "accrual" if kind == "issue" else "redemption"
        )
        assert json.loads(body)["member_id"] in MEMBERS


def test_presigned_batches_carry_one_kind_its_purpose_and_a_key_per_item(
    keys: dict[str, PartnerKey], tmp_path: Path
) -> None:
    presigner = Presigner(BASE_URL, keys)
    try:
        write_request_files(batches(presigner, MEMBERS, 6, 25, "t"), tmp_path / "b", 1)
    finally:
        presigner.close()

    raws = read_request_file(tmp_path / "b.0")
    assert len(raws) == 6
    item_keys: set[str] = set()
    members: list[list[str]] = []
    for raw in raws:
        message, body = _verified_by(keys, raw)
        assert message.url == BASE_URL + "/v1/transactions/batch"
        batch = json.loads(body)
        assert batch["atomic"] is False
        assert len(batch["items"]) == 25
        (kind,) = {item["kind"] for item in batch["items"]}
        assert message.headers.get("data-purpose") == (
            "accrual" if kind == "issue" else "redemption"
        )
        item_keys |= {item["idempotency_key"] for item in batch["items"]}
        members.append([item["member_id"] for item in batch["items"]])
    assert len(item_keys) == 6 * 25
    # Members in a row: batches in flight together do not wait for each other's members.
    assert members[0] == MEMBERS[:25]
    assert members[1] == MEMBERS[25:50]
    assert members[2] == MEMBERS[:25]  # 50 members: the third batch starts again


def test_the_script_prints_its_figures_after_the_marker_wrk_arguments_pass_the_files() -> None:
    assert f"io.write(string.format(\n    '{MARKER}{{" in SCRIPT
    arguments = wrk_arguments(
        BASE_URL, Path("/tmp/replay.lua"), Path("/tmp/requests"), connections=4, seconds=3
    )
    assert arguments[-2:] == ["--", "/tmp/requests"]
    assert arguments[arguments.index("--threads") + 1] == "2"
    assert arguments[arguments.index("--connections") + 1] == "4"
    assert arguments[arguments.index("--duration") + 1] == "3s"
    assert arguments[arguments.index("--script") + 1] == "/tmp/replay.lua"


WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:8123/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    68.01ms   20.77ms 204.79ms   73.20%
  2338 requests in 5.00s, 1.52MB read
  Non-2xx or 3xx responses: 3
Requests/sec:    467.37
Transfer/sec:    310.71KB
CLEARHOUSE-WRK {"duration_us":5002571,"requests":2338,"bytes":1593210,"errors":{"connect":0,\
"read":0,"write":0,"status":3,"timeout":0},"latency_us":{"p50":66011,"p90":94012,"p99":141997,\
"max":204790,"mean":68012.4},"statuses":{"409":3,"201":2335},"entries":2335,"sent":2366,\
"exhausted_threads":0}
"""


def test_wrk_output_gives_the_run_figures() -> None:
    run = parse_wrk_output(WRK_OUTPUT)

    assert run.duration_s == pytest.approx(5.002571)
    assert (run.requests, run.entries, run.sent, run.unanswered) == (2338, 2335, 2366, 28)
    assert run.statuses == {"409": 3, "201": 2335}
    assert run.errors == {"status": 3}
    assert run.latency_ms == {
        "p50": 66.011,
        "p90": 94.012,
        "p99": 141.997,
        "max": 204.79,
        "mean": pytest.approx(68.0124),
    }
    assert run.entries_per_s == pytest.approx(2335 / 5.002571)
    assert not run.exhausted


def test_wrk_output_without_the_scripts_line_is_a_bench_error() -> None:
    with pytest.raises(BenchError, match="no figures in wrk's output"):
        parse_wrk_output(WRK_OUTPUT.replace(MARKER, "SOMETHING "))


def test_halves_add_up_and_their_latency_is_weighted_by_requests() -> None:
    one = parse_wrk_output(WRK_OUTPUT)
    other = parse_wrk_output(
        WRK_OUTPUT.replace('"requests":2338', '"requests":1000').replace(
            '"p99":141997', '"p99":41997'
        )
    )
    total = WrkRun.total([one, other])

    assert (total.requests, total.entries) == (3338, 4670)
    assert total.duration_s == pytest.approx(2 * 5.002571)
    assert total.statuses == {"409": 6, "201": 4670}
    assert total.latency_ms["p99"] == pytest.approx((141.997 * 2338 + 41.997 * 1000) / 3338)
    assert total.latency_ms["max"] == pytest.approx(204.79)
    assert len(total.as_json()["halves"]) == 2  # type: ignore[arg-type]


def _report(*, batches: dict[int, WrkRun], in_database: int) -> ApiBenchReport:
    single = parse_wrk_output(WRK_OUTPUT)
    return ApiBenchReport(
        timestamp="2026-12-03T08:00:00+00:00",
        machine={"cpu_count": 2, "postgresql_version": "16.2", "server": "embedded"},
        settings=ApiBenchPlan(32, 4, 8, [100, 1000], 32, 16, 10),
        server={"workers": 2},
        seed=Throughput(10_000, 0, 5.0),
        wrk_throughput=WrkRun.total([single]),
        wrk_latency=single,
        python_client=ApiRun([0.1] * 900, 0, elapsed_s=10.0),
        python_halves=[],
        service=Throughput(15_000, 0, 10.0),
        pgbench_tps=1000.0,
        batches=batches,
        batch_available=bool(batches),
        cpu={"wrk_throughput": CpuUse(10.0, 0.2, 4.67, 2.0, 19.0)},
        entries_counted=20_000,
        entries_unanswered_at_most=28,
        entries_in_database=in_database,
        invariant_violations=[],
        load_average_1m=(9.5, 12.25),
    )


def test_the_report_holds_each_goal_to_its_bar_and_the_batches_to_the_single_rate() -> None:
    answered = parse_wrk_output(WRK_OUTPUT.replace('"entries":2335', '"entries":30000'))
    batch = dataclasses.replace(answered, recorded=50_000, recorded_window_s=5.0)
    data = _report(batches={1000: batch}, in_database=20_010).as_json()

    goals = data["goals"]
    assert isinstance(goals, dict)
    assert goals["api_over_pgbench"] == {"value": 0.467, "goal": 0.35, "met": True}
    assert goals["p99_ms_at_latency_connections"]["value"] == 141.997
    assert goals["p99_ms_at_latency_connections"]["met"] is False
    assert goals["server_cpu_ms_per_request"]["value"] == 2.0  # 4.67 s over 2,335 requests
    # Batches count what the ledger recorded while wrk ran, not only what was answered in time.
    assert goals["batch_1000_over_single"]["value"] == pytest.approx(10_000 / 466.8, abs=1e-2)
    assert goals["batch_1000_over_single"]["met"] is True
    assert data["batch"]["1000"]["entries_per_s"] == 10_000.0  # type: ignore[index]
    assert data["batch"]["1000"]["answered_entries_per_s"] == pytest.approx(5997, abs=1)  # type: ignore[index]
    assert data["api"]["accepted_per_s"] == 466.8  # type: ignore[index]
    assert data["python_client"]["accepted_per_s"] == 90.0  # type: ignore[index]
    assert data["ratios"]["python_client_over_api"] == pytest.approx(90 / 466.8, abs=1e-3)  # type: ignore[index]
    assert data["checks"]["hold"] is True  # type: ignore[index]
    # How busy the shared machine was: read the figures with it.
    assert data["load_average_1m"] == {"before_the_runs": 9.5, "after_the_runs": 12.25}


def test_the_report_says_when_the_batch_endpoint_was_missing_and_when_counts_are_off() -> None:
    report = _report(batches={}, in_database=20_029)
    data = report.as_json()

    assert data["batch"]["available"] is False  # type: ignore[index]
    assert "not measured" in data["batch"]["note"]  # type: ignore[index]
    assert not any(name.startswith("batch_") for name in data["goals"])  # type: ignore[union-attr]
    assert data["checks"]["hold"] is False  # type: ignore[index]  # one more than could be
    assert "ENTRY COUNT OUT OF BOUNDS" in render(report)


def test_a_run_whose_first_signatures_would_be_stale_when_sent_is_refused_before_it_starts() -> (
    None
):
    check_freshness(signing_s=20.0, seconds=60, window_s=300)  # well within the window
    with pytest.raises(BenchError, match="older than the server's signature window"):
        check_freshness(signing_s=200.0, seconds=90, window_s=300)

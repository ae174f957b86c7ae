"""Requests signed beforehand, for a compiled load generator to replay: each an issue, a redeem or
a batch of them, built and signed by the partner client's own code (``clearhouse_client``'s
``Calls`` and ``Signer``), each with its own nonce and ``Idempotency-Key``, written as raw HTTP/1.1
bytes to one file per generator thread.

A signed request is good once (the server refuses a nonce seen before) and only while its
``created`` lies within the server's signature window, so the benchmark signs a run's requests
just before that run, as many as the run can send.

A request file holds records of ``<length>\\n<raw request bytes>``, the length in bytes, so that
the replaying script reads each with two calls and no parsing.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.bench.ledger import ISSUE_SHARE, POINTS_MAX, pick
from clearhouse_client.operations import BatchItem, Calls
from clearhouse_client.signing import Signer

BATCH_PATH: Final = "/v1/transactions/batch"
REFERENCE: Final = "bench"
USER_AGENT: Final = "clearhouse-bench-api"
# httpx adds these of its own; the replayed bytes need neither (wrk reads plain bodies).
_DROPPED_HEADERS: Final = ("accept-encoding",)


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """A partner's signing key as the server knows it."""

    key_id: str
    private_key: Ed25519PrivateKey


def raw_request(request: httpx.Request) -> bytes:
    """The request as it goes on the wire: request line, header fields, blank line, body."""
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} HTTP/1.1"]
    lines += [
        f"{name}: {value}"
        for name, value in request.headers.multi_items()
        if name.lower() not in _DROPPED_HEADERS
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + request.content


class Presigner:
    """Builds and signs requests for the server at ``base_url`` with the partners' keys."""

    def __init__(self, base_url: str, keys: Mapping[str, PartnerKey]) -> None:
        self._http = httpx.Client(base_url=base_url, headers={"User-Agent": USER_AGENT})
        self._calls = Calls(self._http)
        self._signers = {
            partner_id: Signer(key.key_id, key.private_key, {}) for partner_id, key in keys.items()
        }
        self.partner_ids = list(keys)

    def close(self) -> None:
        self._http.close()

    def _signed(self, partner_id: str, request: httpx.Request) -> bytes:
        self._signers[partner_id].sign(request)  # a fresh nonce and created
        return raw_request(request)

    def single(self, rng: random.Random, member_ids: Sequence[str]) -> bytes:
        """One issue or redeem, as ``AsyncPartnerClient.issue`` or ``redeem`` would send it."""
        partner_id, member_id, points, issue = pick(rng, self.partner_ids, member_ids)
        request = self._calls.points(
            "issue" if issue else "redeem", member_id, points, REFERENCE, None, None, None
        )
        return self._signed(partner_id, request)

    def batch(
        self, rng: random.Random, member_ids: Sequence[str], items: int, number: int
    ) -> bytes:
        """The ``number``-th ``POST /v1/transactions/batch``: ``items`` issues or ``items``
        redeems (the mix holds across batches) of one partner, not atomic, each item with its
        own idempotency key, the batch with its own, as ``PartnerClient.batch`` sends it; one
        kind per batch, so one ``Data-Purpose``.

        A batch is one transaction holding its members' rows until it commits, so the items
        are ``items`` members in a row, the next batch's the next ones: batches in flight
        together touch different members, as a partner's day of tills would (random members
        would have concurrent batches wait for each other's locks)."""
        partner_id = self.partner_ids[rng.randrange(len(self.partner_ids))]
        kind = "issue" if rng.random() < ISSUE_SHARE else "redeem"
        first = number * items
        entries = [
            BatchItem(
                kind=kind,
                member_id=member_ids[(first + n) % len(member_ids)],
                points=rng.randint(1, POINTS_MAX),
                reference=REFERENCE,
            )
            for n in range(items)
        ]
        request = self._calls.batch(entries, atomic=False, idempotency_key=None)
        return self._signed(partner_id, request)


def singles(
    presigner: Presigner, member_ids: Sequence[str], count: int, seed: str
) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        yield presigner.single(rng, member_ids)


def batches(
    presigner: Presigner, member_ids: Sequence[str], count: int, items: int, seed: str
) -> Iterator[bytes]:
    rng = random.Random(seed)
    for number in range(count):
        yield presigner.batch(rng, member_ids, items, number)


def write_request_files(requests: Iterator[bytes], base: Path, threads: int) -> list[int]:
    """``base.0`` … ``base.<threads - 1>``, the requests dealt round-robin; how many each got."""
    counts = [0] * threads
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(Path(f"{base}.{n}").open("wb")) for n in range(threads)]
        for number, raw in enumerate(requests):
            thread = number % threads
            files[thread].write(b"%d\n" % len(raw))
            files[thread].write(raw)
            counts[thread] += 1
    return counts


def read_request_file(path: Path) -> list[bytes]:
    """The records of one request file (what the replaying script reads), for checking."""
    data = path.read_bytes()
    records, at = [], 0
    while at < len(data):
        newline = data.index(b"\n", at)
        length = int(data[at:newline])
        records.append(data[newline + 1 : newline + 1 + length])
        at = newline + 1 + length
    return records

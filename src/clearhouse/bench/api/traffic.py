"""The API benchmark's load: one partner client per partner, pinned to the coalition key the
server serves, and ``concurrency`` tasks sending signed issues and redeems; what they achieved."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from clearhouse.bench.api.server import ApiServer
from clearhouse.bench.ledger import (
    pick,
)
from clearhouse.bench.servers import (
    BenchError,
)

CLIENT_TIMEOUT_S: Final = 10.0


class PartnerApi(Protocol):
    """What the benchmark needs of ``clearhouse_client.AsyncPartnerClient``."""

    async def issue(self, member_id: str, points: int, *, reference: str) -> object: ...

    async def redeem(self, member_id: str, points: int, *, reference: str) -> object: ...

    async def coalition_keys(self) -> dict[str, bytes]: ...

    async def aclose(self) -> None: ...


class ClientFactory(Protocol):
    """``AsyncPartnerClient`` itself: the CLI passes the class in."""

    def __call__(
        self,
        base_url: str,
        *,
        key_id: str,
        private_key: Ed25519PrivateKey,
        coalition_keys: Mapping[str, bytes] | None = None,
        timeout_s: float = ...,
    ) -> PartnerApi: ...


@dataclass(slots=True)
class ApiRun:
    """What the tasks of one timed API run achieved."""

    latencies_s: list[float] = field(default_factory=list)
    """One per accepted (201) request."""
    refused: int = 0
    """409 insufficient_points."""
    errors: Counter[str] = field(default_factory=Counter)
    """Every other failure, by problem code or exception type."""
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return len(self.latencies_s)

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def total(cls, runs: Sequence[ApiRun]) -> ApiRun:
        errors: Counter[str] = Counter()
        for run in runs:
            errors.update(run.errors)
        return cls(
            [s for run in runs for s in run.latencies_s],
            sum(run.refused for run in runs),
            errors,
            sum(run.elapsed_s for run in runs),
        )

    def latency_ms(self) -> dict[str, float]:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}

        def rank(q: float) -> float:  # nearest rank
            return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1e3

        return {
            "p50": rank(0.50),
            "p90": rank(0.90),
            "p99": rank(0.99),
            "max": ordered[-1] * 1e3,
            "mean": sum(ordered) / len(ordered) * 1e3,
        }

    def as_json(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "errors": dict(self.errors),
            "elapsed_s": round(self.elapsed_s, 3),
            "accepted_per_s": round(self.accepted_per_s, 1),
            "latency_ms": {k: round(v, 2) for k, v in self.latency_ms().items()},
        }


async def drive_api(
    clients: Mapping[str, PartnerApi],
    member_ids: Sequence[str],
    name: str,
    concurrency: int,
    seconds: float,
) -> ApiRun:
    """``concurrency`` tasks sending issues and redeems until ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    partner_ids = list(clients)
    run = ApiRun()
    start = loop.time()
    deadline = start + seconds

    async def task(number: int) -> None:
        rng = random.Random(f"{name}-{number}")
        while loop.time() < deadline:
            partner_id, member_id, points, issue = pick(rng, partner_ids, member_ids)
            client = clients[partner_id]
            call = client.issue if issue else client.redeem
            began = time.perf_counter()
            try:
                await call(member_id, points, reference="bench")
            except Exception as exc:  # the client's typed problems, transport errors
                code = getattr(exc, "code", None)
                if code == "insufficient_points":
                    run.refused += 1
                else:
                    run.errors[str(code or type(exc).__name__)] += 1
                continue
            run.latencies_s.append(time.perf_counter() - began)

    await asyncio.gather(*(task(n) for n in range(concurrency)))
    run.elapsed_s = loop.time() - start
    return run


async def partner_clients(
    client_factory: ClientFactory,
    api: ApiServer,
    keys: Mapping[str, Ed25519PrivateKey],
    key_ids: Mapping[str, str],
) -> dict[str, PartnerApi]:
    """One client per partner, all pinned to the coalition key the server serves."""
    first = next(iter(keys))
    probe = client_factory(
        api.base_url, key_id=key_ids[first], private_key=keys[first], timeout_s=CLIENT_TIMEOUT_S
    )
    try:
        coalition_keys = await probe.coalition_keys()
    finally:
        await probe.aclose()
    if api.coalition_public_key not in coalition_keys.values():
        raise BenchError("the server does not serve the coalition key it was given")
    return {
        partner_id: client_factory(
            api.base_url,
            key_id=key_ids[partner_id],
            private_key=key,
            coalition_keys=coalition_keys,
            timeout_s=CLIENT_TIMEOUT_S,
        )
        for partner_id, key in keys.items()
    }

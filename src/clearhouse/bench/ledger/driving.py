"""The loops of a throughput run: concurrent workers calling one post until the time is up (or
until each of a list of members has had its entry), and what they achieved."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

Post = Callable[[random.Random, str], Awaitable[bool]]
"""Posts one entry under the given idempotency key; False when it was refused (no points)."""
PostFor = Callable[[str, str], Awaitable[bool]]
"""Posts one entry for the given member under the given idempotency key; False when refused."""


@dataclass(frozen=True, slots=True)
class Throughput:
    """What the workers of one timed run achieved."""

    entries: int
    refused: int
    elapsed_s: float

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def total(cls, runs: Sequence[Throughput]) -> Throughput:
        return cls(
            sum(r.entries for r in runs),
            sum(r.refused for r in runs),
            sum(r.elapsed_s for r in runs),
        )

    def as_json(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "refused": self.refused,
            "elapsed_s": round(self.elapsed_s, 3),
            "entries_per_s": round(self.entries_per_s, 1),
        }


async def drive(post: Post, name: str, workers: int, seconds: float) -> Throughput:
    """``workers`` concurrent loops calling ``post`` until ``seconds`` have passed."""
    loop = asyncio.get_running_loop()
    entries = refused = 0
    start = loop.time()
    deadline = start + seconds

    async def worker(number: int) -> None:
        nonlocal entries, refused
        rng = random.Random(f"{name}-{number}")
        calls = 0
        while loop.time() < deadline:
            if await post(rng, f"bench-{name}-{number}-{calls}"):
                entries += 1
            else:
                refused += 1
            calls += 1

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return Throughput(entries, refused, loop.time() - start)


async def drive_each(
    post: PostFor, name: str, member_ids: Sequence[str], workers: int
) -> Throughput:
    """``workers`` concurrent loops posting one entry for each of ``member_ids``, in turn."""
    loop = asyncio.get_running_loop()
    todo = iter(enumerate(member_ids))
    entries = refused = 0
    start = loop.time()

    async def worker() -> None:
        nonlocal entries, refused
        for n, member_id in todo:
            if await post(member_id, f"bench-{name}-{n}"):
                entries += 1
            else:
                refused += 1

    await asyncio.gather(*(worker() for _ in range(workers)))
    return Throughput(entries, refused, loop.time() - start)

"""What a benchmark reports: the machine it ran on, its bars, its table lines, its JSON file."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clearhouse.bench.servers import Server


@dataclass(frozen=True, slots=True)
class Ratio:
    """One ratio of two figures and the bar it is held to (at least ``bar``)."""

    name: str
    label: str
    value: float
    bar: float
    binding: bool
    """A goal of the issue (True) or an aim beyond it (False)."""

    @property
    def met(self) -> bool:
        return self.value >= self.bar

    def as_json(self) -> dict[str, object]:
        return {
            "value": round(self.value, 3),
            "goal" if self.binding else "aim": self.bar,
            "met": self.met,
        }

    def line(self) -> str:
        kind = "goal" if self.binding else "aim"
        verdict = "met" if self.met else "NOT met"
        return f"  {self.label:<34}{self.value:>12.2f}   {kind} >= {self.bar:.2f}: {verdict}"


@dataclass(frozen=True, slots=True)
class Ceiling:
    """One figure that must stay below ``bar`` (a latency, say), in ``unit``."""

    name: str
    label: str
    value: float
    bar: float
    unit: str

    @property
    def met(self) -> bool:
        return self.value < self.bar

    def as_json(self) -> dict[str, object]:
        return {"value": round(self.value, 3), "goal_below": self.bar, "met": self.met}

    def line(self) -> str:
        verdict = "met" if self.met else "NOT met"
        return f"  {self.label:<34}{self.value:>12.2f}   goal < {self.bar:g} {self.unit}: {verdict}"


@dataclass(frozen=True, slots=True)
class AtMost:
    """A figure held to at most ``bar`` (a ratio), or below it (memory)."""

    name: str
    label: str
    value: float
    bar: float
    what: str
    strict: bool = False

    @property
    def met(self) -> bool:
        return self.value < self.bar if self.strict else self.value <= self.bar

    def as_json(self) -> dict[str, object]:
        key = "goal_below" if self.strict else "goal_at_most"
        return {"value": round(self.value, 3), key: self.bar, "met": self.met, "what": self.what}

    def line(self, unit: str = "") -> str:
        verdict = "met" if self.met else "NOT met"
        relation = "<" if self.strict else "<="
        return (
            f"  {self.label:<42}{self.value:>10.2f}   goal {relation} {self.bar:g}{unit}: {verdict}"
        )


def ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom > 0 else 0.0


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine_facts(server: Server, facts: Mapping[str, object]) -> dict[str, object]:
    """This machine and the PostgreSQL server, from ``servers.server_facts``."""
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "postgresql_version": facts["version"],
        "postgresql_settings": {k: v for k, v in facts.items() if k != "version"},
        "server": server.describe(),
    }


def headline(title: str, details: str, machine: Mapping[str, object]) -> str:
    """The first line of a benchmark's table: what ran, and on what."""
    return (
        f"{title}: {details}, {machine['cpu_count']} CPUs, "
        f"PostgreSQL {machine['postgresql_version']} ({machine['server']})"
    )


def check_lines(violations: Sequence[str], posted: int, in_database: int) -> list[str]:
    """The ledger's invariants and the count of entries, as the last lines of a table."""
    lines: list[str] = []
    if violations:
        lines.append(f"  LEDGER INVARIANTS BROKEN ({len(violations)}):")
        lines += [f"    {v}" for v in violations[:20]]
    else:
        lines.append("  ledger invariants: all hold")
    if in_database != posted:
        lines.append(f"  ENTRY COUNT MISMATCH: {posted:,} posted, {in_database:,} in the database")
    else:
        lines.append(f"  entries in the database: {in_database:,} (as posted)")
    return lines


def write_json(data: Mapping[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

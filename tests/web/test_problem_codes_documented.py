"""Every problem code the test suite received from an operation is one its OpenAPI document
lists for it (``problem_responses``), as SPEC 4.4 asks of the document.

``tests.web.problem_recorder`` records, through the whole run, each problem answered by any app
the tests build, with the route template Litestar routed to; ``tests/conftest.py`` runs this
module last. Routes outside the document (``/schema``, a console, static files) are not
operations and are left out. The test sends a few refused requests of its own, so that run
alone it still has something to compare.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tests.web.harness import SignedApi
from tests.web.problem_recorder import RECEIVED

METHODS = frozenset({"get", "put", "post", "delete", "patch"})
Operation = tuple[str, str]


def _problem_media(response: dict[str, Any]) -> dict[str, Any]:
    media: dict[str, Any] = response.get("content", {}).get("application/problem+json", {})
    return media


def documented_problems(document: dict[str, Any]) -> dict[Operation, set[str]]:
    """The codes each operation's problem responses list, read from their examples (one per
    code, ``problem_responses`` writes them)."""
    return {
        (method.upper(), path): {
            example["value"]["code"]
            for response in operation["responses"].values()
            for example in _problem_media(response).get("examples", {}).values()
        }
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def received_problems(documented: dict[Operation, set[str]]) -> dict[Operation, dict[str, int]]:
    """What the run received, per operation of the document, with how often."""
    received: dict[Operation, dict[str, int]] = defaultdict(dict)
    for (method, path, code), count in RECEIVED.items():
        if (method, path) in documented:
            received[(method, path)][code] = count
    return received


def table(received: dict[Operation, dict[str, int]], documented: dict[Operation, set[str]]) -> str:
    lines = []
    for method, path in sorted(received, key=lambda op: (op[1], op[0])):
        codes = received[(method, path)]
        shown = ", ".join(
            f"{code} x{count}" + ("" if code in documented[(method, path)] else " (UNDOCUMENTED)")
            for code, count in sorted(codes.items())
        )
        lines.append(f"{method:6} {path}: {shown}")
    return "\n".join(lines)


async def _refusals(api: SignedApi) -> None:
    """Requests refused at the door, so that there is always something to compare."""
    await api.client.get("/v1/transactions", params={"period": "2026-11"})
    await api.client.post("/v1/transactions/issue", json={})
    await api.client.get("/v1/admin/partners", headers={"Authorization": "Bearer wrong"})
    await api.client.get("/v1/audit/periods")


async def test_every_problem_received_is_documented_for_its_operation(api: SignedApi) -> None:
    await _refusals(api)
    document: dict[str, Any] = (await api.client.get("/schema/openapi.json")).json()
    documented = documented_problems(document)
    received = received_problems(documented)
    report = table(received, documented)
    print(f"\nProblems received, per operation ({len(received)} operations):\n{report}")
    assert len(received) >= 3, "the recorder saw none of the refusals sent here"
    undocumented = sorted(
        f"{method} {path}: {code}"
        for (method, path), codes in received.items()
        for code in codes
        if code not in documented[(method, path)]
    )
    assert not undocumented, "received but not documented:\n" + "\n".join(undocumented)

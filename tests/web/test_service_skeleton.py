"""The service skeleton through the ASGI app: health, readiness, problems, OpenAPI."""

from __future__ import annotations

import httpx

from clearhouse.services.database import Database
from tests.web.conftest import SANDBOX, client_for


async def test_health_answers_without_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"].startswith("urn:uuid:")


async def test_ready_reads_the_ledger_clock(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["ledger_time"].endswith("Z")


async def test_ready_is_a_503_problem_when_the_database_is_unreachable() -> None:
    unreachable = Database.for_url("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    async with client_for(SANDBOX, unreachable) as client:
        response = await client.get("/ready")
    await unreachable.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["code"] == "unavailable"
    assert body["type"] == "/problems/unavailable"
    assert body["instance"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


async def test_an_unknown_path_is_a_404_problem_with_a_request_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["title"]
    assert body["instance"].startswith("urn:uuid:")


async def test_a_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.post("/health")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_openapi_document_lists_the_endpoints_and_their_problems(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert {"/health", "/ready"} <= set(document["paths"])
    ready_503 = document["paths"]["/ready"]["get"]["responses"]["503"]
    assert "application/problem+json" in ready_503["content"]
    page = await client.get("/schema")
    assert page.status_code == 200
    assert "html" in page.headers["content-type"]

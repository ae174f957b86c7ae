"""``GET /metrics``: requests by route and status, signature failures, entries posted."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from clearhouse.services import access
from clearhouse.services.access import Role
from tests.web.harness import SignedApi, utc_now


async def _samples(api: SignedApi) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    token = await access.create_token(api.database, Role.OPERATOR, utc_now() + timedelta(hours=1))
    response = await api.client.get("/metrics", headers={"Authorization": f"Bearer {token.secret}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_metrics_count_requests_failures_and_entries(api: SignedApi) -> None:
    before = await _samples(api)
    partner = await api.partner()
    member = await api.member()
    await api.issued(partner, member, 5)
    request = api.points("issue", partner, member, 5)
    request.headers["Signature"] = request.headers["Signature"].replace(":", ":A", 1)
    await api.refused(request, 401, "invalid_signature")
    after = await _samples(api)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("clearhouse_entries_posted_total", kind="issue") == 1
    assert grew("clearhouse_signature_failures_total", code="invalid_signature") == 1
    issue = {"method": "POST", "route": "/v1/transactions/issue"}
    assert grew("clearhouse_requests_total", **issue, status="201") == 1
    assert grew("clearhouse_requests_total", **issue, status="401") == 1

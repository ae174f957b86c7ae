"""``GET /metrics``: requests and their durations by route and status, signature failures,
entries posted, the build and the process, in one text exposition."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from clearhouse import __version__
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


async def test_request_durations_are_observed_per_route_template_and_status(
    api: SignedApi, operator: dict[str, str]
) -> None:
    template = "/v1/admin/partners/{partner_id}/keys"
    labels = {"method": "GET", "route": template, "status": "200"}
    before = await _samples(api)
    partner = await api.partner()
    response = await api.client.get(
        f"/v1/admin/partners/{partner.partner_id}/keys", headers=operator
    )
    assert response.status_code == 200
    after = await _samples(api)

    def grew(name: str, **more: str) -> float:
        key = (name, tuple(sorted((labels | more).items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("clearhouse_request_duration_seconds_count") == 1
    assert grew("clearhouse_request_duration_seconds_bucket", le="5.0") == 1
    assert grew("clearhouse_request_duration_seconds_bucket", le="+Inf") == 1
    assert grew("clearhouse_request_duration_seconds_sum") > 0
    raw_path = f"/v1/admin/partners/{partner.partner_id}/keys"
    assert all(dict(labels_).get("route") != raw_path for _, labels_ in after)


async def test_metrics_name_the_build_and_the_process(api: SignedApi) -> None:
    samples = await _samples(api)
    assert samples[("clearhouse_build_info", (("version", __version__),))] == 1
    assert samples[("process_cpu_seconds_total", ())] > 0
    assert ("python_info", ()) not in samples  # labelled with the interpreter's version
    assert any(name == "python_info" for name, _ in samples)


async def test_metrics_have_one_content_type_with_one_charset(
    api: SignedApi, operator: dict[str, str]
) -> None:
    response = await api.client.get("/metrics", headers=operator)
    assert response.headers.get_list("content-type") == ["text/plain; version=0.0.4; charset=utf-8"]

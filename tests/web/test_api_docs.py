"""The docs page at /schema works with no internet: Swagger UI from the files the package ships,
every asset it loads answered by the app itself, no other viewer (they load from a CDN)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.harness import SignedApi

URL = re.compile(r"https?://[^\s\"'<>`)\\]+")
LOADED = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


async def _docs_page(api: SignedApi, path: str = "/schema") -> str:
    response = await api.client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def _example_urls(value: Any, in_example: bool = False) -> set[str]:
    """The URLs in the document's examples (a partner's webhook URL): data the page shows,
    which it never loads."""
    if isinstance(value, dict):
        return {
            url
            for key, item in value.items()
            for url in _example_urls(item, in_example or key in {"example", "examples"})
        }
    if isinstance(value, list):
        return {url for item in value for url in _example_urls(item, in_example)}
    return set(URL.findall(value)) if in_example and isinstance(value, str) else set()


@pytest.mark.parametrize("path", ["/schema", "/schema/swagger"])
async def test_the_docs_page_names_no_url_outside_the_app(api: SignedApi, path: str) -> None:
    html = await _docs_page(api, path)
    shown = _example_urls((await api.client.get("/schema/openapi.json")).json())
    external = {
        url for url in URL.findall(html) if not url.startswith(api.base_url) and url not in shown
    }
    assert not external, f"the docs page names URLs outside the app: {sorted(external)}"


async def test_every_asset_of_the_docs_page_is_served_by_the_app(api: SignedApi) -> None:
    assets = LOADED.findall(await _docs_page(api))
    assert {
        "/schema/swagger-ui/swagger-ui-bundle.js",
        "/schema/swagger-ui/swagger-ui-standalone-preset.js",
        "/schema/swagger-ui/swagger-ui.css",
        "/schema/swagger-ui/favicon-32x32.png",
    } <= set(assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        response = await api.client.get(asset)
        assert response.status_code == 200, asset
        assert response.content, asset


async def test_swagger_ui_is_one_that_reads_openapi_3_1(api: SignedApi) -> None:
    # Swagger UI before 5 (swagger-ui-bundle 1.x ships 4.15) has no OAS 3.1 plugin and says
    # "Unable to render this definition" to the document Litestar writes.
    bundle = (await api.client.get("/schema/swagger-ui/swagger-ui-bundle.js")).text
    assert "isOAS31" in bundle
    document = (await api.client.get("/schema/openapi.json")).json()
    assert document["openapi"].startswith("3.1")


@pytest.mark.parametrize(
    "path", ["/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/scalar"]
)
async def test_no_viewer_that_loads_from_a_cdn_is_served(api: SignedApi, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code == 404
    assert not URL.findall(response.text)

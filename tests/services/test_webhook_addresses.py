"""Deliveries reach only public addresses outside sandbox mode, checked at the attempt itself,
and connect to the very address that was checked (no second lookup: DNS rebinding)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest

from clearhouse.domain.webhooks import target_of, url_problems
from clearhouse.services.database import Database
from tests.conftest import fresh_database
from tests.services.builders import a_partner
from tests.services.webhook_builders import (
    a_worker,
    an_endpoint,
    an_event,
    deliveries_of,
    delivery_of,
    fixed,
)
from tests.services.webhook_receiver import Receiver, tls_for


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with fresh_database() as database:
        yield database


class CountingResolver:
    """Answers from a script, one answer per lookup, and counts the lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return self._answers[min(len(self.lookups), len(self._answers)) - 1]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
        ("https://10.0.0.1/hook", "10.0.0.1 is a private address"),
        ("https://[::1]:{port}/hook", "::1 is a loopback address"),
        ("https://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("https://inside.partner.test:{port}/hook", "10.1.2.3 is a private address"),
        ("https://localhost:{port}/hook", "127.0.0.1 is a loopback address"),
        ("http://hooks.partner.test:{port}/hook", "the URL must use https"),
    ],
)
async def test_inner_addresses_are_refused_outside_sandbox(
    db: Database, url: str, reason: str
) -> None:
    partner = await a_partner(db)
    resolver = fixed(
        {
            "inside.partner.test": ["10.1.2.3"],
            "localhost": ["127.0.0.1"],
            "hooks.partner.test": ["93.184.216.34"],
        }
    )
    async with Receiver() as receiver:
        await an_endpoint(db, partner, url.format(port=receiver.port))
        event_id = await an_event(db, partner)
        async with a_worker(db, sandbox=False, resolver=resolver) as worker:
            assert await worker.run_once() == 1
        assert receiver.connections == 0
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, None)
    assert delivery.last_error is not None
    assert delivery.last_error.startswith("refused: ")
    assert reason in delivery.last_error


async def test_one_inner_address_among_the_answers_refuses_the_attempt(db: Database) -> None:
    partner = await a_partner(db)
    resolver = fixed({"hooks.partner.test": ["93.184.216.34", "192.168.0.7"]})
    await an_endpoint(db, partner, "https://hooks.partner.test/hook")
    event_id = await an_event(db, partner)
    async with a_worker(db, sandbox=False, resolver=resolver) as worker:
        await worker.run_once()
    assert (await delivery_of(db, event_id)).last_error == (
        "refused: 192.168.0.7 is a private address"
    )


async def test_a_name_that_resolved_public_at_registration_is_refused_when_it_turns_inner(
    db: Database,
) -> None:
    partner = await a_partner(db)
    url = "https://rebind.partner.test/hook"
    resolver = CountingResolver(["93.184.216.34"], ["127.0.0.1"])
    target = target_of(url)
    assert target is not None
    # Registration: the name resolves to a public address, so the URL is accepted.
    assert url_problems(url, await resolver(target.host, target.port), sandbox=False) == []
    await an_endpoint(db, partner, url)
    event_id = await an_event(db, partner)
    async with Receiver() as receiver, a_worker(db, sandbox=False, resolver=resolver) as worker:
        await worker.run_once()
        assert receiver.connections == 0
    assert resolver.lookups == [("rebind.partner.test", 443)] * 2
    delivery = await delivery_of(db, event_id)
    assert delivery.last_error == "refused: 127.0.0.1 is a loopback address"


async def test_a_host_that_does_not_resolve_is_a_failed_attempt(db: Database) -> None:
    partner = await a_partner(db)
    await an_endpoint(db, partner, "https://nowhere.partner.test/hook")
    event_id = await an_event(db, partner)
    async with a_worker(db, sandbox=False, resolver=fixed({})) as worker:
        await worker.run_once()
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.last_error) == ("pending", "the host did not resolve")


async def test_the_attempt_connects_to_the_address_it_resolved_and_names_the_host(
    db: Database,
) -> None:
    partner = await a_partner(db)
    resolver = CountingResolver(["127.0.0.1"])
    async with Receiver() as receiver:
        # The name exists only in the test's resolver: nothing else could have found it.
        await an_endpoint(db, partner, receiver.url("/in?x=1", host="hooks.partner.test"))
        event_id = await an_event(db, partner)
        async with a_worker(db, resolver=resolver) as worker:
            await worker.run_once()
    (hit,) = receiver.hits
    assert hit.headers["host"] == f"hooks.partner.test:{receiver.port}"
    assert hit.target == "/in?x=1"
    assert resolver.lookups == [("hooks.partner.test", receiver.port)]
    assert (await delivery_of(db, event_id)).status == "delivered"


async def test_https_names_the_host_in_tls_and_checks_its_certificate(db: Database) -> None:
    partner = await a_partner(db)
    tls = tls_for("hooks.partner.test")
    impostor = tls_for("other.partner.test")
    # The client trusts both certificates; only the one for the URL's name may answer.
    trusting = ssl.create_default_context(cadata=tls.certificate_pem + impostor.certificate_pem)
    resolver = fixed({"hooks.partner.test": ["127.0.0.1"]})
    async with Receiver(tls=tls.server) as receiver, Receiver(tls=impostor.server) as wrong:
        right_url = receiver.url(host="hooks.partner.test")
        await an_endpoint(db, partner, right_url)
        await an_endpoint(db, partner, wrong.url(host="hooks.partner.test"))
        event_id = await an_event(db, partner)
        async with a_worker(db, resolver=resolver, tls=trusting) as worker:
            assert await worker.run_once() == 2
        assert len(receiver.hits) == 1
        assert wrong.hits == []  # its certificate names another host: refused at the handshake
    deliveries = {d.status: d for d in await deliveries_of(db, event_id)}
    assert deliveries["delivered"].last_status == 200
    assert deliveries["pending"].last_error == "could not connect to 127.0.0.1"

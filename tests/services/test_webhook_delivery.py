"""Webhook delivery against a real receiver on loopback: signed as Standard Webhooks says, at
least once with one ``webhook-id`` however the workers die, never one attempt twice, retried on
the schedule, and endpoints disabled as the rules say."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import nacl.signing
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from clearhouse.crypto.webhooks import (
    WebhookSignatureInvalid,
    new_secret,
    secret_text,
    signed_content,
    verify_v1a,
)
from clearhouse.domain.webhooks import ATTEMPTS_MAX, Attempt
from clearhouse.services.clock import set_ledger_time
from clearhouse.services.database import Database
from clearhouse.services.webhooks import Webhooks
from tests.conftest import fresh_database
from tests.services.builders import a_member, a_partner
from tests.services.webhook_builders import (
    LEASE_S,
    MASTER_KEY,
    a_webhook_key,
    a_worker,
    an_endpoint,
    an_event,
    deliver_until_settled,
    deliveries_of,
    delivery_of,
    endpoint_state,
    operator_events,
    shifted,
    stored_body,
)
from tests.services.webhook_receiver import Answer, Hit, Receiver, always, in_turn

AT_ONCE = Answer(503, {"Retry-After": "0"})
"""A failure that asks to be tried again now, so that a test need not wait out the schedule."""


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    """A database of the test's own: a worker claims whatever is due in its database."""
    async with fresh_database() as database:
        yield database


def v1a_signature(hit: Hit) -> bytes:
    (signature,) = [s for s in hit.headers["webhook-signature"].split(" ") if s[:4] == "v1a,"]
    return base64.b64decode(signature[4:])


async def test_a_delivery_sends_the_stored_bytes_signed_v1a_and_v1(db: Database) -> None:
    partner = await a_partner(db)
    key = a_webhook_key()
    async with Receiver() as receiver:
        endpoint = await an_endpoint(db, partner, receiver.url(), with_secret=True)
        event_id = await an_event(db, partner)
        async with a_worker(db, key) as worker:
            assert await worker.run_once() == 1
    (hit,) = receiver.hits
    assert (hit.method, hit.target) == ("POST", "/hooks/clearhouse")
    assert hit.body == await stored_body(db, event_id)
    assert json.loads(hit.body)["type"] == "entry.recorded"
    assert hit.headers["content-type"] == "application/json"
    assert hit.headers["webhook-id"] == event_id
    timestamp = int(hit.headers["webhook-timestamp"])
    assert abs(timestamp - time.time()) < 60
    # An Ed25519 of its own verifies v1a; the Standard Webhooks package verifies v1.
    content = signed_content(event_id, timestamp, hit.body)
    assert content == f"{event_id}.{timestamp}.".encode() + hit.body
    nacl.signing.VerifyKey(key.public_key).verify(content, v1a_signature(hit))
    assert endpoint.secret is not None
    Webhook(secret_text(endpoint.secret)).verify(hit.body, hit.headers)
    verify_v1a(key.public_key, hit.headers, hit.body, now=int(time.time()))

    changed = hit.body.replace(b"5", b"6", 1)
    assert len(changed) == len(hit.body)
    assert sum(a != b for a, b in zip(changed, hit.body, strict=True)) == 1
    with pytest.raises(nacl.exceptions.BadSignatureError):
        nacl.signing.VerifyKey(key.public_key).verify(
            signed_content(event_id, timestamp, changed), v1a_signature(hit)
        )
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_text(endpoint.secret)).verify(changed, hit.headers)
    with pytest.raises(WebhookSignatureInvalid):
        verify_v1a(key.public_key, hit.headers, changed, now=int(time.time()))
    with pytest.raises(WebhookSignatureInvalid, match="off"):
        verify_v1a(key.public_key, hit.headers, hit.body, now=timestamp + 301)

    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 1, 200)
    assert delivery.delivered_at is not None
    assert delivery.lease_until is None
    assert delivery.last_error is None


async def test_an_endpoint_without_a_secret_gets_v1a_alone(db: Database) -> None:
    partner = await a_partner(db)
    key = a_webhook_key()
    async with Receiver() as receiver:
        await an_endpoint(db, partner, receiver.url())
        await an_event(db, partner)
        async with a_worker(db, key) as worker:
            await worker.run_once()
    (hit,) = receiver.hits
    assert hit.headers["webhook-signature"].startswith("v1a,")
    assert " " not in hit.headers["webhook-signature"]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_text(new_secret())).verify(hit.body, hit.headers)
    verify_v1a(key.public_key, hit.headers, hit.body, now=int(time.time()))


async def test_an_issue_is_delivered_to_its_partners_endpoint_and_no_other(db: Database) -> None:
    bakery, florist = await a_partner(db, "bakery"), await a_partner(db, "florist")
    async with Receiver() as bakery_hooks, Receiver() as florist_hooks:
        await an_endpoint(db, bakery, bakery_hooks.url())
        await an_endpoint(db, florist, florist_hooks.url())
        await an_endpoint(db, bakery, florist_hooks.url(), event_types=["hold.authorized"])
        member = await a_member(db, balance=25, partner_id=bakery)
        async with a_worker(db) as worker:
            assert await worker.run_once() == 1
    (hit,) = bakery_hooks.hits
    assert florist_hooks.hits == []
    event = json.loads(hit.body)
    assert event["type"] == "entry.recorded"
    assert (event["data"]["kind"], event["data"]["member_id"]) == ("issue", member)
    assert event["data"]["points"] == 25


async def test_retries_and_a_replay_carry_the_events_id_as_webhook_id(db: Database) -> None:
    partner = await a_partner(db)
    key = a_webhook_key()
    answers = in_turn(AT_ONCE, Answer(429, {"Retry-After": "0"}), Answer(200))
    async with Receiver(answers) as receiver:
        await an_endpoint(db, partner, receiver.url(), with_secret=True)
        event_id = await an_event(db, partner)
        async with a_worker(db, key) as worker:
            await deliver_until_settled(worker)
            delivered = await delivery_of(db, event_id)
            assert (delivered.status, delivered.attempts) == ("delivered", 3)

            await Webhooks(db, MASTER_KEY, sandbox=True).replay(delivered.delivery_id)
            again = await delivery_of(db, event_id)
            assert (again.status, again.delivered_at) == ("pending", None)
            await deliver_until_settled(worker)
    assert receiver.ids() == [event_id] * 4
    stamps = [int(hit.headers["webhook-timestamp"]) for hit in receiver.hits]
    assert stamps == sorted(stamps)
    for hit in receiver.hits:
        verify_v1a(key.public_key, hit.headers, hit.body, now=int(time.time()))
        assert hit.body == receiver.hits[0].body
    assert (await delivery_of(db, event_id)).status == "delivered"


async def test_a_worker_that_dies_after_its_claim_leaves_the_delivery_to_another(
    db: Database,
) -> None:
    partner = await a_partner(db)
    async with Receiver() as receiver:
        await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db) as dying, a_worker(db) as survivor:
            (claimed,) = await dying.claim()  # committed; then the worker is gone
            assert claimed.event_id == event_id
            assert await survivor.run_once() == 0  # the lease still holds
            await asyncio.sleep(LEASE_S + 0.1)
            assert await survivor.run_once() == 1
    assert receiver.ids() == [event_id]
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


async def test_a_worker_that_dies_after_the_post_is_followed_by_a_second_post_with_the_same_id(
    db: Database,
) -> None:
    partner = await a_partner(db)
    async with Receiver() as receiver:
        await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db) as dying, a_worker(db) as survivor:
            (claimed,) = await dying.claim()
            outcome = await dying.attempt(claimed)  # the receiver has it; nothing is recorded
            assert outcome == Attempt(status=200)
            assert (await delivery_of(db, event_id)).status == "pending"
            await asyncio.sleep(LEASE_S + 0.1)
            assert await survivor.run_once() == 1
    assert receiver.ids() == [event_id, event_id]  # at least once, always one id
    assert (await delivery_of(db, event_id)).status == "delivered"


async def test_a_worker_cancelled_mid_post_is_followed_by_a_delivery_with_the_same_id(
    db: Database,
) -> None:
    partner = await a_partner(db)
    released = asyncio.Event()

    async def answer_late_the_first_time(hit: Hit) -> Answer:
        if len(receiver.hits) == 1:
            await released.wait()
        return Answer()

    async with Receiver(answer_late_the_first_time) as receiver:
        await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db) as dying, a_worker(db) as survivor:
            running = asyncio.create_task(dying.run_once())
            await receiver.wait_for_hits(1)
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            released.set()
            await asyncio.sleep(LEASE_S + 0.1)
            assert await survivor.run_once() == 1
    assert receiver.ids() == [event_id, event_id]
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


async def test_the_result_of_a_lapsed_claim_is_not_recorded(db: Database) -> None:
    partner = await a_partner(db)
    async with Receiver(always(500)) as receiver:
        await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db) as slow, a_worker(db) as other:
            (lapsed,) = await slow.claim()
            await asyncio.sleep(LEASE_S + 0.1)
            (current,) = await other.claim()
            assert current.attempt == lapsed.attempt + 1
            assert await slow.record(lapsed, Attempt(status=200)) is None
            assert (await delivery_of(db, event_id)).status == "pending"
            assert await other.deliver(current) is not None
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 2, 500)


async def test_two_workers_never_deliver_one_attempt_twice(db: Database) -> None:
    partner = await a_partner(db)
    events = 24
    async with Receiver(in_turn(AT_ONCE, Answer(200))) as receiver:
        await an_endpoint(db, partner, receiver.url())
        event_ids = [await an_event(db, partner) for _ in range(events)]
        async with (
            a_worker(db, lease_s=60, batch=3) as first,
            a_worker(db, lease_s=60, batch=3) as second,
        ):
            await deliver_until_settled(first, second)
    # Each event: its first attempt (answered 503) and its second (200), each exactly once.
    assert Counter(receiver.ids()) == dict.fromkeys(event_ids, 2)
    for event_id in event_ids:
        delivery = await delivery_of(db, event_id)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 2, 200)


async def test_a_failed_attempt_is_due_again_on_the_schedule(db: Database) -> None:
    partner = await a_partner(db)
    async with Receiver(always(500)) as receiver:
        endpoint = await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db, random=lambda: 0.0) as worker:
            assert await worker.run_once() == 1
            assert await worker.run_once() == 0  # not due for 4.5 s (5 s, less 10 %)
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert (delivery.last_status, delivery.last_error) == (500, "HTTP 500")
    assert delivery.last_attempt_at is not None
    wait_s = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 4.5 <= wait_s < 4.5 + 5
    assert (await endpoint_state(db, endpoint.endpoint_id))["failing_since"] is not None


async def test_after_the_tenth_failed_attempt_the_delivery_has_failed(db: Database) -> None:
    partner = await a_partner(db)
    async with Receiver(always(503, Retry_After="0")) as receiver:
        endpoint = await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db) as worker:
            await deliver_until_settled(worker)
    assert receiver.ids() == [event_id] * ATTEMPTS_MAX
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts, delivery.last_status) == (
        "failed",
        ATTEMPTS_MAX,
        503,
    )
    assert (await endpoint_state(db, endpoint.endpoint_id))["disabled_at"] is None


async def test_a_redirect_is_a_failure_and_is_not_followed(db: Database) -> None:
    partner = await a_partner(db)
    async with Receiver() as elsewhere:
        async with Receiver(always(307, Location=elsewhere.url())) as receiver:
            await an_endpoint(db, partner, receiver.url())
            event_id = await an_event(db, partner)
            async with a_worker(db) as worker:
                await worker.run_once()
        assert len(receiver.hits) == 1
        assert elsewhere.connections == 0
    delivery = await delivery_of(db, event_id)
    assert delivery.status == "pending"
    assert delivery.last_error == "HTTP 307: redirects are not followed"


async def test_retry_after_of_429_and_503_is_honoured_in_seconds_and_as_a_date(
    db: Database,
) -> None:
    partner = await a_partner(db)
    in_ten_minutes = format_datetime(datetime.now(UTC) + timedelta(minutes=10), usegmt=True)
    async with (
        Receiver(always(429, Retry_After="120")) as busy,
        Receiver(always(503, Retry_After=in_ten_minutes)) as down,
    ):
        await an_endpoint(db, partner, busy.url())
        await an_endpoint(db, partner, down.url())
        event_id = await an_event(db, partner)
        async with a_worker(db) as worker:
            assert await worker.run_once() == 2
    waits = {}
    for delivery in await deliveries_of(db, event_id):
        assert delivery.last_attempt_at is not None
        waits[delivery.last_status] = (
            delivery.next_attempt_at - delivery.last_attempt_at
        ).total_seconds()
    assert 120 <= waits[429] < 125
    assert 595 <= waits[503] < 605


async def test_410_disables_the_endpoint_cancels_what_waits_and_tells_the_operator(
    db: Database,
) -> None:
    partner = await a_partner(db)
    async with Receiver(always(410)) as receiver:
        endpoint = await an_endpoint(db, partner, receiver.url())
        gone, waiting = await an_event(db, partner), await an_event(db, partner)
        async with a_worker(db, batch=1) as worker:
            assert await worker.run_once() == 1
            assert await worker.run_once() == 0
        assert len(receiver.hits) == 1
    assert (await delivery_of(db, gone)).status == "failed"
    assert (await delivery_of(db, waiting)).status == "cancelled"
    state = await endpoint_state(db, endpoint.endpoint_id)
    assert state["disabled_at"] is not None
    assert state["disabled_reason"] == "the endpoint answered 410 Gone"
    (told,) = await operator_events(db, "webhook_endpoint.disabled")  # to no partner
    assert (told["endpoint_id"], told["partner_id"], told["reason"]) == (
        endpoint.endpoint_id,
        partner,
        "the endpoint answered 410 Gone",
    )
    assert await deliveries_of(db, await an_event(db, partner)) == []  # no more deliveries


async def test_an_endpoint_failing_for_five_days_is_disabled(db: Database) -> None:
    partner = await a_partner(db)
    async with Receiver(always(503, Retry_After="0")) as receiver:
        endpoint = await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db, batch=1) as today:
            await today.deliver((await today.claim())[0])
        assert (await endpoint_state(db, endpoint.endpoint_id))["failing_since"] is not None
        almost = a_worker(db, batch=1, clock=shifted(timedelta(days=4, hours=23)))
        async with almost:
            await almost.deliver((await almost.claim())[0])
        assert (await endpoint_state(db, endpoint.endpoint_id))["disabled_at"] is None
        later = a_worker(db, batch=1, clock=shifted(timedelta(days=5, minutes=1)))
        async with later:
            await later.deliver((await later.claim())[0])
    delivery = await delivery_of(db, event_id)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    state = await endpoint_state(db, endpoint.endpoint_id)
    assert state["disabled_reason"] == "no delivery succeeded for 5 days"
    (told,) = await operator_events(db, "webhook_endpoint.disabled")
    assert told["endpoint_id"] == endpoint.endpoint_id


async def test_a_success_ends_an_endpoints_failing_streak(db: Database) -> None:
    partner = await a_partner(db)
    async with Receiver(in_turn(AT_ONCE, Answer(204))) as receiver:
        endpoint = await an_endpoint(db, partner, receiver.url())
        await an_event(db, partner)
        async with a_worker(db) as worker:
            await worker.run_once()
            assert (await endpoint_state(db, endpoint.endpoint_id))["failing_since"] is not None
            await worker.run_once()
    assert (await endpoint_state(db, endpoint.endpoint_id))["failing_since"] is None


async def test_the_sandbox_clock_moves_no_delivery_time(db: Database) -> None:
    partner = await a_partner(db)
    await set_ledger_time(db, sandbox=True, at=datetime(2031, 6, 1, tzinfo=UTC))
    async with Receiver(always(500)) as receiver:
        await an_endpoint(db, partner, receiver.url())
        event_id = await an_event(db, partner)
        async with a_worker(db, random=lambda: 0.0) as worker:
            assert await worker.run_once() == 1
        (hit,) = receiver.hits
    assert json.loads(hit.body)["timestamp"].startswith("2031-06-01")  # the event: ledger time
    assert abs(int(hit.headers["webhook-timestamp"]) - time.time()) < 60  # the attempt: real
    delivery = await delivery_of(db, event_id)
    now = datetime.now(UTC)
    assert delivery.last_attempt_at is not None
    assert abs((delivery.last_attempt_at - now).total_seconds()) < 60
    assert timedelta(0) < delivery.next_attempt_at - now < timedelta(seconds=10)


async def test_a_running_worker_delivers_until_stopped(db: Database) -> None:
    partner = await a_partner(db)
    stop = asyncio.Event()
    async with Receiver() as receiver:
        await an_endpoint(db, partner, receiver.url())
        running = asyncio.create_task(a_worker(db).run_forever(stop))
        event_id = await an_event(db, partner)  # found by the worker's next look
        await receiver.wait_for_hits(1)
        stop.set()
        await asyncio.wait_for(running, timeout=5)
    assert receiver.ids() == [event_id]


async def test_a_worker_outlives_a_database_it_cannot_use(db: Database) -> None:
    absent = db.engine.url.set(database="clearhouse_test_absent")
    unusable = Database.for_url(absent.render_as_string(hide_password=False), pool_size=1)
    stop = asyncio.Event()
    try:
        running = asyncio.create_task(a_worker(unusable).run_forever(stop))
        await asyncio.sleep(1.5)  # a failed look, a pause, another
        assert not running.done()
        stop.set()
        await asyncio.wait_for(running, timeout=5)
    finally:
        await unusable.dispose()

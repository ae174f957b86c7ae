"""Partner keys as a process keeps them, and the nonce statement that has the last word."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from clearhouse.domain.records import PartnerKey
from clearhouse.services import access
from clearhouse.services.database import Database
from tests.services.builders import a_partner, unique


def _raw_public_key() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _base64_public_key() -> str:
    return base64.b64encode(_raw_public_key()).decode()


async def _key(database: Database, **validity: datetime) -> PartnerKey:
    partner_id = await a_partner(database)
    key_id = await access.add_key(
        database, partner_id, _base64_public_key(), key_id=unique("key"), **validity
    )
    ring = access.KeyRing(database)
    key = await ring.signing_key(key_id)
    assert key is not None
    return key


def _expiry() -> datetime:
    return datetime.now(UTC) + timedelta(minutes=10)


def _nonce() -> str:
    return secrets.token_urlsafe(18)


async def test_each_signers_key_is_judged_and_a_fresh_nonce_spent_once(database: Database) -> None:
    ring = access.KeyRing(database)
    first, second = await _key(database), await _key(database)
    signers = [(first, _nonce(), _expiry()), (second, _nonce(), _expiry())]
    assert await ring.spend_nonces(signers) == [True, True]
    with pytest.raises(access.NonceReplayed):
        await ring.spend_nonces(signers[1:])


async def test_a_pair_named_twice_in_one_request_is_a_replay_of_itself(database: Database) -> None:
    ring = access.KeyRing(database)
    key, nonce = await _key(database), _nonce()
    with pytest.raises(access.NonceReplayed):
        await ring.spend_nonces([(key, nonce, _expiry()), (key, nonce, _expiry())])


async def test_a_replay_still_spends_the_nonces_of_the_other_signers(database: Database) -> None:
    ring = access.KeyRing(database)
    key, seen, other = await _key(database), _nonce(), _nonce()
    await ring.spend_nonces([(key, seen, _expiry())])
    with pytest.raises(access.NonceReplayed):
        await ring.spend_nonces([(key, seen, _expiry()), (key, other, _expiry())])
    with pytest.raises(access.NonceReplayed):  # the other part cannot be sent on its own
        await ring.spend_nonces([(key, other, _expiry())])


async def test_a_key_the_database_no_longer_holds_valid_is_not_counted_and_spends_nothing(
    database: Database,
) -> None:
    ring = access.KeyRing(database)
    kept, revoked = await _key(database), await _key(database)
    assert await ring.signing_key(revoked.key_id) == revoked  # read while still valid
    await access.revoke_key(database, revoked.key_id)
    revoked_nonce = _nonce()
    signers = [(revoked, revoked_nonce, _expiry()), (kept, _nonce(), _expiry())]
    assert await ring.spend_nonces(signers) == [False, True]
    async with database.driver_connection() as connection:
        spent = await connection.fetchval(
            "SELECT count(*) FROM signature_nonces WHERE key_id = $1", revoked.key_id
        )
    assert spent == 0
    assert await ring.signing_key(revoked.key_id) is None  # forgotten, read again: revoked


@pytest.mark.parametrize("field", ["partner_id", "public_key"])
async def test_a_key_presented_with_other_bytes_or_another_partner_is_not_valid(
    database: Database, field: str
) -> None:
    ring = access.KeyRing(database)
    key = await _key(database)
    other = {"partner_id": await a_partner(database), "public_key": _raw_public_key()}[field]
    forged = dataclasses.replace(key, **{field: other})
    assert await ring.spend_nonces([(forged, _nonce(), _expiry())]) == [False]


async def test_a_key_outside_its_validity_is_not_read_as_a_signing_key(database: Database) -> None:
    now = datetime.now(UTC)
    partner_id = await a_partner(database)
    later = await access.add_key(
        database,
        partner_id,
        _base64_public_key(),
        key_id=unique("key"),
        not_before=now + timedelta(hours=1),
    )
    ring = access.KeyRing(database)
    assert await ring.signing_key(later) is None
    assert await ring.signing_key(unique("never-registered")) is None

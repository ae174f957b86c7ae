"""AES-256-GCM for members' personal data, with envelope keys.

Each member has a data key of their own (32 random bytes); the master key from configuration
wraps it. A field's ciphertext is ``nonce ‖ AES-GCM(data key, plaintext, aad)`` where the
associated data names the member and the field, so a ciphertext moved to another member or
another field fails to decrypt instead of showing the wrong person's data. Erasure deletes the
wrapped data key: what was encrypted under it can no longer be read by anyone.
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12


class DecryptionFailed(ValueError):
    """The ciphertext is not what was encrypted for this member and field under this key."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < NONCE_BYTES + 16:
        raise DecryptionFailed("ciphertext too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise DecryptionFailed("the ciphertext does not belong here or was altered") from exc


def _key_aad(member_id: str) -> bytes:
    return b"clearhouse/member-key/" + member_id.encode()


def _field_aad(member_id: str, field: str) -> bytes:
    return b"clearhouse/personal/" + member_id.encode() + b"/" + field.encode()


def wrap_key(master_key: bytes, member_id: str, data_key: bytes) -> bytes:
    return _seal(master_key, data_key, _key_aad(member_id))


def unwrap_key(master_key: bytes, member_id: str, wrapped: bytes) -> bytes:
    return _open(master_key, wrapped, _key_aad(member_id))


def encrypt_field(data_key: bytes, member_id: str, field: str, value: str) -> bytes:
    return _seal(data_key, value.encode(), _field_aad(member_id, field))


def decrypt_field(data_key: bytes, member_id: str, field: str, sealed: bytes) -> str:
    return _open(data_key, sealed, _field_aad(member_id, field)).decode()

"""Ed25519 keys as Clearhouse stores and exchanges them.

Partners hand in public keys as PEM (SubjectPublicKeyInfo) or as the 32 raw bytes in base64;
Clearhouse stores the raw bytes. The coalition's own signing key lives in a PEM file (PKCS#8),
readable only by its owner; it is read by the function that reads a partner's private key in
the partner client (``clearhouse_client.keys``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from clearhouse.domain.errors import InvalidRequest
from clearhouse_client import keys

RAW_KEY_LENGTH = 32


def parse_public_key(text: bytes | str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as PEM or as base64 of the raw bytes."""
    data = text.encode() if isinstance(text, str) else text
    data = data.strip()
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise InvalidRequest("the PEM file does not hold a public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidRequest("the key is not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("the key is neither PEM nor base64") from exc
    if len(raw) != RAW_KEY_LENGTH:
        raise InvalidRequest(f"an Ed25519 public key has {RAW_KEY_LENGTH} bytes, not {len(raw)}")
    return raw


def key_fingerprint(public_key: bytes) -> str:
    """A short stable name for a public key: the first 8 bytes of its SHA-256, in hex."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def public_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(public_key: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """The Ed25519 key of a PEM file, read as the partner client reads one; a key of another
    kind is an ``InvalidRequest``."""
    try:
        return keys.load_private_key(pem)
    except keys.NotAnEd25519Key as exc:
        raise InvalidRequest(str(exc)) from exc


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    """The key in ``path``; made there (mode 0600) when the file does not exist yet."""
    if path.exists():
        return load_private_key(path.read_bytes())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, private_pem(key))
    except BaseException:
        os.close(descriptor)
        raise
    os.close(descriptor)
    return key


def replace_private_key(path: Path) -> Ed25519PrivateKey:
    """A new key written to ``path`` (mode 0600) in place of the one there, atomically: a
    crash leaves either the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    fresh = path.with_name(f".{path.name}.new")
    descriptor = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, private_pem(key))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(fresh, path)
    return key


@lru_cache(maxsize=1024)
def _public_key(public_key: bytes) -> Ed25519PublicKey:
    """A key's object, made once per process for the keys that sign again and again."""
    return Ed25519PublicKey.from_public_bytes(public_key)


def verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        _public_key(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True, slots=True)
class CoalitionKey:
    """The coalition's signing key: receipts of responses, and statements."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey) -> CoalitionKey:
        return cls(f"coalition-{key_fingerprint(public_bytes(private_key))}", private_key)

    @property
    def public_key(self) -> bytes:
        return public_bytes(self.private_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

"""Ed25519 keys as a partner holds them: the private key in a PEM file (PKCS#8), unencrypted.

The Clearhouse server reads its own signing key with the same function, so a key file that one
accepts the other accepts too.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class NotAnEd25519Key(ValueError):
    """The PEM holds a private key, but not an Ed25519 one."""


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key in ``pem``; ``ValueError`` when it holds none, and
    ``NotAnEd25519Key`` when it holds a key of another kind."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise NotAnEd25519Key("the private key is not an Ed25519 key")
    return key

"""The partner client: what a partner's developers install to call Clearhouse.

Every request is signed with the partner's Ed25519 key (RFC 9421): a fresh nonce, ``created``,
``Content-Digest`` of the body (RFC 9530), and an ``Idempotency-Key`` on every POST that stays
the same across retries. Every response is checked against the coalition's signature, a receipt
that covers the request's own signature. Problems become typed exceptions.

    from clearhouse_client import PartnerClient

    with PartnerClient("http://127.0.0.1:8000", key_id="baeckerei-1", private_key=pem) as client:
        entry = client.issue("m-1001", 120, reference="receipt 4711")
        client.redeem("m-1001", 20, reference="receipt 4712")

``AsyncPartnerClient`` offers the same methods as coroutines.

The distribution ``clearhouse-client`` holds only what signing and HTTP need (httpx, msgspec,
cryptography, http-message-signatures, tenacity), nothing of the server. Its modules:
``client`` (the two clients), ``operations`` (each operation's request, ``Entry``, ``Hold``),
``signing`` (signing requests, checking receipts), ``errors`` (the exceptions), and the
primitives the Clearhouse server verifies and signs with as well: ``http_signatures``
(RFC 9421 with Ed25519) and ``keys`` (PEM private keys).
"""

from clearhouse_client.client import AsyncPartnerClient, PartnerClient
from clearhouse_client.errors import (
    BatchNotApplied,
    ClearhouseProblem,
    Conflict,
    Forbidden,
    HoldNotOpen,
    InvalidRequest,
    NotFound,
    ResponseNotSigned,
    SignatureRejected,
    Unavailable,
    UnknownReceiptKey,
    Unprocessable,
)
from clearhouse_client.operations import (
    BatchItem,
    BatchItemResult,
    BatchResult,
    Entry,
    EntryPage,
    Hold,
    HoldPage,
    ItemProblem,
)

__all__ = [
    "AsyncPartnerClient",
    "BatchItem",
    "BatchItemResult",
    "BatchNotApplied",
    "BatchResult",
    "ClearhouseProblem",
    "Conflict",
    "Entry",
    "EntryPage",
    "Forbidden",
    "Hold",
    "HoldNotOpen",
    "HoldPage",
    "InvalidRequest",
    "ItemProblem",
    "NotFound",
    "PartnerClient",
    "ResponseNotSigned",
    "SignatureRejected",
    "Unavailable",
    "UnknownReceiptKey",
    "Unprocessable",
]

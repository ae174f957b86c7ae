"""Keyset paging: a cursor names the last row a page gave out, by its time and id."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from uuid import UUID

from clearhouse.domain.errors import InvalidRequest
from clearhouse.web.schemas import rfc3339


def encode_cursor(moment: datetime, row_id: UUID) -> str:
    raw = f"{rfc3339(moment)}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, row_id = raw.split("|")
        at = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        if at.tzinfo is None:
            raise ValueError("a cursor's time is UTC")
        return at.astimezone(UTC), UUID(row_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest("the cursor is not one this API gave out", field="cursor") from exc

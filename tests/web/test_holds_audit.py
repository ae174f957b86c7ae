"""A capture's redeem verifies for an auditor without Clearhouse's code: its canonical line
names the hold, and the partner's signature is of that hold's capture."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

from clearhouse.services import access
from clearhouse.services.access import Role
from clearhouse.services.clock import set_ledger_time
from tests.conftest import fresh_database
from tests.web import independent_auditor
from tests.web.harness import signed_api, utc_now
from tests.web.test_holds_api import capture_request, hold_request
from tests.web.test_independent_audit import APRIL_START, MARCH, MARCH_START, SettledCoalition


async def test_a_captured_hold_verifies_independently_and_its_line_names_the_hold(
    tmp_path: Path,
) -> None:
    async with fresh_database() as database, signed_api(database, tmp_path) as api:
        await set_ledger_time(database, sandbox=True, at=MARCH_START + timedelta(hours=1))
        expires = utc_now() + timedelta(hours=1)
        operator = await access.create_token(database, Role.OPERATOR, expires)
        auditor = await access.create_token(database, Role.AUDITOR, expires)
        partner = await api.partner("pump")
        member = await api.member()
        await api.issued(partner, member, 900)
        hold = await api.accepted(hold_request(api, partner, member, 500))
        captured = await api.accepted(capture_request(api, partner, hold["hold_id"], 320))
        await set_ledger_time(database, sandbox=True, at=APRIL_START + timedelta(seconds=1))
        settled = await api.client.post(
            f"/v1/admin/periods/{MARCH}/settle",
            headers={"Authorization": f"Bearer {operator.secret}"},
        )
        assert settled.status_code == 200, settled.text

        coalition = SettledCoalition(
            api,
            {"Authorization": f"Bearer {auditor.secret}"},
            partner.partner_id,
            partner.key.key_id,
            uuid.UUID(captured["entry"]["entry_id"]),
        )
        downloads = await coalition.downloads()
        report = independent_auditor.verify(downloads)
        own = await coalition.clearhouse_verify()

    assert report["problems"] == []
    assert report["checked"]["partner_signatures"] == 2
    assert own["verified"] is True
    lines = [json.loads(line) for line in downloads["entries"][MARCH].splitlines()]
    issue, redeem = lines
    assert "hold_id" not in issue  # only a capture's line carries the key
    assert redeem["hold_id"] == hold["hold_id"]
    assert redeem["points"] == 320
    keys = {k["key_id"]: k for k in json.loads(downloads["partner_keys"])}
    check = independent_auditor.partner_signature_problems
    assert check(redeem, keys) == []
    # Without its hold, the line's signature is of another request than a redeem's.
    unheld = {k: v for k, v in redeem.items() if k != "hold_id"}
    assert (
        "its signature base is not of a request to /v1/transactions/redeem"
        " or /v1/transactions/batch"
    ) in check(unheld, keys)

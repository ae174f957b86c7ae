"""Send a signed issue and a redeem to Clearhouse and read the signed receipts.

Run it as a partner would (see docs/partner-quickstart.md):

    CLEARHOUSE_URL=http://127.0.0.1:8000 KEY_ID=baeckerei-schmidt-... \\
    KEY_FILE=keys/baeckerei.pem MEMBER_ID=m-1001 python docs/examples/partner_quickstart.py
"""

import os
from pathlib import Path

from clearhouse_client import Conflict, PartnerClient

url = os.environ["CLEARHOUSE_URL"]
key_id = os.environ["KEY_ID"]
private_key = Path(os.environ["KEY_FILE"]).read_bytes()
member_id = os.environ["MEMBER_ID"]

with PartnerClient(url, key_id=key_id, private_key=private_key) as client:
    # Every response is checked against the coalition's receipt signature before it is returned.
    issued = client.issue(member_id, 120, reference="receipt 4711")
    print(
        f"issued {issued.points} points, entry {issued.entry_id}, balance {issued.member_balance}"
    )

    redeemed = client.redeem(member_id, 20, reference="receipt 4712")
    print(f"redeemed {redeemed.points} points, balance {redeemed.member_balance}")

    try:
        client.redeem(member_id, 1_000, reference="receipt 4713")
    except Conflict as problem:
        print(f"refused: {problem.code}")

    refund = client.reverse(redeemed, reason="returned goods", points=5)
    print(
        f"reversed {refund.points} points of {refund.reversal_of}, balance {refund.member_balance}"
    )

"""Examples for the OpenAPI document: one per body schema, by component name, and one for each
body the document describes without a component (a JSON object or a download).

They are data only; ``clearhouse.web.api_docs`` puts them into the document, and a test checks
each against the schema it illustrates. The values hang together (one partner, one member, one
entry, one hold), so that a reader can follow an example from request to answer.
"""

from __future__ import annotations

from typing import Any, Final

PARTNER: Final = "acme-fuel"
MEMBER: Final = "mbr_7Q2xK9"
ENTRY: Final = "3f1c9a2e-5b7d-4e0a-9c61-2d8f4b7a1e53"
HOLD: Final = "8d2e4f60-1a3b-4c5d-8e7f-90a1b2c3d4e5"
KEY: Final = "acme-fuel-key-1"
ENDPOINT: Final = "whe_5Jk2Lm8N"
EVENT: Final = "evt_01JDX6Q4M8R2T5V7W9Y3Z1A4B6"
ROOT: Final = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca7"
HEAD: Final = "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce"
ZEROS: Final = "0" * 64
PUBLIC_KEY: Final = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="

_consent = {"partner_id": PARTNER, "purpose": "marketing", "granted": True}
_consent_out = {**_consent, "recorded_at": "2026-11-03T10:15:02Z"}
_entry = {
    "entry_id": ENTRY,
    "kind": "issue",
    "partner_id": PARTNER,
    "member_id": MEMBER,
    "points": 250,
    "period": "2026-11",
    "occurred_at": "2026-11-03T10:15:00Z",
    "recorded_at": "2026-11-03T10:15:01Z",
    "reference": "receipt-2026-11-03-0042",
    "reversal_of": None,
    "contract_version": 1,
}
_hold = {
    "hold_id": HOLD,
    "status": "open",
    "partner_id": PARTNER,
    "member_id": MEMBER,
    "points": 120,
    "reference": "basket-7731",
    "occurred_at": "2026-11-03T11:00:00Z",
    "created_at": "2026-11-03T11:00:01Z",
    "expires_at": "2026-11-04T11:00:01Z",
    "closed_at": None,
    "captured_points": None,
    "capture_entry_id": None,
    "contract_version": 1,
}
_public_key = {
    "key_id": "coalition-2026-01",
    "algorithm": "ed25519",
    "public_key": PUBLIC_KEY,
    "use": ["response", "statement"],
    "status": "current",
    "not_before": "2026-01-01T00:00:00Z",
    "not_after": None,
}
_partner_key = {
    "key_id": KEY,
    "partner_id": PARTNER,
    "public_key": PUBLIC_KEY,
    "not_before": "2026-01-01T00:00:00Z",
    "not_after": None,
    "revoked_at": None,
}
_endpoint = {
    "endpoint_id": ENDPOINT,
    "url": "https://hooks.acme-fuel.example/clearhouse",
    "event_types": ["entry.recorded", "hold.expired"],
    "status": "active",
    "created_at": "2026-11-01T09:00:00Z",
    "hmac_secret": False,
}
_delivery = {
    "delivery_id": 4711,
    "event_id": EVENT,
    "event_type": "entry.recorded",
    "endpoint_id": ENDPOINT,
    "partner_id": PARTNER,
    "url": _endpoint["url"],
    "status": "failed",
    "attempts": 8,
    "next_attempt_at": "2026-11-08T09:00:00Z",
    "last_attempt_at": "2026-11-08T08:00:00Z",
    "last_status": 503,
    "last_error": "HTTP 503",
    "delivered_at": None,
}
_closed_period = {
    "period": "2026-10",
    "status": "settled",
    "entry_count": 18234,
    "tree_head": HEAD,
    "previous_root": ZEROS,
    "root": ROOT,
    "starts_at": "2026-09-30T22:00:00Z",
    "ends_at": "2026-10-31T23:00:00Z",
    "closed_at": "2026-11-01T02:00:00Z",
    "settled_at": "2026-11-02T09:30:00Z",
}
_period = {
    "period": "2026-10",
    "status": "closed",
    "entries": 18234,
    "tree_head": HEAD,
    "previous_root": ZEROS,
    "root": ROOT,
    "closed_at": "2026-11-01T02:00:00Z",
    "settled_at": None,
}
_statement = {
    "period": "2026-10",
    "party": PARTNER,
    "currency": "EUR",
    "lines": [{"kind": "issue", "entries": 1200, "points": 300000, "amount": "3000.00"}],
    "net": "-1250.00",
}

COMPONENT_EXAMPLES: Final[dict[str, Any]] = {
    "PointsBody": {
        "member_id": MEMBER,
        "points": 250,
        "occurred_at": "2026-11-03T10:15:00Z",
        "reference": "receipt-2026-11-03-0042",
        "metadata": {"store": "A7 Vienna-Nord"},
    },
    "ReversalBody": {"reason": "goods returned", "points": 100},
    "BatchBody": {
        "atomic": False,
        "items": [
            {
                "kind": "issue",
                "idempotency_key": "till-7-2026-11-03-0042",
                "member_id": MEMBER,
                "points": 250,
                "occurred_at": "2026-11-03T10:15:00Z",
                "reference": "receipt-2026-11-03-0042",
            },
            {
                "kind": "issue",
                "idempotency_key": "till-7-2026-11-03-0043",
                "member_id": "mbr_unknown",
                "points": 40,
                "occurred_at": "2026-11-03T10:16:00Z",
                "reference": "receipt-2026-11-03-0043",
            },
        ],
    },
    "BatchResult": {
        "atomic": False,
        "posted": 1,
        "refused": 1,
        "results": [
            {
                "index": 0,
                "idempotency_key": "till-7-2026-11-03-0042",
                "status": 201,
                "entry": {**_entry, "member_balance": 1370},
                "replayed": False,
            },
            {
                "index": 1,
                "idempotency_key": "till-7-2026-11-03-0043",
                "status": 422,
                "problem": {
                    "type": "/problems/unknown_member",
                    "title": "Unknown member",
                    "status": 422,
                    "detail": "unknown member",
                    "code": "unknown_member",
                },
            },
        ],
    },
    "Entry": {**_entry, "member_balance": 1370},
    "EntryPage": {"entries": [_entry], "next_cursor": None},
    "HoldBody": {
        "member_id": MEMBER,
        "points": 120,
        "reference": "basket-7731",
        "occurred_at": "2026-11-03T11:00:00Z",
        "hold_seconds": 86400,
    },
    "CaptureBody": {"points": 100},
    "VoidBody": {"reason": "basket abandoned"},
    "Hold": {**_hold, "member_balance": 1370, "member_held": 120, "member_available": 1250},
    "HoldPage": {"holds": [_hold], "next_cursor": None},
    "PublicKey": _public_key,
    "PublicKeys": {"keys": [_public_key]},
    "PartnerIn": {"partner_id": PARTNER, "legal_name": "ACME Fuel GmbH"},
    "Partner": {
        "partner_id": PARTNER,
        "legal_name": "ACME Fuel GmbH",
        "created_at": "2026-01-01T08:00:00Z",
        "active_keys": 1,
    },
    "KeyIn": {"public_key": PUBLIC_KEY, "key_id": KEY, "not_before": "2026-01-01T00:00:00Z"},
    "PartnerKey": _partner_key,
    "ClockIn": {"at": "2026-12-01T00:00:00Z"},
    "Clock": {"ledger_time": "2026-12-01T00:00:00Z"},
    "ClosedPeriod": _closed_period,
    "Health": {"status": "ok"},
    "Readiness": {"status": "ready", "ledger_time": "2026-11-03T10:15:00Z"},
    "ConsentIn": {"purpose": "marketing", "granted": True},
    "ConsentsIn": {"consents": [{"purpose": "marketing", "granted": True}]},
    "Consent": _consent_out,
    "MemberConsents": {"member_id": MEMBER, "consents": [_consent_out]},
    "PersonalIn": {"given_name": "Jana", "family_name": "Nowak", "email": "jana@example.org"},
    "EnrolmentIn": {
        "personal": {"given_name": "Jana", "family_name": "Nowak", "email": "jana@example.org"},
        "consents": [{"purpose": "marketing", "granted": True}],
    },
    "Enrolled": {"member_id": MEMBER},
    "Expiring": {"expires_at": "2027-01-01T00:00:00Z", "points": 300},
    "MemberExpiring": {
        "member_id": MEMBER,
        "within_days": 30,
        "expiring": [{"expires_at": "2027-01-01T00:00:00Z", "points": 300}],
    },
    "EventOut": {
        "event_id": EVENT,
        "type": "entry.recorded",
        "timestamp": "2026-11-03T10:15:01Z",
        "data": {"entry_id": ENTRY, "member_id": MEMBER, "points": 250},
    },
    "EventPage": {
        "events": [
            {
                "event_id": EVENT,
                "type": "entry.recorded",
                "timestamp": "2026-11-03T10:15:01Z",
                "data": {"entry_id": ENTRY, "member_id": MEMBER, "points": 250},
            }
        ],
        "next_cursor": "MjAyNi0xMS0wM1QxMDoxNTowMVp8NDcxMQ",
    },
    "EndpointIn": {"url": _endpoint["url"], "event_types": ["entry.recorded", "hold.expired"]},
    "EndpointOut": _endpoint,
    "EndpointList": {"endpoints": [_endpoint]},
    "TestEventIn": {},
    "TestEventOut": {"event_id": EVENT},
    "DeliveryOut": _delivery,
    "DeliveryList": {"deliveries": [_delivery]},
    "ContractFileIn": {"name": "acme-fuel.toml", "toml": 'partner_id = "acme-fuel"\n'},
    "ContractsIn": {"files": [{"name": "acme-fuel.toml", "toml": 'partner_id = "acme-fuel"\n'}]},
    "ContractsLoaded": {"stored": ["acme-fuel v2"], "unchanged": [], "partners_added": []},
    "ContractVersionOut": {
        "partner_id": PARTNER,
        "version": 2,
        "effective_from": "2026-12-01T00:00:00Z",
        "sha256": ROOT,
        "issue_rate": "0.010",
        "redemption_rate": "0.008",
        "fee_per_entry": "0.02",
        "purposes": ["accrual", "redemption", "settlement"],
    },
    "OperatorConsentIn": {"partner_id": "*", "purpose": "marketing", "granted": False},
    "OperatorConsentsIn": {
        "consents": [{"partner_id": "*", "purpose": "marketing", "granted": False}]
    },
    "ConsentOut": _consent_out,
    "MemberConsentsOut": {"member_id": MEMBER, "consents": [_consent_out]},
}
"""By component name; the document's own schemas (``Problem``, enums) need none."""

OPERATION_EXAMPLES: Final[dict[tuple[str, str], Any]] = {
    ("GET", "/v1/members/{member_id}"): {
        "member_id": MEMBER,
        "purpose": "customer_service",
        "contract_version": 1,
        "given_name": "Jana",
        "family_name": "Nowak",
        "email": "jana@example.org",
    },
    ("GET", "/v1/statements/{period}"): _statement,
    ("GET", "/v1/audit/statements/{period}"): {**_statement, "party": "coalition"},
    ("GET", "/v1/audit/statements/{period}/{partner_id}"): _statement,
    ("GET", "/v1/audit/periods/{period}/entries"): '{"entry_id":"' + ENTRY + '","points":250}\n',
    ("GET", "/v1/audit/disclosures"): [
        {
            "disclosed_at": "2026-11-03T12:00:00Z",
            "partner_id": PARTNER,
            "member_id": MEMBER,
            "purpose": "customer_service",
            "fields": "given_name family_name email",
            "contract_version": 1,
            "legal_basis": "contract",
            "request_id": "urn:uuid:0b6f3c5e-8a51-4c1e-9d8e-2f4a7c9e1d20",
        }
    ],
    ("GET", "/v1/audit/verify"): {
        "verified": True,
        "periods": 10,
        "statements": 40,
        "problems": [],
    },
    ("GET", "/v1/admin/periods"): [_period],
    ("POST", "/v1/admin/periods/{period}/close"): _period,
    ("POST", "/v1/admin/periods/{period}/settle"): {
        **_period,
        "status": "settled",
        "settled_at": "2026-11-02T09:30:00Z",
        "settled_now": True,
        "statements": [_statement],
    },
    ("GET", "/v1/admin/members/{member_id}/access-report"): {
        "member_id": MEMBER,
        "personal": {"given_name": "Jana", "family_name": "Nowak"},
        "disclosures": [],
    },
    ("DELETE", "/v1/admin/members/{member_id}/personal-data"): {
        "member_id": MEMBER,
        "erased": True,
        "already_erased": False,
    },
    ("GET", "/metrics"): "# TYPE clearhouse_requests_total counter\nclearhouse_requests_total 42\n",
}
"""Bodies the document gives no component of, by ``(METHOD, path)``."""

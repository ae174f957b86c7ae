"""Settings: one object, read once from the environment, validated at start-up.

Every variable is named ``CLEARHOUSE_*`` except ``DATABASE_URL``, which follows the common
convention. Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clearhouse.domain.errors import InvalidRequest
from clearhouse.domain.expiry import REMINDER_DAYS_DEFAULT, ExpiryMode, ExpiryPolicy


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message names the variable."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from exc
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must lie between {minimum} and {maximum}, not {value}")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(env: Mapping[str, str]) -> str:
    raw = env.get("CLEARHOUSE_LOG_LEVEL") or "INFO"
    if raw.upper() not in LOG_LEVELS:
        raise SettingsError(
            f"CLEARHOUSE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {raw!r}"
        )
    return raw.upper()


DATABASE_NAME_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,62}", re.ASCII)


def _database_name(env: Mapping[str, str]) -> str | None:
    raw = env.get("CLEARHOUSE_DATABASE_NAME") or None
    if raw is not None and not DATABASE_NAME_PATTERN.fullmatch(raw):
        raise SettingsError(
            f"CLEARHOUSE_DATABASE_NAME must be 1 to 63 lower-case letters, digits or _, not {raw!r}"
        )
    return raw


def _expiry(env: Mapping[str, str]) -> ExpiryPolicy:
    mode = env.get("CLEARHOUSE_EXPIRY_MODE") or "none"
    if mode not in {m.value for m in ExpiryMode}:
        raise SettingsError(f"CLEARHOUSE_EXPIRY_MODE must be none or fixed, not {mode!r}")
    raw_days = env.get("CLEARHOUSE_EXPIRY_REMINDER_DAYS")
    try:
        days = (
            REMINDER_DAYS_DEFAULT
            if raw_days is None
            else tuple(int(d) for d in raw_days.split(",") if d.strip())
        )
    except ValueError as exc:
        raise SettingsError(
            "CLEARHOUSE_EXPIRY_REMINDER_DAYS must be whole days separated by commas, "
            f"not {raw_days!r}"
        ) from exc
    try:
        return ExpiryPolicy(
            mode=ExpiryMode(mode),
            months=_int(env, "CLEARHOUSE_EXPIRY_MONTHS", 36, 1, 1200),
            align=env.get("CLEARHOUSE_EXPIRY_ALIGN") or "exact",
            reminder_days=days,
            reinstatement_days=_int(env, "CLEARHOUSE_EXPIRY_REINSTATEMENT_DAYS", 30, 1, 3660),
        )
    except InvalidRequest as exc:
        raise SettingsError(f"CLEARHOUSE_EXPIRY_*: {exc}") from exc


SANDBOX_MASTER_KEY = hashlib.sha256(b"clearhouse sandbox master key: not a secret").digest()
"""The master key of sandbox coalitions: public, so never for real members' data."""


def _master_key(env: Mapping[str, str], sandbox: bool) -> bytes | None:
    raw = env.get("CLEARHOUSE_MASTER_KEY")
    if not raw:
        return SANDBOX_MASTER_KEY if sandbox else None
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise SettingsError("CLEARHOUSE_MASTER_KEY must be base64") from exc
    if len(key) != 32:
        raise SettingsError("CLEARHOUSE_MASTER_KEY must hold 32 bytes (AES-256)")
    return key


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything Clearhouse can be configured with, with safe defaults."""

    database_url: str | None
    """``postgresql+asyncpg://…`` of an existing server; ``None`` starts the embedded one."""
    data_dir: Path
    """Where the embedded PostgreSQL keeps its files (ignored by git)."""
    sandbox: bool
    """Sandbox mode: the operator may set the ledger clock. Never in production."""
    host: str
    port: int
    public_base_url: str
    """The URL partners call; ``@target-uri`` of signed requests is rebuilt from it."""
    db_pool_size: int
    log_level: str
    timezone: ZoneInfo
    """The coalition's time zone: periods are its calendar months."""
    signature_window_s: int
    """How far a signature's ``created`` may lie from the server clock, either way."""
    body_max_bytes: int
    """Request bodies above this are refused (413) before they are read further."""
    batch_body_max_bytes: int
    """The same limit for a batch (``POST /v1/transactions/batch``), whose body holds up to a
    thousand items."""
    header_bytes_max: int
    """Request header fields above this, names and values summed, are refused (431); at the
    socket, a request head this long plus room for its request line is cut off unread."""
    header_timeout_s: int
    """A connection that has not sent a complete request head this long after it opened (or
    after the first byte of its next request) is closed."""
    body_timeout_s: int
    """A request whose body has not fully arrived this long after its head completed is ended:
    the connection is closed."""
    concurrent_requests_max: int
    """Requests one worker process answers at once; more are refused (503) without any work."""
    hold_sweep_interval_s: int
    """How often ``serve`` ends holds whose time ran out, in seconds; 0: no sweeper (captures and
    voids still refuse an expired hold, and postings still release a member's lapsed holds)."""
    expiry: ExpiryPolicy
    """When issued points expire (``CLEARHOUSE_EXPIRY_MODE``, ``_MONTHS``, ``_ALIGN``), when
    partners are reminded (``_REMINDER_DAYS``) and how long points a reversal gives back after
    their lot expired stay (``_REINSTATEMENT_DAYS``). It applies to points issued from then on."""
    expiry_interval_s: int
    """How often ``serve`` runs expiry and its reminders, in seconds, on the ledger clock; 0: never
    (``clearhouse expiry run`` still does)."""
    signing_key_file: Path
    """The coalition's Ed25519 key (PEM) for response and statement signatures; made if absent."""
    webhook_key_file: Path
    """The coalition's Ed25519 key (PEM) for webhook signatures (``v1a``); made if absent."""
    webhook_workers: int
    """Delivery workers each ``serve`` process runs; 0: this process delivers no webhooks."""
    webhook_lease_s: int
    """How long a worker's claim on a delivery lasts; a claim whose worker died is taken again
    after it. Longer than an attempt can take (15 s), so a live worker's claim never lapses."""
    console_session_s: int
    """How long a console sign-in lasts, in seconds (never longer than its token)."""
    coalition_name: str
    database_name: str | None
    """A database on the server other than the URL's own (``CLEARHOUSE_DATABASE_NAME``), e.g.
    ``clearhouse_demo``, the demo's, on the embedded server."""
    """The coalition's name as statements show it."""
    master_key: bytes | None = field(repr=False)
    """AES-256 key that wraps each member's data key (``CLEARHOUSE_MASTER_KEY``, base64);
    sandbox coalitions have a published default, others must set it (``require_master_key``)."""

    def require_master_key(self) -> bytes:
        """The master key; refusing to go on without one outside sandbox mode."""
        if self.master_key is None:
            raise SettingsError(
                "CLEARHOUSE_MASTER_KEY is required outside sandbox mode (32 random bytes in "
                "base64: python -c 'import os,base64;print(base64.b64encode(os.urandom(32))"
                ".decode())')"
            )
        return self.master_key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL") or None
        if database_url is not None and not database_url.startswith("postgresql"):
            raise SettingsError("DATABASE_URL must be a postgresql:// or postgresql+asyncpg:// URL")
        host = env.get("CLEARHOUSE_HOST", "127.0.0.1")
        port = _int(env, "CLEARHOUSE_PORT", 8000, 1, 65535)
        sandbox = _flag(env, "CLEARHOUSE_SANDBOX", False)
        master_key = _master_key(env, sandbox)
        zone_name = env.get("CLEARHOUSE_TIMEZONE", "Europe/Berlin")
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(
                f"CLEARHOUSE_TIMEZONE {zone_name!r} is not a known time zone"
            ) from exc
        return cls(
            database_url=database_url,
            data_dir=Path(env.get("CLEARHOUSE_DATA_DIR", ".clearhouse")).resolve(),
            sandbox=sandbox,
            host=host,
            port=port,
            public_base_url=env.get("CLEARHOUSE_PUBLIC_BASE_URL", f"http://{host}:{port}").rstrip(
                "/"
            ),
            db_pool_size=_int(env, "CLEARHOUSE_DB_POOL_SIZE", 10, 1, 500),
            log_level=_log_level(env),
            timezone=zone,
            signature_window_s=_int(env, "CLEARHOUSE_SIGNATURE_WINDOW_S", 300, 5, 3600),
            body_max_bytes=_int(env, "CLEARHOUSE_BODY_MAX_BYTES", 65536, 1024, 16 * 1024 * 1024),
            batch_body_max_bytes=_int(
                env, "CLEARHOUSE_BATCH_BODY_MAX_BYTES", 1024 * 1024, 1024, 16 * 1024 * 1024
            ),
            header_bytes_max=_int(env, "CLEARHOUSE_HEADER_BYTES_MAX", 32768, 4096, 1024 * 1024),
            header_timeout_s=_int(env, "CLEARHOUSE_HEADER_TIMEOUT_S", 10, 1, 300),
            body_timeout_s=_int(env, "CLEARHOUSE_BODY_TIMEOUT_S", 10, 1, 300),
            concurrent_requests_max=_int(env, "CLEARHOUSE_CONCURRENT_REQUESTS_MAX", 64, 1, 10000),
            hold_sweep_interval_s=_int(env, "CLEARHOUSE_HOLD_SWEEP_INTERVAL_S", 30, 0, 3600),
            expiry=_expiry(env),
            expiry_interval_s=_int(env, "CLEARHOUSE_EXPIRY_INTERVAL_S", 300, 0, 86400),
            console_session_s=_int(env, "CLEARHOUSE_CONSOLE_SESSION_S", 28800, 60, 86400),
            signing_key_file=Path(
                env.get("CLEARHOUSE_SIGNING_KEY_FILE")
                or Path(env.get("CLEARHOUSE_DATA_DIR", ".clearhouse")) / "coalition-signing-key.pem"
            ).resolve(),
            webhook_key_file=Path(
                env.get("CLEARHOUSE_WEBHOOK_KEY_FILE")
                or Path(env.get("CLEARHOUSE_DATA_DIR", ".clearhouse")) / "coalition-webhook-key.pem"
            ).resolve(),
            webhook_workers=_int(env, "CLEARHOUSE_WEBHOOK_WORKERS", 1, 0, 16),
            webhook_lease_s=_int(env, "CLEARHOUSE_WEBHOOK_LEASE_S", 60, 30, 3600),
            coalition_name=env.get("CLEARHOUSE_COALITION_NAME", "Clearhouse coalition"),
            database_name=_database_name(env),
            master_key=master_key,
        )

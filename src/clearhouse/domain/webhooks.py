"""Webhook delivery rules: when to try again, when to give up, and which URLs may be called.

A delivery is one event for one partner endpoint. It is attempted at once, and after each failed
attempt again on the schedule of the Standard Webhooks specification (5 s, 5 min, 30 min, 2 h,
5 h, 10 h, 14 h, 20 h, 24 h), each wait spread by up to ±10 % so that the retries of one outage do
not arrive together; after the tenth failed attempt the delivery has failed. Only a ``2xx``
answer delivers (a redirect is not followed, so it fails like any other answer). ``429`` and
``503`` may say when to come back (``Retry-After``, seconds or an HTTP date), which is honoured up
to a day. ``410 Gone`` disables the endpoint at once, and so does failing for five days without
one success in between; a disabled endpoint's waiting deliveries are cancelled.

Clearhouse calls only URLs that cannot reach inside its own network: https (plain http in
sandbox mode only), no user name or password, no fragment, and every address the host resolves
to public: no loopback, private, link-local (the cloud metadata address 169.254.169.254 among
them), multicast, reserved, unspecified or shared (carrier-grade NAT) address, nor an IPv6
address that stands for one of those. The addresses are checked when an endpoint is registered
and again at every attempt, which connects to the very address it checked (DNS rebinding).

Everything here is pure: the random numbers, the time and the resolved addresses are given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit

RETRY_SCHEDULE_S: Final = (0, 5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400)
"""The wait before each attempt, the first immediate: attempt ``n`` (from 1) waits
``RETRY_SCHEDULE_S[n - 1]`` after the attempt before it failed."""
ATTEMPTS_MAX: Final = len(RETRY_SCHEDULE_S)
JITTER_FRACTION: Final = 0.1
"""Each wait is the schedule's, times a factor drawn evenly from 0.9 to 1.1."""
RETRY_AFTER_MAX_S: Final = 86_400
"""A receiver's ``Retry-After`` is honoured up to a day, the schedule's longest wait."""
FAILING_DISABLE_AFTER: Final = timedelta(days=5)
"""An endpoint that has not taken one delivery for this long is disabled."""
ATTEMPT_TIMEOUT_S: Final = 15
"""One attempt, resolving the host included, ends after this long."""
URL_CHARS_MAX: Final = 2_048
REASON_CHARS_MAX: Final = 200
"""``last_error`` is short: a reason, never a body, a header or a URL."""

Random = Callable[[], float]
"""A source of numbers in [0, 1), like ``random.random``."""


def retry_delay_s(attempts_made: int, random: Random) -> float | None:
    """How long to wait after ``attempts_made`` failed attempts; None when none is left."""
    if attempts_made < 0:
        raise ValueError("attempts_made cannot be negative")
    if attempts_made >= ATTEMPTS_MAX:
        return None
    scheduled = RETRY_SCHEDULE_S[attempts_made]
    return scheduled * (1 + JITTER_FRACTION * (2 * random() - 1))


def retry_after_s(header: str | None, now: datetime) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds, or an HTTP date), at most a day;
    None when there is no header or it says nothing readable."""
    if header is None:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), RETRY_AFTER_MAX_S))
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": the HTTP date is UTC by definition
        moment = moment.replace(tzinfo=UTC)
    return min(max((moment - now).total_seconds(), 0.0), float(RETRY_AFTER_MAX_S))


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "pending"
    """Another attempt is due later: the delivery stays pending."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to: an answer's status (and its ``Retry-After``), or, when there
    was no answer, why not (the address was refused, the connection failed, time ran out)."""

    status: int | None = None
    retry_after: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to record after an attempt."""

    verdict: Verdict
    retry_in_s: float | None
    """The wait before the next attempt (``RETRY`` only)."""
    reason: str | None
    """Why the attempt failed, short (``last_error``); None when it delivered."""
    disable_endpoint: str | None
    """Why the endpoint is disabled now; None when it stays enabled."""


def decide(
    attempt: Attempt,
    *,
    attempts_made: int,
    failing_since: datetime | None,
    now: datetime,
    random: Random,
) -> Decision:
    """The outcome of attempt number ``attempts_made`` of a delivery, its endpoint failing
    since ``failing_since`` (None: its last attempt succeeded), at ``now``."""
    status = attempt.status
    if status is not None and 200 <= status <= 299:
        return Decision(Verdict.DELIVERED, None, None, None)
    reason = _reason(attempt)
    if status == 410:
        return Decision(Verdict.FAILED, None, reason, "the endpoint answered 410 Gone")
    if failing_since is not None and now - failing_since >= FAILING_DISABLE_AFTER:
        days = FAILING_DISABLE_AFTER.days
        return Decision(Verdict.FAILED, None, reason, f"no delivery succeeded for {days} days")
    wait = retry_delay_s(attempts_made, random)
    if wait is None:
        return Decision(Verdict.FAILED, None, reason, None)
    if status in (429, 503):
        asked = retry_after_s(attempt.retry_after, now)
        if asked is not None:
            wait = asked
    return Decision(Verdict.RETRY, wait, reason, None)


def _reason(attempt: Attempt) -> str:
    if attempt.status is None:
        text = attempt.error or "no answer"
    elif 300 <= attempt.status <= 399:
        text = f"HTTP {attempt.status}: redirects are not followed"
    else:
        text = f"HTTP {attempt.status}"
    return text[:REASON_CHARS_MAX]


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery a worker has claimed: the attempt it is about to make and what it needs."""

    delivery_id: int
    attempt: int
    """This attempt's number, from 1; its result is recorded only while the delivery is at it."""
    event_id: str
    """The ``webhook-id`` of every attempt and replay."""
    event_type: str
    body: bytes
    """The exact payload bytes, signed and sent as they are."""
    endpoint_id: str
    partner_id: str
    url: str
    sealed_secret: bytes | None
    """The endpoint's HMAC secret under the master key; None: Ed25519 (``v1a``) only."""
    failing_since: datetime | None


SHARED_ADDRESS_SPACE: Final = ipaddress.ip_network("100.64.0.0/10")
"""Carrier-grade NAT (RFC 6598): not private by Python's lists, and not public either."""
NAT64_PREFIX: Final = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE: Final = ipaddress.ip_network("::/96")
METADATA_ADDRESS: Final = ipaddress.ip_address("169.254.169.254")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def address_problem(text: str) -> str | None:
    """Why Clearhouse must not connect to this address; None for a public one."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return f"{text!r} is not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = address_problem(str(embedded))
            return None if inner is None else f"{address} stands for {inner}"
        if address in IPV4_COMPATIBLE and not (address.is_unspecified or address.is_loopback):
            return f"{address} is a reserved address"
    kind = _address_kind(address)
    return None if kind is None else f"{address} is {kind}"


def _address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address == METADATA_ADDRESS:
        return "a link-local address (the cloud metadata address)"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """Where a webhook URL points: the host to resolve, the port to connect to."""

    scheme: str
    host: str
    port: int
    host_is_address: bool


def target_of(url: str) -> Target | None:
    """The host and port of ``url``; None when it has none (``url_problems`` says why)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host or parts.scheme not in ("https", "http"):
        return None
    default = 443 if parts.scheme == "https" else 80
    try:
        ipaddress.ip_address(host)
        is_address = True
    except ValueError:
        is_address = False
    return Target(parts.scheme, host, port or default, is_address)


def url_problems(url: str, addresses: Sequence[str], *, sandbox: bool) -> list[str]:
    """Every reason Clearhouse must not call ``url`` whose host resolved to ``addresses``; an
    empty list when it may. In sandbox mode plain http and any address are allowed."""
    problems = _url_form_problems(url, sandbox=sandbox)
    if problems and target_of(url) is None:
        return problems  # no host to speak of
    if not addresses:
        return [*problems, "the host resolves to no address"]
    if sandbox:
        return problems
    return problems + [p for p in map(address_problem, addresses) if p is not None]


def _url_form_problems(url: str, *, sandbox: bool) -> list[str]:
    if len(url) > URL_CHARS_MAX:
        return [f"the URL is longer than {URL_CHARS_MAX} characters"]
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return ["the URL holds spaces or control characters"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError as exc:
        return [f"the URL does not parse: {exc}"]
    problems = []
    allowed = ("https", "http") if sandbox else ("https",)
    if parts.scheme not in allowed:
        problems.append(
            "the URL must use https" + (" (or http, in sandbox mode)" if sandbox else "")
        )
    if "@" in parts.netloc:
        problems.append("the URL must not hold a user name or password")
    if "#" in url:
        problems.append("the URL must not have a fragment")
    host = parts.hostname
    if not host:
        problems.append("the URL has no host")
    elif not host.isascii():
        problems.append("the host must be written in ASCII (its punycode form)")
    return problems

"""The delivery rules with nothing running: the schedule, each attempt's outcome, the URLs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearhouse.domain.webhooks import (
    ATTEMPTS_MAX,
    JITTER_FRACTION,
    RETRY_AFTER_MAX_S,
    RETRY_SCHEDULE_S,
    Attempt,
    Verdict,
    address_problem,
    decide,
    retry_after_s,
    retry_delay_s,
    target_of,
    url_problems,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
unit = st.floats(min_value=0, max_value=1, exclude_max=True)


def middle() -> float:
    return 0.5


def test_the_schedule_is_the_specifications() -> None:
    minutes, hours = 60, 3_600
    assert (
        0,
        5,
        5 * minutes,
        30 * minutes,
        2 * hours,
        5 * hours,
        10 * hours,
        14 * hours,
        20 * hours,
        24 * hours,
    ) == RETRY_SCHEDULE_S
    assert ATTEMPTS_MAX == 10
    assert list(RETRY_SCHEDULE_S) == sorted(set(RETRY_SCHEDULE_S))


@given(attempts_made=st.integers(min_value=0, max_value=ATTEMPTS_MAX - 1), r=unit)
def test_each_wait_lies_within_the_jitter_of_the_schedule(attempts_made: int, r: float) -> None:
    wait = retry_delay_s(attempts_made, lambda: r)
    scheduled = RETRY_SCHEDULE_S[attempts_made]
    assert wait is not None
    assert scheduled * (1 - JITTER_FRACTION) <= wait <= scheduled * (1 + JITTER_FRACTION)


@given(draws=st.lists(unit, min_size=ATTEMPTS_MAX, max_size=ATTEMPTS_MAX))
def test_the_attempts_of_one_delivery_follow_one_another(draws: list[float]) -> None:
    source = iter(draws)
    waits = [retry_delay_s(n, lambda: next(source)) for n in range(ATTEMPTS_MAX)]
    assert all(w is not None for w in waits)
    moments = list(itertools.accumulate(w for w in waits if w is not None))
    assert moments[0] == 0  # the first attempt is immediate
    assert all(later > earlier for earlier, later in itertools.pairwise(moments))
    total = sum(RETRY_SCHEDULE_S)
    assert total * (1 - JITTER_FRACTION) <= moments[-1] <= total * (1 + JITTER_FRACTION)


@given(attempts_made=st.integers(min_value=ATTEMPTS_MAX, max_value=10_000))
def test_no_wait_is_left_after_the_last_attempt(attempts_made: int) -> None:
    assert retry_delay_s(attempts_made, middle) is None


def test_the_jitter_spreads_the_retries_of_one_outage() -> None:
    waits = {retry_delay_s(1, lambda r=r: r) for r in (0.0, 0.25, 0.5, 0.75, 0.999)}
    assert len(waits) == 5
    assert min(waits) == pytest.approx(4.5)
    assert max(waits) == pytest.approx(5.5, abs=0.01)


def _decide(attempt: Attempt, attempts_made: int = 1, failing_since: datetime | None = None):  # type: ignore[no-untyped-def]
    return decide(
        attempt,
        attempts_made=attempts_made,
        failing_since=failing_since,
        now=NOW,
        random=middle,
    )


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_a_2xx_answer_delivers(status: int) -> None:
    decision = _decide(Attempt(status=status), failing_since=NOW - timedelta(days=9))
    assert decision.verdict is Verdict.DELIVERED
    assert decision.reason is None
    assert decision.disable_endpoint is None


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_attempt(status: int) -> None:
    decision = _decide(Attempt(status=status))
    assert decision.verdict is Verdict.RETRY
    assert decision.retry_in_s == 5
    assert decision.reason == f"HTTP {status}: redirects are not followed"


@pytest.mark.parametrize("status", [100, 400, 401, 404, 409, 500, 502, 504])
def test_other_answers_are_retried_on_the_schedule(status: int) -> None:
    for attempts_made in range(1, ATTEMPTS_MAX):
        decision = _decide(Attempt(status=status), attempts_made)
        assert decision.verdict is Verdict.RETRY
        assert decision.retry_in_s == RETRY_SCHEDULE_S[attempts_made]
        assert decision.reason == f"HTTP {status}"


def test_after_the_tenth_failed_attempt_the_delivery_has_failed() -> None:
    decision = _decide(Attempt(status=500), ATTEMPTS_MAX)
    assert decision.verdict is Verdict.FAILED
    assert decision.disable_endpoint is None
    late = _decide(Attempt(status=429, retry_after="1"), ATTEMPTS_MAX)
    assert late.verdict is Verdict.FAILED


def test_no_answer_is_a_failed_attempt_with_its_reason() -> None:
    decision = _decide(Attempt(error="refused: 10.0.0.1 is a private address"))
    assert decision.verdict is Verdict.RETRY
    assert decision.reason == "refused: 10.0.0.1 is a private address"
    long = _decide(Attempt(error="x" * 1000))
    assert long.reason is not None
    assert len(long.reason) == 200


def test_410_disables_the_endpoint_at_once() -> None:
    decision = _decide(Attempt(status=410))
    assert decision.verdict is Verdict.FAILED
    assert decision.disable_endpoint == "the endpoint answered 410 Gone"


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("header", "wait_s"),
    [
        ("120", 120),
        ("0", 0),
        (" 7 ", 7),
        ("999999", RETRY_AFTER_MAX_S),
        (format_datetime(NOW + timedelta(minutes=10), usegmt=True), 600),
        (format_datetime(NOW - timedelta(minutes=10), usegmt=True), 0),
        (format_datetime(NOW + timedelta(days=3), usegmt=True), RETRY_AFTER_MAX_S),
    ],
)
def test_429_and_503_honour_retry_after(status: int, header: str, wait_s: float) -> None:
    decision = _decide(Attempt(status=status, retry_after=header))
    assert decision.verdict is Verdict.RETRY
    assert decision.retry_in_s == wait_s


@pytest.mark.parametrize("header", [None, "", "soon", "-5", "1.5", "١٢"])
def test_an_unreadable_retry_after_leaves_the_schedule(header: str | None) -> None:
    decision = _decide(Attempt(status=503, retry_after=header))
    assert decision.retry_in_s == RETRY_SCHEDULE_S[1]


def test_retry_after_of_other_answers_is_not_honoured() -> None:
    decision = _decide(Attempt(status=500, retry_after="3600"))
    assert decision.retry_in_s == RETRY_SCHEDULE_S[1]


def test_retry_after_reads_an_http_date_in_utc() -> None:
    assert retry_after_s("Thu, 03 Dec 2026 09:01:00 GMT", NOW) == 60
    assert retry_after_s("Thu, 03 Dec 2026 09:01:00 -0000", NOW) == 60


def test_an_endpoint_failing_for_five_days_is_disabled() -> None:
    almost = _decide(Attempt(status=500), failing_since=NOW - timedelta(days=5, seconds=-1))
    assert almost.verdict is Verdict.RETRY
    assert almost.disable_endpoint is None
    decision = _decide(Attempt(status=500), failing_since=NOW - timedelta(days=5))
    assert decision.verdict is Verdict.FAILED
    assert decision.disable_endpoint == "no delivery succeeded for 5 days"
    refused = _decide(Attempt(error="could not connect"), failing_since=NOW - timedelta(days=6))
    assert refused.disable_endpoint is not None


REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "cloud metadata",
    "169.254.0.1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "private",
    "224.0.0.251": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "192.0.2.10": "private",
    "198.18.0.1": "private",
    "::1": "loopback",
    "::": "unspecified",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "2001:db8::1": "private",
    "::ffff:127.0.0.1": "stands for 127.0.0.1 is a loopback",
    "::ffff:10.0.0.1": "stands for 10.0.0.1 is a private",
    "::ffff:169.254.169.254": "cloud metadata",
    "64:ff9b::a00:1": "stands for 10.0.0.1",
    "2002:a00:1::1": "stands for 10.0.0.1",
    "::a00:1": "reserved",
    "not-an-address": "not an IP address",
}
PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.128.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize(("address", "kind"), sorted(REFUSED.items()))
def test_addresses_that_are_not_public_are_refused(address: str, kind: str) -> None:
    problem = address_problem(address)
    assert problem is not None
    assert kind in problem


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_problem(address) is None


@given(
    st.ip_addresses(network="10.0.0.0/8")
    | st.ip_addresses(network="192.168.0.0/16")
    | st.ip_addresses(network="127.0.0.0/8")
    | st.ip_addresses(network="169.254.0.0/16")
    | st.ip_addresses(network="100.64.0.0/10")
    | st.ip_addresses(network="fc00::/7")
    | st.ip_addresses(network="fe80::/10")
)
def test_every_address_of_an_inner_network_is_refused(address: object) -> None:
    assert address_problem(str(address)) is not None


URL = "https://hooks.bakery.example/clearhouse"


def test_a_public_https_url_may_be_called() -> None:
    assert url_problems(URL, ["93.184.216.34", "2606:2800:220:1::1"], sandbox=False) == []
    assert url_problems("https://93.184.216.34:8443/x?y=1", ["93.184.216.34"], sandbox=False) == []


def test_one_inner_address_among_public_ones_refuses_the_url() -> None:
    problems = url_problems(URL, ["93.184.216.34", "10.1.2.3"], sandbox=False)
    assert problems == ["10.1.2.3 is a private address"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.bakery.example/x", "must use https"),
        ("ftp://hooks.bakery.example/x", "must use https"),
        ("https://user:secret@hooks.bakery.example/x", "user name or password"),
        ("https://user@hooks.bakery.example/x", "user name or password"),
        ("https://hooks.bakery.example/x#part", "fragment"),
        ("https:///x", "no host"),
        ("https://bäckerei.example/x", "ASCII"),
        ("https://hooks.bakery.example/a b", "spaces or control characters"),
        ("https://hooks.bakery.example/\x00", "spaces or control characters"),
        ("https://hooks.bakery.example:99999/x", "does not parse"),
        ("https://hooks.bakery.example:port/x", "does not parse"),
        ("https://hooks.bakery.example/" + "x" * 2100, "longer than 2048"),
    ],
)
def test_urls_of_the_wrong_form_are_refused(url: str, problem: str) -> None:
    problems = url_problems(url, ["93.184.216.34"], sandbox=False)
    assert any(problem in p for p in problems), problems


def test_every_problem_of_a_url_is_listed_at_once() -> None:
    problems = url_problems("http://me:pw@hooks.bakery.example/x#y", ["8.8.8.8"], sandbox=False)
    assert len(problems) == 3


def test_a_host_that_resolves_to_nothing_is_refused() -> None:
    assert url_problems(URL, [], sandbox=False) == ["the host resolves to no address"]
    assert url_problems(URL, [], sandbox=True) == ["the host resolves to no address"]


def test_sandbox_mode_allows_plain_http_and_loopback() -> None:
    assert url_problems("http://127.0.0.1:8080/hook", ["127.0.0.1"], sandbox=True) == []
    assert url_problems("https://[::1]:8443/hook", ["::1"], sandbox=True) == []
    assert url_problems("http://127.0.0.1:8080/hook", ["127.0.0.1"], sandbox=False) == [
        "the URL must use https",
        "127.0.0.1 is a loopback address",
    ]
    # Everything but the addresses is still checked.
    assert url_problems("ftp://127.0.0.1/x", ["127.0.0.1"], sandbox=True) == [
        "the URL must use https (or http, in sandbox mode)"
    ]
    assert url_problems("http://u:p@127.0.0.1/x", ["127.0.0.1"], sandbox=True) == [
        "the URL must not hold a user name or password"
    ]


def test_the_target_of_a_url_is_its_host_and_port() -> None:
    target = target_of("https://Hooks.Bakery.example/x")
    assert target is not None
    assert (target.scheme, target.host, target.port, target.host_is_address) == (
        "https",
        "hooks.bakery.example",
        443,
        False,
    )
    ipv6 = target_of("http://[::1]:8080/x")
    assert ipv6 is not None
    assert (ipv6.host, ipv6.port, ipv6.host_is_address) == ("::1", 8080, True)
    assert target_of("ftp://x.example/") is None
    assert target_of("https://x.example:99999/") is None

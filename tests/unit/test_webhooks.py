"""Webhooks in the unit tier: the token, the inbox's checks, what the poller makes of
notices it cannot act on at once, the loss learner, and the net planner (pure)."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from orchestrator.engine.notices import HELD, Notices, Unmatched
from orchestrator.errors import UsageError
from orchestrator.polling import LOSS_PRIOR, Candidate, Durations, LossRate, hazard, pick
from orchestrator.webhooks import MAX_BODY, Inbox, Notice, Refused, Token, digest
from orchestrator.webhooks.address import check_url, parse_listen


def _inbox(token: Token) -> Inbox:
    return Inbox([token.digest], redact=lambda text: text)


def _body(prediction_id: str = "p-1", status: str = "completed") -> bytes:
    return json.dumps(
        {"id": prediction_id, "status": status, "output": ["https://cdn/x.png"], "error": None}
    ).encode()


def test_a_token_is_128_random_bits_and_never_printed() -> None:
    """Each token is fresh, 128 bits in URL-safe text; repr and str hide it."""
    a, b = Token(), Token()
    assert a.value != b.value
    assert len(a.value) == 22  # 16 bytes, base64url without padding
    assert a.value not in repr(a) and a.value not in str(a)
    assert a.digest == hashlib.sha256(a.value.encode()).hexdigest() == digest(a.value)


def test_the_inbox_takes_the_attempt_from_the_end_of_the_path() -> None:
    """Whatever prefix a proxy leaves, the last two segments are token and attempt."""
    token = Token()
    inbox = _inbox(token)
    assert inbox.attempt(f"/{token.value}/17") == 17
    assert inbox.attempt(f"/hooks/fashn/{token.value}/42/") == 42


@pytest.mark.parametrize(
    "path",
    ["/", "/17", "/not-our-token-000000/17", "/{token}/x", "/{token}", "/{token}x/17"],
)
def test_the_inbox_refuses_paths_without_our_token(path: str) -> None:
    """Any path without a token this database issued is a 404, before the body is read."""
    token = Token()
    with pytest.raises(Refused) as refused:
        _inbox(token).attempt(path.format(token=token.value))
    assert refused.value.status == 404
    assert token.value not in refused.value.reason


def test_a_token_of_an_earlier_run_is_trusted_once_added() -> None:
    """A resumed run trusts the digests of earlier runs' tokens too."""
    old, new = Token(), Token()
    inbox = _inbox(new)
    with pytest.raises(Refused):
        inbox.attempt(f"/{old.value}/3")
    inbox.trust(old.digest)
    assert inbox.attempt(f"/{old.value}/3") == 3


def test_the_inbox_reads_a_webhook_body_as_a_status() -> None:
    """{id, status, output, error} becomes a Notice, failures with their error name."""
    inbox = _inbox(Token())
    notice = inbox.notice(5, _body())
    assert notice == Notice(5, "p-1", notice.status)
    assert notice.status.status == "completed" and notice.status.outputs == ["https://cdn/x.png"]
    failed = {"id": "p-2", "status": "failed", "output": None, "error": "PoseError: no pose"}
    status = inbox.notice(6, json.dumps(failed).encode()).status
    assert (status.terminal, status.error_name, status.error_message) == (
        True,
        "PoseError",
        "no pose",
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body is not JSON"),
        (b"[1, 2]", "no prediction id"),
        (b'{"status": "completed"}', "no prediction id"),
        (b'{"id": "p", "status": 3}', "no status"),
    ],
)
def test_a_body_that_is_not_a_webhook_is_a_400(body: bytes, reason: str) -> None:
    """A malformed body is refused with 400, and counted by reason."""
    inbox = _inbox(Token())
    with pytest.raises(Refused) as refused:
        inbox.notice(1, body)
    assert (refused.value.status, refused.value.reason) == (400, reason)
    assert inbox.counts[reason] == 1


def test_the_body_size_is_bounded_by_its_announced_length() -> None:
    """A Content-Length past the bound is a 413 before anything is read."""
    inbox = _inbox(Token())
    inbox.check_size(str(MAX_BODY))
    with pytest.raises(Refused) as refused:
        inbox.check_size(str(MAX_BODY + 1))
    assert refused.value.status == 413


def test_notices_tell_duplicates_from_late_webhooks() -> None:
    """A second webhook for an attempt a webhook finished is a duplicate; the first for
    one a poll finished is late (not lost); a copy after that is a duplicate."""
    notices = Notices(clock=lambda: 0.0, hold_seconds=5.0)
    notices.finished(1, by_poll=False)
    notices.finished(2, by_poll=True)
    assert notices.unmatched(Notice(1, "a", _status())) is Unmatched.DUPLICATE
    assert notices.unmatched(Notice(2, "b", _status())) is Unmatched.LATE
    assert notices.unmatched(Notice(2, "b", _status())) is Unmatched.DUPLICATE


def test_an_early_webhook_is_held_briefly_and_boundedly() -> None:
    """A webhook that overtakes its /run answer waits for the flight; not for ever,
    and a flood of them holds no more than HELD."""
    now = [0.0]
    notices = Notices(clock=lambda: now[0], hold_seconds=5.0)
    assert notices.unmatched(Notice(7, "p", _status())) is Unmatched.HELD
    held = notices.take_held(7)
    assert held is not None and held.prediction_id == "p"
    assert notices.take_held(7) is None
    notices.unmatched(Notice(8, "q", _status()))
    now[0] = 5.0
    assert notices.take_held(8) is None  # expired
    for attempt in range(1000, 1000 + 2 * HELD):
        notices.unmatched(Notice(attempt, "x", _status()))
    assert notices.take_held(1000) is None  # pushed out
    assert notices.take_held(1000 + 2 * HELD - 1) is not None


def _status():  # type: ignore[no-untyped-def]
    return Inbox([], redact=str).notice(1, _body()).status


def test_the_loss_rate_starts_at_its_prior_and_learns() -> None:
    """One in ten lost until evidence; late webhooks are not counted as lost."""
    loss = LossRate()
    a, b = LOSS_PRIOR
    assert loss.rate == pytest.approx(a / (a + b))
    for _ in range(90):
        loss.found_by_webhook()
    assert loss.rate == pytest.approx(1 / 100)
    loss.found_by_poll()
    loss.late_webhook()
    assert (loss.lost, loss.announced) == (0, 91)


def _durations(samples: list[float]) -> Durations:
    d = Durations()
    for s in samples:
        d.observe("m", s)
    return d


def test_the_unannounced_hazard_is_the_hazard_times_the_loss_rate() -> None:
    """With webhooks, a finish counts only if its webhook is lost."""
    d = _durations([4.0, 6.0, 8.0, 10.0, 12.0])
    full = hazard(d, "m", 8.0)
    assert full is not None
    assert hazard(d, "m", 8.0, 0.1) == pytest.approx(0.1 * full)
    assert hazard(d, "m", 30.0, 0.1) == hazard(d, "m", 30.0)  # overdue: surely lost


def test_the_net_polls_less_when_fewer_webhooks_are_lost() -> None:
    """A prediction is next due later, the fewer webhooks are lost (rate ∝ √loss)."""
    d = _durations([4.0, 6.0, 8.0, 10.0, 12.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=8.0)
    waits = [pick([cand], d, now=8.0, rate=5.0, loss=loss)[1] - 8.0 for loss in (0.01, 0.1, 1.0)]
    assert waits[0] > waits[1] > waits[2] > 0
    assert waits[0] / waits[1] == pytest.approx(math.sqrt(10), rel=1e-6)


def test_the_net_never_spends_more_than_the_budget() -> None:
    """With every webhook lost, the net polls no faster than the status budget allows."""
    d = _durations([4.0, 6.0, 8.0, 10.0, 12.0])
    cands = [Candidate(key=i, model="m", accepted_at=0.0, last_polled_at=20.0) for i in range(6)]
    _, wake = pick(cands, d, now=20.0, rate=5.0, loss=1.0)
    assert wake - 20.0 == pytest.approx(6 / 5.0)  # six overdue: each at 1/6 of 5 per s


def test_a_prediction_sent_by_an_earlier_run_is_polled_as_without_webhooks() -> None:
    """Its webhook may have come while no one listened: it gets the full hazard."""
    d = _durations([4.0, 6.0, 8.0, 10.0, 12.0])
    fresh = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=8.0)
    recovered = Candidate(key=2, model="m", accepted_at=0.0, last_polled_at=8.0, unannounced=True)
    chosen, _ = pick([fresh, recovered], d, now=9.0, rate=5.0, loss=0.01)
    assert chosen is recovered


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.example.com/fashn/", "https://hooks.example.com/fashn"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_a_webhook_url_is_an_absolute_http_url(url: str, expected: str) -> None:
    """The base URL is kept without its trailing slash."""
    assert check_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "hooks.example.com",
        "ftp://hooks.example.com",
        "https://",
        "https://h.example/x?a=1",
        "https://h.example/x#f",
        "https://user:pw@h.example/",
        "https://h.example:99999/",
        "https://h.example/a b",
    ],
)
def test_a_webhook_url_fashn_cannot_post_to_is_refused(url: str) -> None:
    """Relative, non-http, with a query, fragment, credentials, bad port or spaces."""
    with pytest.raises(UsageError, match="--webhook-url"):
        check_url(url)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("localhost:1", ("localhost", 1)),
        ("[::1]:9000", ("::1", 9000)),
    ],
)
def test_listen_is_host_and_port(text: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, IPv6 in brackets."""
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["8080", ":8080", "host:", "host:0", "host:70000", "host:x"])
def test_listen_without_host_or_port_is_refused(text: str) -> None:
    """A missing host, a missing or out-of-range port is a usage error."""
    with pytest.raises(UsageError, match="--webhook-listen"):
        parse_listen(text)


def test_a_run_s_token_is_masked_in_every_log_record() -> None:
    """Should the token ever reach a log line, the log handler masks it."""
    import io
    import logging

    from rich.console import Console

    from orchestrator.config import Settings
    from orchestrator.logs import setup_logging
    from orchestrator.webhooks.endpoint import Webhooks

    stream = io.StringIO()
    handler = setup_logging(0, console=Console(file=io.StringIO()), secret="k", stream=stream)
    try:
        hooks = Webhooks(Settings(webhook_url="https://h.example/x"), redact=str)
        logging.getLogger("orchestrator").warning("url %s", hooks.url_for(3))
    finally:
        logging.getLogger().removeHandler(handler)
    assert hooks.token.value not in stream.getvalue()
    assert "https://h.example/x/***/3" in stream.getvalue()

"""The sliding window: parsing, and the guarantee as the server would count it."""

from __future__ import annotations

import random

import pytest

from orchestrator.errors import UsageError
from orchestrator.limits import RateLimit, SlidingWindow
from orchestrator.testing import VirtualClock, run_in_virtual_time


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50/60", RateLimit(50, 60.0)),
        ("50/0.6", RateLimit(50, 0.6)),
        ("1/1e-3", RateLimit(1, 0.001)),
    ],
)
def test_parse_accepts_n_per_seconds(text: str, expected: RateLimit) -> None:
    """N/SECONDS parses, fractional seconds included."""
    assert RateLimit.parse(text) == expected


@pytest.mark.parametrize("text", ["50", "0/60", "-1/60", "50/0", "50/-3", "x/60", "50/inf", ""])
def test_parse_rejects_nonsense(text: str) -> None:
    """Anything but a positive count over positive seconds is a usage error naming the option."""
    with pytest.raises(UsageError, match="--run-limit"):
        RateLimit.parse(text, option="--run-limit")


def test_answered_requests_hold_the_window_until_one_length_after_the_answer() -> None:
    """A request frees its place exactly one window after its answer arrived."""
    clock = FakeClock()
    window = SlidingWindow(RateLimit(2, 10.0), clock=clock)
    first = window.try_acquire()
    assert first is not None
    clock.now += 1
    first.done()  # answered at 1001
    second = window.try_acquire()
    assert second is not None
    second.done()  # answered at 1001
    assert window.try_acquire() is None
    assert window.ready_at() == pytest.approx(1011.0)
    clock.now = 1011.0
    assert window.try_acquire() is not None


def test_outstanding_requests_block_until_answered() -> None:
    """A request without an answer may arrive at any moment: it holds its place."""
    clock = FakeClock()
    window = SlidingWindow(RateLimit(1, 5.0), clock=clock)
    ticket = window.try_acquire()
    assert ticket is not None
    clock.now += 100
    assert window.try_acquire() is None
    ticket.done()
    assert window.try_acquire() is None  # answered just now: held for one more window
    clock.now += 5
    assert window.try_acquire() is not None


def test_cancelled_ticket_gives_its_place_back() -> None:
    """A place taken for a request that was never sent is returned without holding the window."""
    clock = FakeClock()
    window = SlidingWindow(RateLimit(1, 5.0), clock=clock)
    ticket = window.try_acquire()
    assert ticket is not None
    ticket.cancel()
    assert window.try_acquire() is not None


def test_seeded_requests_count() -> None:
    """Requests of an earlier process, seeded at start, hold the window like our own."""
    clock = FakeClock()
    window = SlidingWindow(RateLimit(3, 10.0), clock=clock)
    window.seed(answered=[995.0, 999.0], outstanding_until=[1000.0])
    assert window.try_acquire() is None
    assert window.ready_at() == pytest.approx(1005.0)


def test_pause_until_delays_everything() -> None:
    """A Retry-After pauses the window even when it has room."""
    clock = FakeClock()
    window = SlidingWindow(RateLimit(50, 10.0), clock=clock)
    window.pause_until(1002.5)
    assert window.try_acquire() is None
    clock.now = 1002.5
    assert window.try_acquire() is not None


@pytest.mark.parametrize("seed", range(5))
def test_no_server_window_ever_exceeds_the_limit(seed: int) -> None:
    """Whatever the network delay, arrivals (between send and answer) never exceed N per window."""
    rng = random.Random(seed)
    clock = FakeClock()
    limit = RateLimit(5, 1.0)
    window = SlidingWindow(limit, clock=clock)
    arrivals: list[float] = []
    in_flight: list[tuple[float, float, object]] = []  # (answer time, arrival, ticket)
    for _ in range(400):
        ticket = window.try_acquire()
        if ticket is not None:
            latency = rng.uniform(0.0, 0.5)
            arrival = clock.now + rng.uniform(0.0, latency)
            in_flight.append((clock.now + latency, arrival, ticket))
            arrivals.append(arrival)
        # Advance to the next event: an answer or a moment the window opens.
        in_flight.sort(key=lambda x: x[0])
        nxt = min([window.ready_at()] + [a for a, _, _ in in_flight[:1]])
        clock.now = max(clock.now, min(nxt, clock.now + rng.uniform(0, 0.3)))
        while in_flight and in_flight[0][0] <= clock.now:
            in_flight.pop(0)[2].done()  # type: ignore[attr-defined]
    arrivals.sort()
    most = max(
        sum(1 for b in arrivals[i:] if b - a < limit.seconds) for i, a in enumerate(arrivals)
    )
    assert len(arrivals) > 50
    assert most <= limit.count


def test_acquire_waits_for_the_window() -> None:
    """The async acquire returns once the window has room: 5 requests through a
    window of 2 per 10 s take two window lengths (virtual time)."""
    clock = VirtualClock()

    async def main() -> list[float]:
        window = SlidingWindow(RateLimit(2, 10.0), clock=clock.monotonic)
        sent = []
        for _ in range(5):
            ticket = await window.acquire()
            sent.append(clock.monotonic())
            ticket.done()
        return sent

    sent = run_in_virtual_time(main, clock=clock)
    assert [round(t, 6) for t in sent] == [0.0, 0.0, 10.0, 10.0, 20.0]


def test_repr_shows_state() -> None:
    """The repr shows the limit and what holds the window, for debugging."""
    window = SlidingWindow(RateLimit(2, 1.0), clock=FakeClock())
    window.try_acquire()
    assert "2/1" in repr(window) and "outstanding=1" in repr(window)


def test_spare_full_at_tells_when_unused_budget_starts_being_lost() -> None:
    """After a burst, the pacer's allowance is whole again after burst/rate seconds."""

    clock = VirtualClock()

    async def main() -> tuple[float, float, float]:
        window = SlidingWindow(RateLimit(50, 10.0), pace_burst=5, clock=clock.monotonic)
        before = window.spare_full_at() - clock.monotonic()
        for _ in range(5):
            (await window.acquire()).done()
        after = window.spare_full_at() - clock.monotonic()
        return before, after, SlidingWindow(None).spare_full_at()

    before, after, unlimited = run_in_virtual_time(main, clock=clock)
    assert before <= 0.0
    assert after == pytest.approx(1.0, abs=1e-5)  # 5 requests at 5 per second, no time passed
    assert unlimited == float("inf")

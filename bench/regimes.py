"""The three latency regimes of parts 1-3, and the jobs and sandbox each one runs.

Every regime runs against a time-scaled sandbox: durations are FASHN's, multiplied by
`scale`, so that a regime of several real minutes takes seconds. The scale is chosen
so that loopback overheads (1-2 ms per request) stay well under 1% of the scaled
latencies. Job inputs are fixed strings, so every client that runs a regime sends the
same jobs and the sandbox draws the same latency for each (seed, job fingerprint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from orchestrator.models import JobSpec, Location
from orchestrator.sandbox import PredictionRecord, SandboxConfig, SandboxState

from . import stats
from .oracle import ideal_makespan

SEED = 7
MODEL = "background-remove"
CONCURRENCY = 6  # FASHN's in-flight cap, and the orchestrator's default
RUN_LIMIT = (50, 60.0)  # FASHN's /run window, unscaled
STATUS_LIMIT = (50, 10.0)


@dataclass(frozen=True)
class Regime:
    name: str
    latency: tuple[float, float]  # unscaled seconds, drawn uniformly per job
    jobs: int
    scale: float
    target: float  # the efficiency the issue asks for
    binds: str  # which limit the regime is about

    def quick(self) -> Regime:
        """A smoke-test size: a quarter of the jobs (at least 30)."""
        return replace(self, jobs=max(30, self.jobs // 4))

    @property
    def scaled_run_limit(self) -> tuple[int, float]:
        return RUN_LIMIT[0], RUN_LIMIT[1] * self.scale

    def sandbox_config(self) -> SandboxConfig:
        """FASHN's default limits, this regime's latencies, credits to spare."""
        return SandboxConfig(
            seed=SEED,
            time_scale=self.scale,
            latency={"*": self.latency},
            credits=10 * self.jobs + 1000,
        )

    def job_specs(self) -> list[JobSpec]:
        return job_specs(self.jobs, self.name)


# Long: 20-60 s predictions, six slots: the concurrency cap binds (~9 runs a minute).
# Short: 2-5 s, six slots could start ~100 a minute: the 50-per-minute run limit binds.
# Middle: 4-12 s, six slots start ~45 a minute: both limits bind, in turns.
REGIMES: dict[str, Regime] = {
    "long": Regime("long", (20.0, 60.0), 150, 0.05, 0.98, "concurrency"),
    "short": Regime("short", (2.0, 5.0), 200, 0.1, 0.97, "run limit"),
    "middle": Regime("middle", (4.0, 12.0), 200, 0.1, 0.94, "both"),
}


@dataclass(frozen=True)
class RegimeRun:
    """One client's run of a regime, as the sandbox saw it, and the wall time it took."""

    client: str
    regime: Regime
    wall: float  # real seconds, from the client's start to its last output saved
    records: list[PredictionRecord]
    rejections: dict[str, int]
    arrivals: dict[str, int]  # requests by endpoint: run, status, cdn
    max_in_window: dict[str, int]  # most arrivals in any scaled window: run, status
    max_in_flight: int
    completed: int  # jobs whose outputs were saved
    failed: int  # jobs that ended without their outputs
    timed_out: bool = False
    failures: dict[str, int] = field(default_factory=dict)  # failed jobs by reason

    @classmethod
    def observed(
        cls,
        state: SandboxState,
        *,
        client: str,
        regime: Regime,
        wall: float,
        completed: int,
        timed_out: bool,
        failures: dict[str, int],
    ) -> RegimeRun:
        """A client's run as the sandbox recorded it."""
        return cls(
            client=client,
            regime=regime,
            wall=wall,
            records=state.predictions(),
            rejections=state.rejections,
            arrivals={e: len(state.arrivals(e)) for e in ("run", "status", "cdn")},
            max_in_window={e: state.max_in_window(e) for e in ("run", "status")},
            max_in_flight=state.max_in_flight(),
            completed=completed,
            failed=regime.jobs - completed,
            timed_out=timed_out,
            failures=failures,
        )

    @property
    def latencies(self) -> list[float]:
        """What the sandbox drew for each prediction, in the order it accepted them."""
        ordered = sorted(self.records, key=lambda r: r.accepted_at)
        return [r.finished_at - r.accepted_at for r in ordered]

    @property
    def ideal(self) -> float:
        return ideal_makespan(self.latencies, CONCURRENCY, self.regime.scaled_run_limit)

    @property
    def efficiency(self) -> float:
        return stats.ratio(self.ideal, self.wall) if not self.timed_out else math.nan

    @property
    def shown_efficiency(self) -> str:
        """Efficiency as every row shows it: rounded down, so no row flatters a run."""
        return f"{stats.floor_to(self.efficiency, 3):.3f}"

    @property
    def rate_limited(self) -> int:
        """429 answers: rate windows and the in-flight cap."""
        return sum(
            self.rejections.get(k, 0) for k in ("RateLimitExceeded", "ConcurrencyLimitExceeded")
        )

    @property
    def detection_delays(self) -> list[float]:
        """Unscaled seconds from each finish to the first status answer that showed it,
        or the first webhook sent about it (and answered 2xx), whichever came first."""
        return stats.delays(
            [
                (r.finished_at, _first(r.first_seen_finished_at, r.first_notified_at))
                for r in self.records
            ],
            self.regime.scale,
        )

    @property
    def acknowledged_delays(self) -> list[float]:
        """Unscaled seconds from each finish to the receiver's 2xx answer to its webhook,
        or to the first status answer that showed it, whichever came first."""
        pairs = [
            (r.finished_at, _first(r.first_seen_finished_at, r.notice_acknowledged_at))
            for r in self.records
        ]
        return stats.delays(pairs, self.regime.scale)

    @property
    def unannounced_delays(self) -> list[float]:
        """Detection delays of the predictions no webhook announced (lost ones)."""
        pairs = [(r.finished_at, r.first_seen_finished_at) for r in self.records]
        lost = [p for p, r in zip(pairs, self.records, strict=True) if r.first_notified_at is None]
        return stats.delays(lost, self.regime.scale)

    @property
    def uncollected(self) -> int:
        """Predictions that completed (and were charged) but that no status answer showed
        the client: paid for, outputs never fetched."""
        return sum(1 for r in self.records if r.error is None and r.first_seen_finished_at is None)

    @property
    def status_per_job(self) -> float:
        return stats.ratio(self.arrivals.get("status", 0), self.regime.jobs)


def _first(*times: float | None) -> float | None:
    seen = [t for t in times if t is not None]
    return min(seen) if seen else None


def regime(name: str, *, quick: bool) -> Regime:
    found = REGIMES[name]
    return found.quick() if quick else found


def job_specs(n: int, tag: str) -> list[JobSpec]:
    """`n` distinct background-remove jobs; the same tag and n give the same jobs."""
    return [
        JobSpec(
            f"{tag}-{i:04d}",
            MODEL,
            {"image": f"https://cdn.example.com/bench/{tag}/{i:04d}.jpg"},
            location=Location("bench", i + 1),
        )
        for i in range(n)
    ]


__all__ = [
    "CONCURRENCY",
    "MODEL",
    "REGIMES",
    "RUN_LIMIT",
    "SEED",
    "Regime",
    "RegimeRun",
    "job_specs",
    "regime",
]

"""The Python API (`orchestrator.submit`, `resume`) against the sandbox over HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from orchestrator.config import RateLimit
from orchestrator.errors import BudgetReached, OutOfCredits, UsageError
from orchestrator.sandbox import SandboxServer

from ..conftest import SCALE


def _manifest(folder: Path, jobs: int, *, fail: int = 0) -> Path:
    lines = ["batch: shop", "jobs:"]
    for i in range(jobs):
        tag = "?sandbox:fail=PoseError" if i < fail else ""
        lines += [
            f"  - id: sku-{i}",
            "    model_name: background-remove",
            f"    inputs: {{image: 'https://cdn.example/{i}.png{tag}'}}",
        ]
    path = folder / "catalog.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _options(server: SandboxServer, tmp_path: Path) -> dict[str, Any]:
    """The defaults in the sandbox's scaled time, as a script would write them."""
    return {
        "api_key": server.state.config.api_key,
        "base_url": server.base_url,
        "out": tmp_path / "outputs",
        "run_limit": str(RateLimit(50, 60).scaled(SCALE)),
        "status_limit": str(RateLimit(50, 10).scaled(SCALE)),
    }


def test_submit_returns_what_was_made_and_prints_nothing(
    sandbox: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """submit() runs a manifest to the end and returns counts, credits and every output."""
    server = sandbox()
    result = orchestrator.submit(
        _manifest(tmp_path, 5, fail=1), db=tmp_path / "q.db", **_options(server, tmp_path)
    )
    assert result.batches == ["shop"]
    assert result.counts == {"completed": 4, "failed": 1}
    assert result.credits == server.state.credits_charged == 4
    assert result.uncertain == 0 and not result.succeeded
    assert result.queued is not None and result.queued.added == 5
    assert sorted(result.outputs) == [f"sku-{i}" for i in range(5)]
    assert result.outputs["sku-0"] == []
    for i in range(1, 5):
        (path,) = result.outputs[f"sku-{i}"]
        assert path.is_file() and path.parent.name == f"sku-{i}"
    assert capfd.readouterr() == ("", "")


def test_resume_continues_a_queued_batch(sandbox: Any, tmp_path: Path) -> None:
    """submit(queue_only=True) sends nothing; resume() then runs every job once."""
    server = sandbox()
    options = _options(server, tmp_path)
    queued = orchestrator.submit(
        _manifest(tmp_path, 3), db=tmp_path / "q.db", queue_only=True, **options
    )
    assert queued.counts == {"queued": 3} and server.state.predictions() == []
    result = orchestrator.resume("shop", db=tmp_path / "q.db", **options)
    assert result.counts == {"completed": 3} and result.succeeded
    assert len(server.state.predictions()) == 3
    digests = {
        hashlib.sha256(p.read_bytes()).hexdigest() for ps in result.outputs.values() for p in ps
    }
    assert len(digests) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"run_limit": "fifty"}, "run_limit 'fifty' is not N/SECONDS"),
        ({"concurency": 3}, "unknown option(s) concurency"),
    ],
)
def test_bad_options_raise_usage_errors_and_change_nothing(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    """A wrong option is a UsageError before any file is written."""
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        orchestrator.submit(_manifest(tmp_path, 1), db=tmp_path / "q.db", sandbox=True, **options)
    assert not (tmp_path / "q.db").exists()


def test_a_run_that_stops_raises_and_resume_finishes(sandbox: Any, tmp_path: Path) -> None:
    """The package's StopRun exceptions surface as such; resume() then completes."""
    poor = sandbox(credits=2)
    with pytest.raises(OutOfCredits):
        orchestrator.submit(
            _manifest(tmp_path, 4), db=tmp_path / "q.db", **_options(poor, tmp_path)
        )
    assert poor.state.credits_charged == 2
    funded = sandbox()  # the account topped up
    result = orchestrator.resume(db=tmp_path / "q.db", **_options(funded, tmp_path))
    assert result.counts == {"completed": 4} and result.credits == 4
    assert funded.state.credits_charged == 2


def test_validate_estimates_and_reads_the_balance_without_running(
    sandbox: Any, tmp_path: Path
) -> None:
    """validate() returns what `validate --json` prints; it sends no /run, writes nothing."""
    server = sandbox(credits=3)
    options = _options(server, tmp_path)
    estimate = orchestrator.validate(
        _manifest(tmp_path, 5),
        db=tmp_path / "q.db",
        api_key=options["api_key"],
        base_url=options["base_url"],
    )
    assert estimate.as_dict() == {
        "jobs": 5,
        "by_model": {"background-remove": {"jobs": 5, "credits": 5}},
        "estimated_credits": 5,
        "balance": 3,
    }
    assert estimate.share == 0.6
    assert server.state.predictions() == [] and not (tmp_path / "q.db").exists()


def test_max_credits_caps_a_run_from_python(sandbox: Any, tmp_path: Path) -> None:
    """max_credits= holds as the sandbox charged it; the run stops with BudgetReached."""
    server = sandbox()
    with pytest.raises(BudgetReached, match="spent 2 of 2"):
        orchestrator.submit(
            _manifest(tmp_path, 4),
            db=tmp_path / "q.db",
            max_credits=2,
            **_options(server, tmp_path),
        )
    assert server.state.credits_charged == 2

"""SandboxState without HTTP: decisions and bookkeeping driven by a hand-moved clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.catalog import MODELS, credits_for
from orchestrator.models import fingerprint
from orchestrator.sandbox import (
    PERMANENT_ERRORS,
    RETRYABLE_ERRORS,
    Faults,
    Limits,
    SandboxConfig,
    SandboxState,
    max_in_window,
)
from orchestrator.sandbox.config import from_options
from orchestrator.sandbox.state import BadRequest, retry_headers, validate_run

from .helpers import AUTH, ManualClock, example_inputs, job

BEARER = AUTH["Authorization"]


def make(clock: ManualClock, **fields: Any) -> SandboxState:
    return SandboxState(SandboxConfig(**fields), clock=clock)


def submit(state: SandboxState, body: dict[str, Any]) -> Any:
    return state.handle_run(BEARER, json.dumps(body).encode())


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([], 10.0, 0),
        ([0.0], 10.0, 1),
        ([0.0, 9.999, 10.0], 10.0, 2),  # 10.0 - 0.0 is not < 10: separate windows
        ([0.0, 1.0, 2.0, 10.5, 11.0, 11.5, 12.5], 2.0, 3),
        ([0.0, 1.0, 2.0, 10.5, 11.0, 11.5, 11.9], 2.0, 4),
        ([0.0, 0.0, 0.0, 5.0, 5.0], 5.0, 3),
        ([0.0, 4.0, 8.0, 12.0], 5.0, 2),
        ([1.0, 1.0, 1.0, 1.0], 0.5, 4),
    ],
)
def test_max_in_window_table(times: list[float], window: float, expected: int) -> None:
    """max_in_window counts a and b together iff b - a < window."""
    assert max_in_window(times, window) == expected


@pytest.mark.parametrize(
    ("seconds", "scale", "after", "ms"),
    [
        (59.2, 1.0, "60", "59200"),
        (0.0001, 1.0, "1", "1"),
        (8.0, 1.0, "8", "8000"),
        (60.00000000000001, 1.0, "60", "60000"),
        (0.0305, 0.01, "0.031", "31"),
        (0.6, 0.01, "0.600", "600"),
    ],
)
def test_retry_headers(seconds: float, scale: float, after: str, ms: str) -> None:
    """Retry-After is whole seconds rounded up, decimal when time is scaled."""
    assert retry_headers(seconds, scale) == {"Retry-After": after, "retry-after-ms": ms}


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_example_inputs_are_valid_for_every_model(model_name: str) -> None:
    """The catalog's required inputs, filled in, pass validation."""
    spec, inputs = validate_run(job(model_name))
    assert spec.name == model_name and inputs


DATA_URI = "data:image/png;base64,iVBORw0KGgo="


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([1, 2], "body"),
        ({"inputs": {}}, "model_name"),
        ({"model_name": 3, "inputs": {}}, "model_name"),
        ({"model_name": "tryon-max-9000", "inputs": {}}, "model_name"),
        ({"model_name": "background-remove"}, "inputs"),
        ({"model_name": "background-remove", "inputs": []}, "inputs"),
        ({"model_name": "tryon-max", "inputs": {"model_image": DATA_URI}}, "inputs.product_image"),
        (job("background-remove", image="ftp://example.com/a.png"), "inputs.image"),
        (job("background-remove", image="example.com/a.png"), "inputs.image"),
        (job("background-remove", image=42), "inputs.image"),
        (job("background-remove", image="data:image/png;base64,@@@"), "inputs.image"),
        (job("background-remove", image="data:text/plain;base64,aGk="), "inputs.image"),
        (job("tryon-max", resolution="8k"), "inputs.resolution"),
        (job("tryon-max", generation_mode="fast"), "inputs.generation_mode"),
        (job("image-to-video", duration=7), "inputs.duration"),
        (job("tryon-max", num_images=5), "inputs.num_images"),
        (job("tryon-max", num_images=0), "inputs.num_images"),
        (job("tryon-max", num_images=True), "inputs.num_images"),
        (job("tryon-v1.6", num_samples="2"), "inputs.num_samples"),
        (job("background-remove", return_base64="yes"), "inputs.return_base64"),
    ],
)
def test_validation_names_the_field(body: object, field: str) -> None:
    """Each invalid /run body is refused with a message that names the field."""
    with pytest.raises(BadRequest, match=field.replace(".", r"\.")):
        validate_run(body)


def test_data_uri_images_are_accepted() -> None:
    """A data:image/...;base64 URI whose payload decodes is a valid image input."""
    validate_run(job("background-remove", image=DATA_URI))


def test_lifecycle_moves_through_every_status(clock: ManualClock) -> None:
    """starting -> in_queue -> processing -> completed, as the clock moves."""
    state = make(clock, latency={"*": (10.0, 10.0)})
    pid = submit(state, job()).body["id"]
    seen = []
    for step in (0.0, 0.5, 1.5, 3.5, 4.5):
        clock.advance(step)
        seen.append(state.handle_status(BEARER, pid).body["status"])
    assert seen == ["starting", "starting", "in_queue", "processing", "completed"]
    assert state.prediction(pid).first_seen_finished_at == clock.now


def test_sliding_window_counts_refused_arrivals(clock: ManualClock) -> None:
    """Refused requests stay in the log, so Retry-After waits for the count-th newest."""
    state = make(clock, limits=Limits(credits=(3, 10.0)))
    codes = [state.handle_credits(BEARER).status for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    clock.advance(5.0)
    refused = state.handle_credits(BEARER)
    assert refused.status == 429 and refused.headers["Retry-After"] == "5"
    clock.advance(5.0)
    assert state.handle_credits(BEARER).status == 200
    assert state.rejections == {"RateLimitExceeded": 2}
    assert state.arrivals("credits") == [1000.0] * 4 + [1005.0, 1010.0]
    assert state.max_in_window("credits") == 5


def test_in_flight_concurrency_and_refund(clock: ManualClock) -> None:
    """Slots free at finish times; a failure is refunded when it happens, unpolled."""
    state = make(
        clock,
        credits=100,
        latency={"*": (10.0, 10.0)},
        limits=Limits(concurrency=2),
        faults=Faults(fail_models={"tryon-max": "PipelineError"}),
    )
    first = submit(state, job("tryon-max", num_images=3))
    assert first.headers["x-fashn-credits-used"] == "6"
    clock.advance(1.0)
    assert submit(state, job("edit")).status == 200
    refused = submit(state, job("packshot"))
    assert refused.status == 429 and refused.body["error"] == "ConcurrencyLimitExceeded"
    assert refused.headers["Retry-After"] == "9"
    assert (state.balance, state.credits_charged, state.in_flight()) == (93, 7, 2)
    clock.advance(9.0)
    assert (state.balance, state.credits_charged, state.in_flight()) == (99, 1, 1)
    assert submit(state, job("packshot")).status == 200
    assert state.max_in_flight() == 2
    assert [p.credits for p in state.predictions()] == [0, 1, 1]


def test_out_of_credits_answers(clock: ManualClock) -> None:
    """A run costing more than the balance is refused as configured, and nothing is charged."""
    for mode, status, name in (("402", 402, "InsufficientCredits"), ("429", 429, "OutOfCredits")):
        state = make(clock, credits=3, out_of_credits=mode)
        assert submit(state, job("tryon-max")).status == 200
        refused = submit(state, job("tryon-max"))
        assert (refused.status, refused.body["error"]) == (status, name)
        assert state.balance == 1 and state.rejections == {"OutOfCredits": 1}


def test_fail_marker_fails_the_first_k_submissions(clock: ManualClock) -> None:
    """sandbox:fail=Name:k fails a job's first k submissions; seconds=S fixes its life."""
    state = make(clock)
    body = job("edit", prompt="make it blue sandbox:fail=PoseError:1 sandbox:seconds=4")
    ids = [submit(state, body).body["id"] for _ in range(2)]
    clock.advance(4.0)
    first, second = (state.handle_status(BEARER, pid).body for pid in ids)
    assert first["error"] == {"name": "PoseError", "message": first["error"]["message"]}
    assert second["status"] == "completed" and second["error"] is None
    assert state.runs_by_fingerprint() == {fingerprint("edit", body["inputs"]): 2}


def test_rates_pick_names_from_the_right_list(clock: ManualClock) -> None:
    """Permanent and retryable failure rates draw names from their own lists."""
    for faults, names in (
        (Faults(permanent_failure=1.0), set(PERMANENT_ERRORS)),
        (Faults(failure=1.0), set(RETRYABLE_ERRORS)),
        (Faults(failure=1.0, retryable_errors=("PipelineError",)), {"PipelineError"}),
    ):
        state = make(clock, faults=faults, latency={"*": (0.0, 0.0)})
        for n in range(8):
            submit(state, job(prompt=f"{n}"))
        assert {p.error for p in state.predictions()} <= names


def test_error_as_string(clock: ManualClock) -> None:
    """error_as_string=1 reports the failure as 'Name: message', as the spec shows it."""
    faults = Faults(failure=1.0, error_as_string=1.0, retryable_errors=("PipelineError",))
    state = make(clock, faults=faults, latency={"*": (1.0, 1.0)})
    pid = submit(state, job()).body["id"]
    clock.advance(1.0)
    assert state.handle_status(BEARER, pid).body["error"].startswith("PipelineError: ")


def test_same_seed_same_fate_in_any_order(clock: ManualClock) -> None:
    """Latency, failure and id depend on (seed, fingerprint, n-th submission), not on order."""
    faults = Faults(failure=0.5)
    bodies = [job("edit", prompt=f"job {n}") for n in range(6)] + [job("edit", prompt="job 0")]

    def fates(order: list[int], seed: int = 7) -> dict[tuple[str, int], tuple[Any, ...]]:
        state = make(ManualClock(), seed=seed, faults=faults, limits=Limits.unlimited())
        for i in order:
            submit(state, bodies[i])
        return {
            (p.fingerprint, p.submission): (p.id, p.finished_at - p.accepted_at, p.error)
            for p in state.predictions()
        }

    forward = fates(list(range(7)))
    assert forward == fates([6, 5, 4, 3, 2, 1, 0])
    assert forward != fates(list(range(7)), seed=8)
    assert {e for _, _, e in forward.values()} - {None}, "some jobs should fail at rate 0.5"


def test_cost_matches_catalog(clock: ManualClock) -> None:
    """x-fashn-credits-used is the catalog's credits_for the inputs."""
    state = make(clock, limits=Limits.unlimited())
    for name in MODELS:
        count = MODELS[name].count_input
        inputs = example_inputs(name, **({count: 2} if count else {}))
        answer = submit(state, {"model_name": name, "inputs": inputs})
        assert answer.headers["x-fashn-credits-used"] == str(credits_for(name, inputs))


@pytest.mark.parametrize(
    "fields",
    [
        {"time_scale": 0},
        {"out_of_credits": "403"},
        {"limits": Limits(run=(0, 60.0))},
        {"limits": Limits(concurrency=0)},
        {"latency": {"tryon-maxx": (1.0, 2.0)}},
        {"latency": {"*": (3.0, 2.0)}},
        {"faults": Faults(failure=1.5)},
        {"faults": Faults(http_500={"runs": 0.5})},
        {"faults": Faults(fail_models={"nope": "PoseError"})},
    ],
)
def test_config_rejects_nonsense(fields: dict[str, Any]) -> None:
    """SandboxConfig refuses impossible settings at construction."""
    with pytest.raises(ValueError):
        SandboxConfig(**fields)


def test_command_options_map_to_the_config() -> None:
    """`orchestrator sandbox`'s options: windows by endpoint, 0 lifts the cap, rates by
    option name, every other field as given."""
    rates = dict.fromkeys(
        ("permanent_failure_rate", "error_as_string", "http_500", "drop", "slow"), 0.0
    )
    config = from_options(
        windows={"run": (5, 1.0), "status": None, "credits": (30, 10.0)},
        concurrency=0,
        latency={"*": (1.0, 2.0)},
        rates={**rates, "failure_rate": 0.25, "lost_answer": 0.5},
        api_key="k",
        seed=4,
    )
    assert config.limits == Limits(run=(5, 1.0), status=None, credits=(30, 10.0), concurrency=None)
    assert (config.faults.failure, config.faults.lost_answer) == (0.25, 0.5)
    assert (config.api_key, config.seed, config.latency) == ("k", 4, {"*": (1.0, 2.0)})
    with pytest.raises(ValueError):
        from_options(
            windows=dict.fromkeys(("run", "status", "credits")),
            concurrency=6,
            latency={"*": (3.0, 2.0)},
            rates={**rates, "failure_rate": 0.0, "lost_answer": 0.0},
        )

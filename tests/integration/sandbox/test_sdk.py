"""The official FASHN SDK (fashn 0.9.0) against the sandbox: answers and errors as it expects."""

from __future__ import annotations

from collections.abc import Iterator

import fashn
import pytest
from fashn import Fashn

from orchestrator.catalog import MODELS, credits_for, output_count
from orchestrator.sandbox import Limits, SandboxConfig, SandboxServer

from .conftest import StartSandbox
from .helpers import API_KEY, example_inputs, job

LIVE = SandboxConfig(time_scale=0.01, latency={"*": (1.0, 3.0)}, limits=Limits.unlimited())


@pytest.fixture(scope="module")
def live() -> Iterator[SandboxServer]:
    """One sandbox for the module: predictions live 10-30 ms, no limits."""
    with SandboxServer(LIVE) as server:
        yield server


@pytest.fixture(scope="module")
def client(live: SandboxServer) -> Iterator[Fashn]:
    """The SDK pointed at the sandbox, retries off so that every answer is seen."""
    with Fashn(api_key=API_KEY, base_url=live.url, max_retries=0) as client:
        yield client


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_sdk_runs_every_model(client: Fashn, live: SandboxServer, model_name: str) -> None:
    """run, status and subscribe work for each catalog model, with the catalog's counts."""
    count = MODELS[model_name].count_input
    inputs = example_inputs(model_name, **({count: 2} if count else {}))
    run = client.predictions.run(model_name=model_name, inputs=inputs)
    assert run.id.endswith("-u1") and run.error is None
    status = client.predictions.status(run.id)
    assert status.id == run.id
    assert status.status in {"starting", "in_queue", "processing", "completed"}
    result = client.predictions.subscribe(model_name=model_name, inputs=inputs, poll_interval=5)
    assert result.status == "completed" and result.error is None
    assert result.credits_used == credits_for(model_name, inputs)
    ext = ".mp4" if MODELS[model_name].output_mime == "video/mp4" else ".png"
    assert result.output is not None and len(result.output) == output_count(model_name, inputs)
    assert all(url.startswith(f"{live.url}/cdn/") and url.endswith(ext) for url in result.output)


def test_sdk_sees_a_failed_prediction(client: Fashn) -> None:
    """subscribe and status report a failure with its error object."""
    inputs = example_inputs("edit", prompt="sandbox:fail=PoseError")
    result = client.predictions.subscribe(model_name="edit", inputs=inputs, poll_interval=5)
    assert result.status == "failed" and result.output is None
    assert result.error is not None and result.error.name == "PoseError" and result.error.message
    assert result.credits_used == 0
    status = client.predictions.status(result.id)
    assert status.status == "failed" and status.error is not None
    assert status.error.name == "PoseError"


def test_sdk_wrong_key(live: SandboxServer) -> None:
    """A wrong key raises AuthenticationError."""
    with (
        Fashn(api_key="wrong", base_url=live.url, max_retries=0) as client,
        pytest.raises(fashn.AuthenticationError) as info,
    ):
        client.predictions.run(**job())
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"] == "UnauthorizedAccess" and info.value.body["message"]


def test_sdk_bad_input(client: Fashn) -> None:
    """A missing required input raises BadRequestError naming it."""
    with pytest.raises(fashn.BadRequestError, match="product_image"):
        client.predictions.run(model_name="tryon-max", inputs={"model_image": "https://a.b/c.png"})


def test_sdk_unknown_id(client: Fashn) -> None:
    """An unknown id raises NotFoundError."""
    with pytest.raises(fashn.NotFoundError):
        client.predictions.status("123a87r9-4129-4bb3-be18-9c9fb5bd7fc1-u1")


def test_sdk_rate_limited(sandbox: StartSandbox) -> None:
    """The run window's refusal raises RateLimitError with the retry headers."""
    server = sandbox(limits=Limits(run=(1, 60.0)))
    with Fashn(api_key=API_KEY, base_url=server.url, max_retries=0) as client:
        client.predictions.run(**job())
        with pytest.raises(fashn.RateLimitError) as info:
            client.predictions.run(**job())
    assert info.value.response.headers["retry-after"] == "60"
    assert info.value.body["error"] == "RateLimitExceeded"


def test_sdk_out_of_credits(sandbox: StartSandbox) -> None:
    """An empty account raises the SDK's status error with 402 InsufficientCredits."""
    server = sandbox(credits=0)
    with (
        Fashn(api_key=API_KEY, base_url=server.url, max_retries=0) as client,
        pytest.raises(fashn.APIStatusError) as info,
    ):
        client.predictions.run(**job())
    assert info.value.status_code == 402

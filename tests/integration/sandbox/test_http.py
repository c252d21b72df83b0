"""The sandbox over real HTTP on loopback: auth, limits, credits, faults, expiry, outputs, admin."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.models import fingerprint
from orchestrator.outputs import extension as output_extension
from orchestrator.sandbox import RETRYABLE_ERRORS, Faults, Limits, SandboxServer, images

from .conftest import StartSandbox
from .helpers import AUTH, ManualClock, api, job


def fire(server: SandboxServer, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body to /run at once, on as many connections."""
    results: list[httpx.Response] = []

    async def main() -> None:
        pool = httpx.Limits(max_connections=len(bodies))
        async with (
            httpx.AsyncClient(base_url=server.base_url, headers=AUTH, limits=pool) as client,
            anyio.create_task_group() as group,
        ):
            for body in bodies:

                async def one(body: dict[str, Any] = body) -> None:
                    results.append(await client.post("/run", json=body, timeout=30))

                group.start_soon(one)

    anyio.run(main)
    return results


def error_of(response: httpx.Response) -> str:
    return str(response.json()["error"])


def check_png(data: bytes) -> None:
    """A PNG whose chunks have valid CRCs and whose pixels decompress."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        if kind == b"IDAT":
            assert len(zlib.decompress(body)) == 8 * (1 + 8 * 3)
        kinds.append(kind)
        pos += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"


def test_wrong_or_missing_key_is_401(sandbox: StartSandbox) -> None:
    """Only the configured key works; 401s are counted and do not use the rate windows."""
    server = sandbox()
    with api(server, key="wrong") as wrong, httpx.Client(base_url=server.base_url) as anonymous:
        for client in (wrong, anonymous):
            for response in (
                client.post("/run", json=job()),
                client.get("/status/whatever"),
                client.get("/credits"),
            ):
                assert response.status_code == 401
                assert error_of(response) == "UnauthorizedAccess" and response.json()["message"]
    assert server.state.rejections == {"Unauthorized": 6}
    assert server.state.arrivals("run") == [] and server.state.predictions() == []


TRYON_ONE_IMAGE = {"model_name": "tryon-max", "inputs": {"model_image": "https://a.b/c.png"}}
FILE_PATH_IMAGE = {"model_name": "background-remove", "inputs": {"image": "/tmp/a.png"}}
NINE_IMAGES = {
    "model_name": "edit",
    "inputs": {"image": "https://a.b/c", "prompt": "x", "num_images": 9},
}


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (json.dumps({"model_name": "no-such-model", "inputs": {}}).encode(), "model_name"),
        (json.dumps(TRYON_ONE_IMAGE).encode(), "inputs.product_image"),
        (json.dumps(FILE_PATH_IMAGE).encode(), "inputs.image"),
        (json.dumps(NINE_IMAGES).encode(), "inputs.num_images"),
    ],
)
def test_bad_request_names_the_field(sandbox: StartSandbox, content: bytes, field: str) -> None:
    """An invalid /run body answers 400 BadRequest naming the field, and creates nothing."""
    server = sandbox()
    with api(server) as client:
        response = client.post("/run", content=content)
    assert response.status_code == 400 and error_of(response) == "BadRequest"
    assert field in response.json()["message"]
    assert server.state.rejections == {"BadRequest": 1} and server.state.balance == 10_000


def test_sixty_runs_at_once_meet_the_run_window(sandbox: StartSandbox, clock: ManualClock) -> None:
    """60 simultaneous runs: exactly 50 accepted, 10 refused with Retry-After 60."""
    server = sandbox(clock=clock, limits=Limits(concurrency=None))
    responses = fire(server, [job(prompt=str(n)) for n in range(60)])
    refused = [r for r in responses if r.status_code == 429]
    assert sum(r.status_code == 200 for r in responses) == 50 and len(refused) == 10
    assert {error_of(r) for r in refused} == {"RateLimitExceeded"}
    assert {(r.headers["Retry-After"], r.headers["retry-after-ms"]) for r in refused} == {
        ("60", "60000")
    }
    state = server.state
    assert state.rejections == {"RateLimitExceeded": 10} and len(state.predictions()) == 50
    assert state.max_in_window("run") == 60 and state.max_in_window("run", window=0.001) == 60


def test_run_window_slides_in_scaled_time(sandbox: StartSandbox) -> None:
    """With time_scale 0.005 a 60 s window lasts 0.3 s; Retry-After is decimal and honest."""
    server = sandbox(time_scale=0.005, limits=Limits(run=(2, 60.0)), latency={"*": (0.0, 0.0)})
    with api(server) as client:
        assert [client.post("/run", json=job()).status_code for _ in range(2)] == [200, 200]
        refused = client.post("/run", json=job())
        assert refused.status_code == 429
        assert re.fullmatch(r"0\.\d{3}", refused.headers["Retry-After"])
        wait_ms = int(refused.headers["retry-after-ms"])
        assert 0 < wait_ms <= 300
        time.sleep(wait_ms / 1000)
        assert client.post("/run", json=job()).status_code == 200


def test_seventh_prediction_hits_the_concurrency_limit(
    sandbox: StartSandbox, clock: ManualClock
) -> None:
    """Seven long predictions at once: one gets ConcurrencyLimitExceeded until a slot frees."""
    server = sandbox(clock=clock, latency={"*": (10.0, 10.0)})
    responses = fire(server, [job(prompt=str(n)) for n in range(7)])
    refused = [r for r in responses if r.status_code == 429]
    assert len(refused) == 1 and error_of(refused[0]) == "ConcurrencyLimitExceeded"
    assert refused[0].headers["Retry-After"] == "10"
    clock.advance(4.0)
    with api(server) as client:
        again = client.post("/run", json=job(prompt="6"))
        assert (again.status_code, again.headers["retry-after-ms"]) == (429, "6000")
        clock.advance(6.0)
        assert client.post("/run", json=job(prompt="6")).status_code == 200
    assert server.state.max_in_flight() == 6
    assert server.state.rejections == {"ConcurrencyLimitExceeded": 2}


def test_status_window(sandbox: StartSandbox, clock: ManualClock) -> None:
    """The 51st status request inside 10 s is refused; the window then slides."""
    server = sandbox(clock=clock)
    with api(server) as client:
        pid = client.post("/run", json=job()).json()["id"]
        codes = [client.get(f"/status/{pid}").status_code for _ in range(51)]
        assert codes == [200] * 50 + [429]
        clock.advance(9.5)
        refused = client.get(f"/status/{pid}")
        assert (error_of(refused), refused.headers["Retry-After"]) == ("RateLimitExceeded", "1")
        clock.advance(0.5)
        assert client.get(f"/status/{pid}").status_code == 200
    assert server.state.max_in_window("status") == 52


def test_credits_window_and_body(sandbox: StartSandbox, clock: ManualClock) -> None:
    """GET /v1/credits reports the balance; the 31st request inside 10 s is refused."""
    server = sandbox(clock=clock, credits=1234)
    with api(server) as client:
        answers = [client.get("/credits") for _ in range(31)]
    assert answers[0].json() == {"credits": {"total": 1234, "subscription": 1234, "on_demand": 0}}
    assert [a.status_code for a in answers] == [200] * 30 + [429]
    assert answers[-1].headers["Retry-After"] == "10"


@pytest.mark.parametrize(
    ("mode", "status", "name"), [("402", 402, "InsufficientCredits"), ("429", 429, "OutOfCredits")]
)
def test_out_of_credits(sandbox: StartSandbox, mode: str, status: int, name: str) -> None:
    """When the balance is below the cost, /run answers as configured and charges nothing."""
    server = sandbox(credits=3, out_of_credits=mode)
    with api(server) as client:
        first = client.post("/run", json=job("tryon-max"))
        assert first.headers["x-fashn-credits-used"] == "2"
        refused = client.post("/run", json=job("tryon-max"))
        assert (refused.status_code, error_of(refused)) == (status, name)
        assert client.post("/run", json=job("edit")).status_code == 200
        assert client.get("/credits").json()["credits"]["total"] == 0
    assert server.state.rejections == {"OutOfCredits": 1}


def test_failed_prediction_is_refunded(sandbox: StartSandbox, clock: ManualClock) -> None:
    """A failure reports {"name", "message"} and its credits come back."""
    server = sandbox(clock=clock, latency={"*": (5.0, 5.0)}, faults=Faults(failure=1.0))
    with api(server) as client:
        pid = client.post("/run", json=job("tryon-max", num_images=2)).json()["id"]
        assert client.get("/credits").json()["credits"]["total"] == 10_000 - 4
        clock.advance(5.0)
        answer = client.get(f"/status/{pid}")
        assert client.get("/credits").json()["credits"]["total"] == 10_000
    body = answer.json()
    assert body["status"] == "failed" and body["output"] is None
    assert body["error"]["name"] in RETRYABLE_ERRORS and body["error"]["message"]
    assert answer.headers["x-fashn-credits-used"] == "0"
    assert server.state.credits_charged == 0 and server.state.prediction(pid).credits == 0


@pytest.mark.parametrize("endpoint", ["run", "status", "credits", "cdn"])
def test_http_500_changes_nothing(sandbox: StartSandbox, clock: ManualClock, endpoint: str) -> None:
    """An injected 500 answers InternalServerError on that endpoint only; nothing is created."""
    server = sandbox(clock=clock, faults=Faults(http_500={endpoint: 1.0}), latency={"*": (0, 0)})
    with api(server) as client:
        run = client.post("/run", json=job())
        pid = "x" if endpoint == "run" else run.json()["id"]
        answers = {
            "run": run,
            "status": client.get(f"/status/{pid}"),
            "credits": client.get("/credits"),
            "cdn": client.get(f"{server.url}/cdn/{pid}/0.png"),
        }
    for name, answer in answers.items():
        if name == endpoint:
            assert (answer.status_code, error_of(answer)) == (500, "InternalServerError")
        elif not (endpoint == "run" and name in ("status", "cdn")):
            assert answer.status_code == 200, name
    assert len(server.state.predictions()) == (0 if endpoint == "run" else 1)
    assert server.state.faults_injected == {"http_500": 1}


@pytest.mark.parametrize("endpoint", ["run", "status", "credits", "cdn"])
def test_dropped_connection(sandbox: StartSandbox, clock: ManualClock, endpoint: str) -> None:
    """A drop is a protocol error for httpx; a dropped /run creates nothing."""
    server = sandbox(clock=clock, faults=Faults(drop={endpoint: 1.0}), latency={"*": (0, 0)})
    with api(server) as client:
        if endpoint == "run":
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                client.post("/run", json=job())
            assert server.state.predictions() == []
        else:
            pid = client.post("/run", json=job()).json()["id"]
            path = {
                "status": f"/status/{pid}",
                "credits": "/credits",
                "cdn": f"{server.url}/cdn/{pid}/0.png",
            }
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                client.get(path[endpoint])
            assert server.state.prediction(pid).first_seen_finished_at is None
        assert client.get("/credits" if endpoint != "credits" else "/status/x").status_code in (
            200,
            404,
        )
    assert server.state.faults_injected == {"drop": 1}


@pytest.mark.parametrize("drop_share", [0.0, 1.0])
def test_lost_answer_creates_and_charges(sandbox: StartSandbox, drop_share: float) -> None:
    """The prediction exists and is charged although the client saw a 500 or a dropped socket."""
    faults = Faults(lost_answer=1.0, lost_answer_drop=drop_share)
    server = sandbox(faults=faults)
    body = job("tryon-max")
    with api(server) as client:
        for _ in range(2):
            if drop_share:
                with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                    client.post("/run", json=body)
            else:
                assert client.post("/run", json=body).status_code == 500
    state = server.state
    assert [p.lost_answer for p in state.predictions()] == [True, True]
    assert state.credits_charged == 4 and state.balance == 10_000 - 4
    assert state.runs_by_fingerprint() == {fingerprint("tryon-max", body["inputs"]): 2}
    assert state.faults_injected == {"lost_answer": 2}


def test_slow_answer_is_delayed_not_changed(sandbox: StartSandbox) -> None:
    """A slow answer arrives complete; the server records that it delayed it."""
    faults = Faults(slow={"credits": 1.0}, slow_seconds=(10.0, 10.0))
    server = sandbox(time_scale=0.01, faults=faults)
    with api(server) as client:
        assert client.get("/credits").json()["credits"]["total"] == 10_000
    assert server.state.faults_injected == {"slow": 1}


def test_http_faults_are_seeded_per_job(sandbox: StartSandbox) -> None:
    """Resending a job sees the same 500s whatever other jobs do in between."""
    faults = Faults(http_500={"run": 0.5})
    bodies = [job(prompt=str(n)) for n in range(4)]
    outcomes = []
    for order in ([0, 1, 2, 3] * 3, [3, 2, 1, 0] * 3):
        server = sandbox(faults=faults, limits=Limits.unlimited())
        seen: dict[int, list[int]] = {}
        with api(server) as client:
            for n in order:
                seen.setdefault(n, []).append(client.post("/run", json=bodies[n]).status_code)
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert {500, 200} <= {code for codes in outcomes[0].values() for code in codes}


def test_outputs_are_served_with_the_right_type(sandbox: StartSandbox, clock: ManualClock) -> None:
    """Completed outputs are real PNG and MP4 files at /cdn, without auth, one per output."""
    server = sandbox(clock=clock, latency={"*": (1.0, 1.0)})
    with api(server) as client:
        image = client.post("/run", json=job("tryon-max", num_images=3, output_format="png"))
        video = client.post("/run", json=job("image-to-video"))
        clock.advance(1.0)
        image_urls = client.get(f"/status/{image.json()['id']}").json()["output"]
        video_urls = client.get(f"/status/{video.json()['id']}").json()["output"]
    assert len(image_urls) == 3 and len(video_urls) == 1
    with httpx.Client() as anonymous:
        files = [anonymous.get(url) for url in image_urls]
        movie = anonymous.get(video_urls[0])
    for index, response in enumerate(files):
        assert response.headers["content-type"] == "image/png"
        check_png(response.content)
        assert response.content == server.state.output_bytes(image.json()["id"], index)
    assert len({f.content for f in files}) == 3
    assert movie.headers["content-type"] == "video/mp4" and movie.content[4:12] == b"ftypisom"
    assert video_urls[0].endswith("/0.mp4")


def check_jpeg(data: bytes) -> bytes:
    """A baseline JPEG, 8x8 with three components, whose segments are well formed up to
    the scan and whose entropy data is byte-stuffed; returns its COM segment."""
    assert data[:3] == b"\xff\xd8\xff" and data[-2:] == b"\xff\xd9"
    pos, segments = 2, {}
    while data[pos + 1] != 0xDA:  # up to the start of scan
        assert data[pos] == 0xFF
        marker, (length,) = data[pos + 1], struct.unpack(">H", data[pos + 2 : pos + 4])
        segments[marker] = data[pos + 4 : pos + 2 + length]
        pos += 2 + length
    assert set(segments) == {0xE0, 0xFE, 0xDB, 0xC0, 0xC4}
    assert segments[0xE0].startswith(b"JFIF\x00")
    assert struct.unpack(">BHHB", segments[0xC0][:6]) == (8, 8, 8, 3)  # SOF0: baseline
    (sos_length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
    scan = data[pos + 2 + sos_length : -2]
    assert scan and all(scan[i + 1] == 0 for i, b in enumerate(scan) if b == 0xFF)
    return segments[0xFE]


def test_jpeg_outputs_when_the_job_asks_for_jpeg(sandbox: StartSandbox, clock: ManualClock) -> None:
    """output_format: jpeg serves real JPEG files at .jpg URLs as image/jpeg (data URIs
    say image/jpeg too); a model without output_format keeps PNG."""
    server = sandbox(clock=clock, latency={"*": (1.0, 1.0)})
    with api(server) as client:
        image = client.post("/run", json=job("tryon-max", num_images=2, output_format="jpeg"))
        inline = client.post("/run", json=job("edit", output_format="jpeg", return_base64=True))
        plain = client.post("/run", json=job("background-remove", output_format="jpeg"))
        clock.advance(1.0)
        urls = client.get(f"/status/{image.json()['id']}").json()["output"]
        (uri,) = client.get(f"/status/{inline.json()['id']}").json()["output"]
        (png_url,) = client.get(f"/status/{plain.json()['id']}").json()["output"]
        files = [client.get(url) for url in urls]
        wrong_extension = client.get(urls[0].removesuffix(".jpg") + ".png")
    pid = image.json()["id"]
    assert [url.rsplit("/", 1)[1] for url in urls] == ["0.jpg", "1.jpg"]
    for index, response in enumerate(files):
        assert response.headers["content-type"] == "image/jpeg"
        assert check_jpeg(response.content) == f"0/{pid}/{index}".encode()
        assert response.content == server.state.output_bytes(pid, index)
        assert output_extension(response.content) == "jpg"
    assert files[0].content != files[1].content
    assert wrong_extension.status_code == 404
    prefix = "data:image/jpeg;base64,"
    assert uri.startswith(prefix)
    check_jpeg(base64.b64decode(uri[len(prefix) :]))
    assert png_url.endswith("/0.png")
    assert [p.output_urls[0][-4:] for p in server.state.predictions() if p.output_urls] == [
        ".jpg",
        ".png",
    ]


def test_jpeg_outputs_decode(tmp_path: Any) -> None:
    """libjpeg (through Pillow) decodes the sandbox's JPEGs to 8x8 pixels of one colour each."""
    from PIL import Image

    colours = set()
    for n in range(20):
        path = tmp_path / f"{n}.jpg"
        path.write_bytes(images.jpeg_bytes(f"3/prediction-{n}/0"))
        with Image.open(path) as image:
            image.load()  # raises on truncated or corrupt data
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (8, 8))
            pixels = {c for _n, c in image.getcolors(64) or []}
        assert len(pixels) == 1
        colours |= pixels
    assert len(colours) == 20


def test_cdn_urls_expire(sandbox: StartSandbox, clock: ManualClock) -> None:
    """After url_ttl the output URL answers 403 and the status 404."""
    server = sandbox(clock=clock, latency={"*": (1.0, 1.0)}, url_ttl=100.0)
    with api(server) as client:
        pid = client.post("/run", json=job()).json()["id"]
        assert client.get(f"{server.url}/cdn/{pid}/0.png").status_code == 404  # not done yet
        clock.advance(1.0)
        (url,) = client.get(f"/status/{pid}").json()["output"]
        assert client.get(url).status_code == 200
        assert client.get(f"{server.url}/cdn/{pid}/1.png").status_code == 404
        clock.advance(100.0)
        assert client.get(url).status_code == 403
        gone = client.get(f"/status/{pid}")
    assert (gone.status_code, error_of(gone)) == (404, "NotFound")
    assert server.state.rejections == {"NotFound": 3, "Expired": 1}


def test_base64_outputs_expire(sandbox: StartSandbox, clock: ManualClock) -> None:
    """return_base64 outputs are data URIs of the same PNG, and vanish after base64_ttl."""
    server = sandbox(clock=clock, latency={"*": (1.0, 1.0)}, base64_ttl=10.0)
    with api(server) as client:
        pid = client.post("/run", json=job("edit", return_base64=True, num_images=2)).json()["id"]
        assert client.get(f"/status/{pid}").json()["output"] is None
        clock.advance(1.0)
        outputs = client.get(f"/status/{pid}").json()["output"]
        clock.advance(10.0)
        assert client.get(f"/status/{pid}").status_code == 404
    prefix = "data:image/png;base64,"
    assert all(o.startswith(prefix) for o in outputs) and len(outputs) == 2
    assert base64.b64decode(outputs[1][len(prefix) :]) == server.state.output_bytes(pid, 1)
    assert server.state.prediction(pid).output_urls == ()


def test_unknown_prediction_is_404(sandbox: StartSandbox) -> None:
    """An id the sandbox never issued answers 404 NotFound."""
    server = sandbox()
    with api(server) as client:
        response = client.get("/status/123a87r9-4129-4bb3-be18-9c9fb5bd7fc1-u1")
    assert (response.status_code, error_of(response)) == (404, "NotFound")


def test_same_seed_same_results_in_any_order(sandbox: StartSandbox) -> None:
    """Two servers, one seed, jobs in opposite orders: same latencies, failures and bytes."""
    bodies = [job("edit", prompt=f"job {n}") for n in range(5)] + [job("edit", prompt="job 1")]
    results = []
    for order in (range(6), reversed(range(6))):
        clock = ManualClock()
        server = sandbox(clock=clock, seed=3, faults=Faults(failure=0.4), limits=Limits.unlimited())
        with api(server) as client:
            ids = [client.post("/run", json=bodies[n]).json()["id"] for n in order]
            clock.advance(100.0)
            answers = [client.get(f"/status/{pid}").json() for pid in ids]
            files = {a["id"]: client.get(a["output"][0]).content for a in answers if a["output"]}
        results.append(
            {
                (p.fingerprint, p.submission): (
                    p.finished_at - p.accepted_at,
                    p.error,
                    files.get(p.id),
                )
                for p in server.state.predictions()
            }
        )
    assert results[0] == results[1]
    assert {error for _, error, _ in results[0].values()} - {None}


def test_inspection_of_a_known_sequence(sandbox: StartSandbox, clock: ManualClock) -> None:
    """Arrival times, max_in_window and max_in_flight are what the requests made them."""
    server = sandbox(clock=clock, limits=Limits.unlimited())
    with api(server) as client:
        for step, seconds in ((0.0, 5), (1.0, 1), (1.0, 5), (1.0, 1)):
            clock.advance(step)
            client.post("/run", json=job("edit", prompt=f"sandbox:seconds={seconds} {step}"))
            client.get("/credits")
        in_flight = server.state.in_flight()
        clock.advance(10.0)
        client.get("/credits")
    state = server.state
    assert state.arrivals("run") == [1000.0, 1001.0, 1002.0, 1003.0]
    assert state.max_in_window("run", 2.0) == 2 and state.max_in_window("run", 2.001) == 3
    assert state.max_in_window("credits") == 4  # FASHN's 10 s window, though lifted here
    assert (in_flight, state.max_in_flight(), state.in_flight()) == (3, 3, 0)


def test_admin_endpoints(sandbox: StartSandbox, clock: ManualClock) -> None:
    """/_sandbox/stats, /predictions and /arrivals serve the state's numbers without auth."""
    server = sandbox(clock=clock, latency={"*": (1.0, 1.0)})
    with api(server) as client:
        pid = client.post("/run", json=job("tryon-max")).json()["id"]
        client.post("/run", json={"model_name": "nope", "inputs": {}})
        clock.advance(1.0)
        client.get(f"/status/{pid}")
    with httpx.Client(base_url=f"{server.url}/_sandbox") as admin:
        stats = admin.get("/stats").json()
        records = admin.get("/predictions").json()["predictions"]
        arrivals = admin.get("/arrivals/run").json()
        assert admin.get("/arrivals/nope").status_code == 404
    assert stats["balance"] == 10_000 - 2 and stats["credits_charged"] == 2
    assert stats["arrivals"] == {"run": 2, "status": 1, "credits": 0, "cdn": 0}
    assert stats["rejections"] == {"BadRequest": 1} and stats["max_in_flight"] == 1
    assert stats["predictions"] == {"total": 1, "completed": 1}
    assert stats["max_in_window"] == {"run": 2, "status": 1, "credits": 0}
    assert arrivals == {"endpoint": "run", "arrivals": [1000.0, 1000.0]}
    (record,) = records
    assert record["id"] == pid and record["status"] == "completed"
    assert record["first_seen_finished_at"] == 1001.0 and record["output_urls"][0].endswith(".png")


def test_run_forever_serves_until_interrupted(tmp_path: Any) -> None:
    """The foreground server answers, then exits cleanly on SIGINT (what Ctrl-C sends)."""
    script = (
        "from orchestrator.sandbox import SandboxConfig, SandboxServer\n"
        "SandboxServer(SandboxConfig(api_key='k')).run_forever("
        "on_ready=lambda s: print(s.base_url, flush=True))\n"
    )
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            auth = {"Authorization": "Bearer k"}
            response = httpx.get(f"{base_url}/credits", headers=auth, timeout=10)
            assert response.json()["credits"]["total"] == 10_000
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()

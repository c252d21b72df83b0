"""A sandbox bound to every interface: it says so, and the URLs it hands out name a host
a client can reach, never 0.0.0.0. Only loopback is ever contacted."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest

from orchestrator.sandbox import SandboxConfig, SandboxServer
from orchestrator.sandbox.server import exposure_warning

from .helpers import AUTH, ManualClock, job


def assert_loopback(url: str) -> None:
    host = urlsplit(url).hostname or ""
    assert host != "0.0.0.0" and "0.0.0.0" not in url, url
    assert host == "localhost" or ipaddress.ip_address(host).is_loopback, url


def test_output_urls_of_a_wildcard_sandbox_name_a_reachable_host() -> None:
    """Bound on 0.0.0.0: the URLs printed and handed out name the host the client used
    (or 127.0.0.1), and they download."""
    clock = ManualClock()
    server = SandboxServer(SandboxConfig(), host="0.0.0.0", port=0, clock=clock)
    with server:
        assert_loopback(server.base_url)
        root = f"http://127.0.0.1:{server.port}"
        with httpx.Client(base_url=f"{root}/v1", headers=AUTH, timeout=10) as client:
            prediction = client.post("/run", json=job()).json()["id"]
            clock.advance(3600)
            body = client.get(f"/status/{prediction}").json()
            assert body["status"] == "completed" and body["output"], body
            for url in body["output"]:
                assert url.startswith(root + "/"), url
                assert httpx.get(url, timeout=10).status_code == 200
            # A client that dialled 0.0.0.0 itself still gets a usable URL.
            odd = client.get(f"/status/{prediction}", headers={"Host": f"0.0.0.0:{server.port}"})
            for url in odd.json()["output"]:
                assert_loopback(url)
            for record in server.state.predictions():
                for url in record.output_urls:
                    assert_loopback(url)


@pytest.mark.parametrize(
    ("host", "exposed"),
    [
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("localhost", False),
        ("0.0.0.0", True),
        ("::", True),
        ("192.0.2.10", True),
    ],
)
def test_only_loopback_hosts_are_quiet(host: str, exposed: bool) -> None:
    assert (exposure_warning(host, 8787) is not None) == exposed
    assert "0.0.0.0" not in SandboxServer(host=host, port=8787).url


def test_the_sandbox_command_warns_when_it_listens_beyond_loopback() -> None:
    """`orchestrator sandbox --host 0.0.0.0`: a warning, and a URL that is not 0.0.0.0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "sandbox", "--host", "0.0.0.0", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline()
        warning = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        finally:
            proc.kill()  # never leave it running (or its pipe open) for the next test
            proc.communicate()
    assert proc.returncode == 0, "Ctrl-C right after the announcement stops it cleanly"
    url = re.search(r"http://\S+/v1", ready)
    assert url, ready
    assert_loopback(url.group(0))
    assert "warning" in warning and "0.0.0.0" in warning and "network" in warning, warning

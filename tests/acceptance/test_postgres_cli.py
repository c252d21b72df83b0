"""The `orchestrator` command on a PostgreSQL queue: the same commands, `--db` a URL
(or ORCHESTRATOR_DB), and the URL's password never printed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.store import DbLocation

from ..postgres import fresh_database
from .conftest import SCALE
from .test_cli import LIMITS, cli, write_manifest


@pytest.fixture
def pg() -> Iterator[DbLocation]:
    with fresh_database() as location:
        yield location


def test_submit_status_and_list_on_postgresql(api, pg: DbLocation, tmp_path: Path) -> None:
    """submit, then status and list from other processes, all on one PostgreSQL queue
    named by ORCHESTRATOR_DB: every job completes, and the status says so."""
    server, env = api
    env = {**env, "ORCHESTRATOR_DB": pg.url.render_as_string(hide_password=False)}
    manifest = write_manifest(tmp_path / "night.csv", 8)
    done = cli("submit", str(manifest), "--out", str(tmp_path / "out"), *LIMITS, env=env)
    assert done.returncode == 0, done.stderr
    status = cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    counts = json.loads(status.stdout)["counts"]
    assert counts["completed"] == sum(counts.values()) == 8
    listed = cli("list", "--json", env=env)
    assert [b["batch"] for b in json.loads(listed.stdout)] == ["night"]
    assert len(list((tmp_path / "out" / "night").iterdir())) == 8
    assert server.state.config.time_scale == SCALE


def test_an_unreachable_database_is_a_usage_error_without_the_password(tmp_path: Path) -> None:
    """A server that does not answer: exit 2, the URL shown with its password masked."""
    url = "postgresql+psycopg://orchestrator:pa55-w0rd-XYZ@127.0.0.1:9/queue"
    result = cli("status", "--db", url)
    assert result.returncode == 2
    assert "cannot open the queue at postgresql+psycopg://orchestrator:***@127.0.0.1:9/queue" in (
        " ".join(result.stderr.split())
    )
    assert "pa55-w0rd-XYZ" not in result.stderr + result.stdout


def test_a_database_without_the_queue_is_no_queue(pg: DbLocation) -> None:
    """status on an empty PostgreSQL database: exit 2, nothing created there."""
    result = cli("status", "--db", str(pg))
    assert result.returncode == 2
    assert "no queue at" in result.stderr

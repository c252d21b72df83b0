"""Name templates, --reuse and the CSV report through the `orchestrator` command, as a
subprocess against a sandbox over loopback."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .test_cli import LIMITS, cli


def catalog(path: Path, skus: list[str]) -> Path:
    lines = ["id,model_name,inputs.image,meta.sku"]
    lines += [
        f"sku-{i},background-remove,https://cdn.example/{i}.png,{sku}" for i, sku in enumerate(skus)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_clashing_template_exits_2_naming_the_line_and_sends_nothing(  # type: ignore[no-untyped-def]
    api, tmp_path: Path
) -> None:
    """Two jobs on one SKU folder: exit 2 with file:line and what to do; no /run, no queue."""
    server, env = api
    manifest = catalog(tmp_path / "m.csv", ["A-1", "B-2", "a-1"])
    db = tmp_path / "q.db"
    done = cli(
        "submit",
        str(manifest),
        "--db",
        str(db),
        "--out",
        str(tmp_path / "out"),
        "--name-template",
        "{meta.sku}/{n}.{ext}",
        *LIMITS,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert f"{manifest}:4: name-template: job 'sku-2'" in done.stderr
    assert "--name-template" in done.stderr
    assert server.state.arrivals("run") == []
    assert not db.exists()


def test_an_unknown_template_field_is_a_usage_error(tmp_path: Path) -> None:
    """{sku} is not a field: exit 2 listing the fields, before the manifest is read."""
    done = cli(
        "submit",
        str(tmp_path / "absent.csv"),
        "--queue-only",
        "--db",
        str(tmp_path / "q.db"),
        env={"ORCHESTRATOR_NAME_TEMPLATE": "{sku}/{n}.{ext}"},
    )
    assert done.returncode == 2
    assert "unknown field {sku}" in done.stderr and "{meta.<name>}" in done.stderr


def test_reuse_from_the_environment_and_a_csv_report_per_output(  # type: ignore[no-untyped-def]
    api, tmp_path: Path
) -> None:
    """A second batch with ORCHESTRATOR_REUSE=1 sends no /run; the CSV report names the
    job each output was reused from, and its files have the first batch's sha256."""
    server, env = api
    manifest = catalog(tmp_path / "m.csv", ["A-1", "B-2"])
    common = ["--db", str(tmp_path / "q.db"), "--out", str(tmp_path / "out"), *LIMITS]
    first = cli("submit", str(manifest), "--batch", "first", *common, env=env)
    assert first.returncode == 0, first.stderr
    runs = len(server.state.arrivals("run"))
    again = cli(
        "submit",
        str(manifest),
        "--batch",
        "again",
        "--name-template",
        "{batch}/{meta.sku}/{n}.{ext}",
        *common,
        env={**env, "ORCHESTRATOR_REUSE": "1"},
    )
    assert again.returncode == 0, again.stderr
    assert "2 reuse earlier outputs" in again.stderr
    assert len(server.state.arrivals("run")) == runs
    done = cli("report", "--format", "csv", "--db", str(tmp_path / "q.db"), env=env)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    by_batch = {(r["batch"], r["id"]): r for r in rows}
    for job in ("sku-0", "sku-1"):
        reused = by_batch["again", job]
        assert (reused["reused_batch"], reused["reused_id"], reused["credits"]) == (
            "first",
            job,
            "0",
        )
        assert reused["output_sha256"] == by_batch["first", job]["output_sha256"]
        assert Path(reused["output_path"]).parent.name == reused["meta.sku"]

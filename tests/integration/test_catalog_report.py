"""The catalog's own data and where outputs go, on a real SQLite file and the sandbox:
meta from every manifest format into every report, a CSV row per output, name
templates that write where they say, and templates refused before anything is queued."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.catalog import credits_for
from orchestrator.models import content_token
from orchestrator.naming import NameTemplate, NameTemplateError
from orchestrator.report import job_reports, write_report
from orchestrator.service import queue_manifest
from orchestrator.store import Store

from ..conftest import run, settings_for
from ..unit.test_manifest import png_bytes

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def report(store: Store, batches: list[str], fmt: str, per: str = "output") -> Any:
    out = io.StringIO()
    write_report(store, batches, out, fmt=fmt, per=per)
    if fmt == "json":
        return json.loads(out.getvalue())
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_csv_report_has_a_row_per_output_and_every_column(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """A two-image job gives two rows, a failed job one with empty output cells; every
    cell one value: where from, inputs (data URIs as tokens), meta, output, times."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    (tmp_path / "shoe.png").write_bytes(png_bytes())
    manifest = write(
        tmp_path / "cat.yaml",
        """
        batch: cat
        jobs:
          - id: look
            model_name: tryon-max
            inputs: {model_image: "https://x/m", product_image: "https://x/p", num_images: 2}
            meta: {sku: A-1, page: "https://shop.example/a b"}
          - id: cutout
            model_name: background-remove
            inputs: {image: shoe.png}
            meta: {sku: B-2}
          - id: broken
            model_name: background-remove
            inputs: {image: "https://x/b.png?sandbox:fail=PoseError:1"}
        """,
    )
    queue_manifest(store, manifest)
    run(store, settings_for(server, tmp_path / "out"), ["cat"])
    rows = report(store, ["cat"], "csv")

    assert [(r["id"], r["output_index"]) for r in rows] == [
        ("look", "0"),
        ("look", "1"),
        ("cutout", "0"),
        ("broken", ""),
    ]
    assert {r["manifest"] for r in rows} == {str(manifest)}
    assert [r["line"] for r in rows] == ["3", "3", "7", "11"]
    assert rows[0]["meta.page"] == "https://shop.example/a b"
    assert [r["meta.sku"] for r in rows] == ["A-1", "A-1", "B-2", ""]
    assert rows[0]["inputs.num_images"] == "2"
    uri = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    assert rows[2]["inputs.image"] == content_token(uri)
    for row in rows[:3]:
        data = Path(row["output_path"]).read_bytes()
        assert row["output_size"] == str(len(data))
        assert row["output_sha256"] == hashlib.sha256(data).hexdigest()
        assert (row["state"], row["attempts"], row["error"]) == ("completed", "1", "")
        assert ISO_UTC.fullmatch(row["started_at"]) and ISO_UTC.fullmatch(row["finished_at"])
        assert " " not in row["prediction_id"] and row["prediction_id"]
    two_images = {"num_images": 2}
    assert rows[0]["credits"] == str(credits_for("tryon-max", two_images))
    broken = rows[3]
    assert (broken["state"], broken["credits"], broken["output_path"]) == ("failed", "0", "")
    assert "PoseError" in broken["error"]
    assert [r["id"] for r in report(store, ["cat"], "csv", per="job")] == [
        "look",
        "cutout",
        "broken",
    ]
    look = report(store, ["cat"], "json")[0]
    assert [o["size"] for o in look["outputs"]] == [int(r["output_size"]) for r in rows[:2]]
    assert look["meta"] == {"sku": "A-1", "page": "https://shop.example/a b"}


def test_meta_round_trips_from_every_format_into_every_report(store: Store, tmp_path: Path) -> None:
    """YAML, JSON Lines and CSV meta come back in the JSON report and as CSV columns."""
    image = "https://x/a.png"
    manifests = [
        write(
            tmp_path / "y.yaml",
            f"""
            jobs:
              - {{id: a, model_name: background-remove, inputs: {{image: "{image}"}},
                  meta: {{sku: Y-1, size: {{eu: 42}}, sale: true}}}}
            """,
        ),
        write(
            tmp_path / "j.jsonl",
            json.dumps(
                {
                    "id": "a",
                    "model_name": "background-remove",
                    "inputs": {"image": image},
                    "meta": {"sku": "J-1", "price": 19.5},
                }
            )
            + "\n",
        ),
        write(
            tmp_path / "c.csv",
            f"""
            id,model_name,inputs.image,meta.sku,meta.season
            a,background-remove,{image},00C-1,SS26
            """,
        ),
    ]
    for manifest in manifests:
        queue_manifest(store, manifest)
    expected = {
        "y": {"sku": "Y-1", "size": {"eu": 42}, "sale": True},
        "j": {"sku": "J-1", "price": 19.5},
        "c": {"sku": "00C-1", "season": "SS26"},
    }
    batches = ["y", "j", "c"]
    assert {j["batch"]: j["meta"] for j in report(store, batches, "json")} == expected
    rows = {r["batch"]: r for r in report(store, batches, "csv")}
    assert [k for k in rows["y"] if k.startswith("meta.")] == [
        "meta.price",
        "meta.sale",
        "meta.season",
        "meta.size",
        "meta.sku",
    ]
    assert (rows["y"]["meta.size"], rows["y"]["meta.sale"]) == ('{"eu":42}', "true")
    assert (rows["j"]["meta.price"], rows["j"]["meta.season"]) == ("19.5", "")
    assert (rows["c"]["meta.sku"], rows["c"]["meta.season"]) == ("00C-1", "SS26")


def test_a_meta_template_writes_there_and_is_kept_with_the_batch(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """{meta.sku} names the folder; a later process (resume) uses the stored template."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    manifest = write(
        tmp_path / "m.csv",
        """
        id,model_name,inputs.model_image,inputs.product_image,inputs.num_images,meta.sku
        a,tryon-max,https://x/m.png,https://x/a.png,2,SKU-A
        b,tryon-max,https://x/m.png,https://x/b.png,1,SKU-B
        """,
    )
    template = NameTemplate.parse("{batch}/{meta.sku}/{model}-{n}.{ext}")
    queue_manifest(store, manifest, template=template)
    queue_manifest(store, manifest)  # submitted again without a template: it stays
    out = tmp_path / "out"
    assert run(reopen(), settings_for(server, out), ["m"]).counts == {"completed": 2}
    saved = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert saved == [
        "m/SKU-A/tryon-max-0.png",
        "m/SKU-A/tryon-max-1.png",
        "m/SKU-B/tryon-max-0.png",
    ]
    paths = [r["output_path"] for r in report(store, ["m"], "csv")]
    assert paths == [str(out / name) for name in saved]


CSV_HEAD = "id,model_name,inputs.image,meta.sku\n"


@pytest.mark.parametrize(
    ("rows", "template", "line", "field", "says"),
    [
        ("a,background-remove,https://x/a.png,S1\nb,background-remove,https://x/b.png,s1\n",
         "{batch}/{meta.sku}/{n}.{ext}", 3, "name-template", "as job 'a' ("),
        ("a,background-remove,https://x/a.png,S1\nb,background-remove,https://x/b.png,../S1\n",
         "{batch}/{meta.sku}/{n}.{ext}", 3, "meta.sku", "may not hold '/'"),
        ("a,background-remove,https://x/a.png,S1\nb,background-remove,https://x/b.png,..\n",
         "{batch}/{meta.sku}/{n}.{ext}", 3, "name-template", "'..' part"),
        ("a,background-remove,https://x/a.png,S1\nb,background-remove,https://x/b.png,\n",
         "{batch}/{meta.sku}/{n}.{ext}", 3, "meta.sku", "has no meta.sku"),
        ("a,a-new-model,https://x/a.png,S1\n",
         "{batch}/{meta.sku}.{ext}", 2, "name-template", "add {n}"),
    ],
)  # fmt: skip
def test_a_template_that_cannot_name_every_output_queues_nothing(
    store: Store, tmp_path: Path, rows: str, template: str, line: int, field: str, says: str
) -> None:
    """Collisions (also in letter case), separators, `..`, missing meta and outputs
    without {n}: refused with the job's line, and nothing is queued."""
    manifest = write(tmp_path / "m.csv", CSV_HEAD + rows)
    with pytest.raises(NameTemplateError) as err:
        queue_manifest(store, manifest, template=NameTemplate.parse(template))
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.field) == (str(manifest), line, field)
    assert says in problem.message
    assert "nothing was queued" in str(err.value)
    assert store.batch_ids() == [] and store.state_counts(None) == {}


def test_a_template_without_batch_is_checked_against_other_batches(
    store: Store, tmp_path: Path
) -> None:
    """Two batches named by SKU alone would overwrite each other: the second is refused,
    and with {batch} first it is queued; resume cannot switch to the clashing one."""
    manifest = write(tmp_path / "m.csv", CSV_HEAD + "a,background-remove,https://x/a.png,S1\n")
    by_sku = NameTemplate.parse("{meta.sku}/{n}.{ext}")
    queue_manifest(store, manifest, batch="one", template=by_sku)
    with pytest.raises(NameTemplateError, match="as job 'a' of batch 'one'"):
        queue_manifest(store, manifest, batch="two", template=by_sku)
    assert store.batch_ids() == ["one"]
    queue_manifest(store, manifest, batch="two", template=NameTemplate.parse("{batch}/{id}.{ext}"))
    with pytest.raises(NameTemplateError):
        store.naming.set(["two"], by_sku)
    assert [j["outputs"] for j in job_reports(store, ["two"])] == [[]]
    rows = report(store, ["two"], "csv")
    assert [(r["id"], r["state"]) for r in rows] == [("a", "queued")]

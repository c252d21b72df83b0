"""A job's `meta` in every manifest format: read as written, never part of the
fingerprint, and refused with file, line and field when it cannot be kept."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from orchestrator.manifest import read_manifest
from orchestrator.manifest.meta import MAX_META_BYTES
from orchestrator.models import JobSpec

IMAGE = "https://cdn.example/shoe.png"


def read(path: Path, text: str) -> tuple[list[JobSpec], list[tuple[int | None, str | None, str]]]:
    path.write_text(textwrap.dedent(text).lstrip())
    manifest = read_manifest(path)
    jobs = list(manifest.jobs())
    return jobs, [(p.line, p.field, p.message) for p in manifest.problems]


def test_meta_is_read_alike_from_yaml_jsonl_and_csv(tmp_path: Path) -> None:
    """The same job with the same meta in three formats: same meta, same id."""
    yaml_jobs, _ = read(
        tmp_path / "m.yaml",
        f"""
        jobs:
          - model_name: background-remove
            inputs: {{image: "{IMAGE}"}}
            meta: {{sku: A-1042, page: "https://shop.example/a"}}
        """,
    )
    line = {"model_name": "background-remove", "inputs": {"image": IMAGE}}
    line["meta"] = {"sku": "A-1042", "page": "https://shop.example/a"}  # type: ignore[assignment]
    jsonl_jobs, _ = read(tmp_path / "m.jsonl", json.dumps(line) + "\n")
    csv_jobs, _ = read(
        tmp_path / "m.csv",
        f"""
        model_name,inputs.image,meta.sku,meta.page
        background-remove,{IMAGE},A-1042,https://shop.example/a
        """,
    )
    expected = {"sku": "A-1042", "page": "https://shop.example/a"}
    assert [j.meta for j in (*yaml_jobs, *jsonl_jobs, *csv_jobs)] == [expected] * 3
    assert len({j.id for j in (*yaml_jobs, *jsonl_jobs, *csv_jobs)}) == 1


def test_meta_is_not_part_of_the_fingerprint(tmp_path: Path) -> None:
    """Two jobs that differ only in meta have one fingerprint (and one derived id)."""
    jobs, problems = read(
        tmp_path / "m.jsonl",
        "\n".join(
            json.dumps({"model_name": "background-remove", "inputs": {"image": IMAGE}, **extra})
            for extra in ({}, {"meta": {"sku": "x"}})
        )
        + "\n",
    )
    assert problems == []
    assert jobs[0].fingerprint == jobs[1].fingerprint
    assert (jobs[0].meta, jobs[1].meta) == (None, {"sku": "x"})


def test_yaml_defaults_meta_is_merged_and_a_job_wins(tmp_path: Path) -> None:
    """defaults.meta goes into every job; a job's own names win, null removes one."""
    jobs, problems = read(
        tmp_path / "m.yaml",
        f"""
        defaults:
          model_name: background-remove
          meta: {{season: SS26, brand: north}}
        jobs:
          - {{id: a, inputs: {{image: "{IMAGE}"}}, meta: {{sku: A1}}}}
          - {{id: b, inputs: {{image: "{IMAGE}"}}, meta: {{season: AW26, brand: null}}}}
          - {{id: c, inputs: {{image: "{IMAGE}"}}}}
        """,
    )
    assert problems == []
    assert [j.meta for j in jobs] == [
        {"season": "SS26", "brand": "north", "sku": "A1"},
        {"season": "AW26"},
        {"season": "SS26", "brand": "north"},
    ]


def test_csv_meta_cells_stay_text_and_empty_cells_are_unset(tmp_path: Path) -> None:
    """A SKU such as 00123 keeps its zeros; an empty cell sets nothing."""
    jobs, problems = read(
        tmp_path / "m.csv",
        f"""
        id,model_name,inputs.image,meta.sku,meta.season
        a,background-remove,{IMAGE},00123,
        b,background-remove,{IMAGE},,
        """,
    )
    assert problems == []
    assert [j.meta for j in jobs] == [{"sku": "00123"}, None]


@pytest.mark.parametrize(
    ("meta", "field", "says"),
    [
        ("[1, 2]", "meta", "must be a mapping"),
        ('{"tags": ["a", "b"]}', "meta.tags", "write a list as text"),
        ('{"bad name": 1}', "meta.bad name", "invalid meta name"),
        ('{"-x": 1}', "meta.-x", "invalid meta name"),
        ('{"a": {"b": {"c": {"d": {"e": 1}}}}}', "meta.a.b.c.d", "more than 4 levels"),
        (json.dumps({"blob": "x" * MAX_META_BYTES}), "meta", "more than 8,192"),
        ('{"s": "\\ud800"}', "meta.s", "not valid Unicode"),
    ],
)
def test_meta_that_cannot_be_kept_is_a_problem(
    tmp_path: Path, meta: str, field: str, says: str
) -> None:
    """Lists, bad names, deep nesting, oversize and broken text: line and field named;
    that job is refused, the one before it is read."""
    job = f'{{"model_name": "background-remove", "inputs": {{"image": "{IMAGE}"}}'
    jobs, problems = read(tmp_path / "m.jsonl", f'{job}}}\n{job}, "meta": {meta}}}\n')
    assert len(jobs) == 1
    assert [(line, f) for line, f, _ in problems] == [(2, field)]
    assert says in problems[0][2]


def test_yaml_meta_problems_name_the_line_of_the_value(tmp_path: Path) -> None:
    """In YAML a bad meta value is reported at its own line."""
    jobs, problems = read(
        tmp_path / "m.yaml",
        f"""
        jobs:
          - model_name: background-remove
            inputs: {{image: "{IMAGE}"}}
            meta:
              sku: A1
              tags: [summer, sale]
        """,
    )
    assert jobs == []
    assert [(line, field) for line, field, _ in problems] == [(6, "meta.tags")]


def test_a_csv_meta_column_with_a_bad_name_is_refused(tmp_path: Path) -> None:
    """A header `meta.<name>` must spell a meta name."""
    _, problems = read(
        tmp_path / "m.csv",
        f"""
        model_name,inputs.image,meta.a b
        background-remove,{IMAGE},x
        """,
    )
    assert [(line, field) for line, field, _ in problems] == [(1, "meta.a b")]

"""Manifest.entries(): one stream of jobs, problems and refused jobs, in file order,
and jobs()/problems as an adapter over it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import Problem
from orchestrator.manifest import Entry, Manifest, RefusedJob, read_manifest, reading
from orchestrator.models import JobSpec

from .test_manifest import png_bytes


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ORCHESTRATOR_MAX_IMAGE_MB", raising=False)
    (tmp_path / "model.png").write_bytes(png_bytes())
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def kinds(entries: list[Entry]) -> list[tuple[str, int | None]]:
    """(kind, line) of each entry: what a reader of the stream sees, in order."""
    out: list[tuple[str, int | None]] = []
    for entry in entries:
        if isinstance(entry, JobSpec):
            out.append(("job", entry.location.line if entry.location else None))
        elif isinstance(entry, Problem):
            out.append(("problem", entry.line))
        else:
            out.append(("refused", entry.line))
    return out


CSV = (
    "id,model_name,inputs.image\n"
    "a,background-remove,model.png\n"  # 2: valid
    "b,background-remove,missing.png\n"  # 3: refused, valid id
    "b/c,background-remove,model.png\n"  # 4: invalid id: a problem, no RefusedJob
    "d,background-remove,https://cdn.example/d.png\n"  # 5: valid
)


def test_entries_interleave_jobs_problems_and_refused_jobs_in_file_order(folder: Path) -> None:
    m = read_manifest(write(folder, "m.csv", CSV))
    entries = list(m.entries())
    assert kinds(entries) == [
        ("job", 2),
        ("problem", 3),
        ("refused", 3),
        ("problem", 4),
        ("job", 5),
    ]
    assert entries[2] == RefusedJob("b", 3)
    # entries() hands everything on in the stream: the adapter's lists stay untouched.
    assert m.problems == [] and m.problems.rejected == []


def test_jobs_and_problems_are_the_same_reading_split_in_two(folder: Path) -> None:
    path = write(folder, "m.csv", CSV)
    entries = list(read_manifest(path).entries())
    m = read_manifest(path)
    jobs = list(m.jobs())
    assert jobs == [e for e in entries if isinstance(e, JobSpec)]
    assert m.problems == [e for e in entries if isinstance(e, Problem)]
    assert m.problems.rejected == [(e.id, e.line) for e in entries if isinstance(e, RefusedJob)]


def test_entries_stream_before_a_later_bad_row_is_read(folder: Path) -> None:
    rows = "".join(f"background-remove,https://cdn.example/{i}.png\n" for i in range(20_000))
    path = write(folder, "m.csv", "model_name,inputs.image\n" + rows + "background-remove,\n")
    stream = read_manifest(path).entries()
    first = next(stream)
    assert isinstance(first, JobSpec) and first.location is not None
    assert first.location.line == 2
    rest = list(stream)
    assert kinds(rest)[-1] == ("problem", 20_002)


def test_entries_are_not_capped_the_listing_is(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream carries every problem; only the problems list stops at MAX_PROBLEMS."""
    monkeypatch.setattr(reading, "MAX_PROBLEMS", 3)
    rows = "".join(f"r{i},background-remove,missing-{i}.png\n" for i in range(10))
    path = write(folder, "m.csv", "id,model_name,inputs.image\n" + rows)
    m = read_manifest(path)
    entries = list(m.entries())
    assert sum(isinstance(e, Problem) for e in entries) == 10
    assert sum(isinstance(e, RefusedJob) for e in entries) == 10
    assert list(m.jobs()) == []
    assert (len(m.problems), m.problems.unlisted, len(m.problems.rejected)) == (3, 7, 3)


def test_a_problem_found_in_every_job_is_yielded_once(folder: Path) -> None:
    path = write(folder, "m.yaml", """
        defaults:
          inputs:
            model_image: nowhere.png
        jobs:
          - model_name: tryon-max
            inputs: {product_image: model.png}
          - model_name: tryon-max
            inputs: {product_image: model.png}
        """)  # fmt: skip
    problems = [e for e in read_manifest(path).entries() if isinstance(e, Problem)]
    assert [(p.line, p.field) for p in problems] == [(3, "inputs.model_image")]


def test_problems_found_on_opening_come_first_on_every_reading(folder: Path) -> None:
    path = write(folder, "m.yaml", """
        colour: red
        jobs:
          - model_name: background-remove
            inputs: {image: model.png}
        """)  # fmt: skip
    m = read_manifest(path)
    assert [(p.line, p.field) for p in m.problems] == [(1, "colour")]  # known on opening
    for _ in range(2):
        assert kinds(list(m.entries())) == [("problem", 1), ("job", 3)]


def test_an_empty_manifest_yields_one_problem(folder: Path) -> None:
    path = write(folder, "m.jsonl", "\n")
    (entry,) = list(read_manifest(path).entries())
    assert isinstance(entry, Problem)
    assert (entry.line, entry.field) == (None, "jobs")


def test_warnings_are_collected_afresh_by_each_reading(folder: Path) -> None:
    path = write(folder, "m.jsonl", '{"model_name": "brand-new", "inputs": {}}\n' * 3)
    m = read_manifest(path)
    for _ in range(2):
        entries = list(m.entries())
        assert [type(e) for e in entries] == [JobSpec] * 3
        assert len(m.warnings) == 1 and "unknown model" in m.warnings[0].message


def test_entries_of_a_manifest_of_unknown_type(folder: Path) -> None:
    m = Manifest(write(folder, "m.txt", "x"))
    (entry,) = list(m.entries())
    assert isinstance(entry, Problem) and "unsupported manifest type '.txt'" in entry.message


def test_inline_data_uri_that_is_not_ascii_is_a_problem(folder: Path) -> None:
    """It used to escape as a ValueError traceback."""
    path = write(folder, "m.jsonl", '{"model_name": "background-remove",'
                 ' "inputs": {"image": "data:image/png;base64,\\u00e9AAA"}}\n')  # fmt: skip
    (entry,) = list(read_manifest(path).entries())
    assert isinstance(entry, Problem)
    assert (entry.line, entry.field) == (1, "inputs.image")
    assert entry.message.startswith("data URI is not valid base64 (")

"""Manifest reading: formats, validation problems (file, line, field, message), ids, images."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import struct
import textwrap
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestrator.errors import ManifestError
from orchestrator.manifest import Manifest, read_manifest, reading
from orchestrator.manifest.images import LRU, ImageResolver, sniff
from orchestrator.models import JobSpec, canonical_json, fingerprint, fingerprint_of_json

ROOT = Path(__file__).resolve().parents[2]


# -- image fixtures -----------------------------------------------------------------


def png_bytes(rgb: tuple[int, int, int] = (200, 30, 50), side: int = 4) -> bytes:
    """A real side×side RGB PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * side for _ in range(side))
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)),
            chunk(b"IDAT", zlib.compress(rows)),
            chunk(b"IEND", b""),
        )
    )


# Only the first bytes matter to the reader (it sniffs, it does not decode).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
GIF = b"GIF89a" + b"\x01\x00\x01\x00" + b"\x00" * 10
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8 " + b"\x00" * 14
BMP = b"BM" + b"\x00" * 30


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A manifest folder with a few images and impostors beside it."""
    (tmp_path / "model.png").write_bytes(png_bytes((230, 200, 180)))
    (tmp_path / "garment.png").write_bytes(png_bytes((20, 30, 90)))
    (tmp_path / "photo.jpg").write_bytes(JPEG)
    (tmp_path / "fake.png").write_text("this is not a picture\n")
    (tmp_path / "scan.bmp").write_bytes(BMP)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def read_all(path: Path) -> tuple[Manifest, list[JobSpec]]:
    m = read_manifest(path)
    return m, list(m.jobs())


# -- bad manifests: one row per kind of problem -------------------------------------


@dataclass(frozen=True)
class Bad:
    name: str  # manifest file name (its suffix picks the format)
    text: str | None  # None: do not create the file
    line: int | None
    field: str | None
    words: tuple[str, ...]  # each must appear in the message

    def __str__(self) -> str:
        return self.name


TRYON = """
jobs:
  - model_name: tryon-v1.6
    inputs:
      model_image: model.png
      garment_image: garment.png
      {extra}
"""


def tryon(extra: str) -> str:
    return TRYON.format(extra=extra)


BAD = {
    "missing file": Bad("absent.yaml", None, None, None, ("cannot read", "no such file")),
    "missing csv file": Bad("absent.csv", None, None, None, ("cannot read", "no such file")),
    "unsupported suffix": Bad(
        "jobs.txt", "x", None, None, ("unsupported manifest type '.txt'", ".yaml", ".jsonl")
    ),
    "yaml syntax": Bad(
        "m.yaml",
        """
        jobs:
          - model_name: reframe
            inputs:
              image: model.png
             aspect_ratio: 1:1
        """,
        5,
        None,
        ("YAML syntax error", "did not find expected key", "indentation"),
    ),
    "yaml empty": Bad("m.yaml", "# nothing yet\n", None, None, ("empty", "jobs:")),
    "top level a list": Bad("m.yaml", "- a\n- b\n", 1, None, ("top level", "mapping", "list")),
    "jobs missing": Bad("m.yaml", "batch: spring\n", 1, "jobs", ("no 'jobs:' list",)),
    "jobs not a list": Bad("m.yaml", "jobs: 3\n", 1, "jobs", ("must be a list", "a number 3")),
    "no jobs": Bad("m.yaml", "jobs: []\n", None, "jobs", ("no jobs", "add at least one")),
    "unknown top key": Bad(
        "m.yaml", "job:\n  - {}\njobs: []\n", 1, "job", ("unknown key 'job'", "'jobs'")
    ),
    "job not a mapping": Bad(
        "m.yaml", "jobs:\n  - just a string\n", 2, None, ("must be a mapping", "'just a string'")
    ),
    "unknown job key": Bad(
        "m.yaml",
        tryon("").replace("inputs:", "priorty: 3\n    inputs:"),
        3,
        "priorty",
        ("unknown key 'priorty'", "did you mean 'priority'"),
    ),
    "model_name missing": Bad(
        "m.yaml",
        "jobs:\n  - inputs:\n      image: model.png\n",
        2,
        "model_name",
        ("missing model_name", "tryon-max"),
    ),
    "model_name not text": Bad(
        "m.yaml",
        "jobs:\n  - inputs: {image: model.png}\n    model_name: 16\n",
        3,
        "model_name",
        ("must be a model's name as text", "a number 16"),
    ),
    "inputs missing": Bad(
        "m.yaml", "jobs:\n  - model_name: reframe\n", 2, "inputs", ("missing inputs",)
    ),
    "inputs not a mapping": Bad(
        "m.yaml",
        "jobs:\n  - model_name: reframe\n    inputs: [model.png]\n",
        3,
        "inputs",
        ("inputs must be a mapping", "a list"),
    ),
    "required input missing": Bad(
        "m.yaml",
        "jobs:\n  - model_name: tryon-v1.6\n    inputs:\n      model_image: model.png\n",
        3,
        "inputs.garment_image",
        ("missing required input 'garment_image'", "model 'tryon-v1.6'", "model_image"),
    ),
    "unknown input": Bad(
        "m.yaml",
        tryon("garment_photo: flat-lay"),
        6,
        "inputs.garment_photo",
        (
            "unknown input 'garment_photo' for model 'tryon-v1.6'",
            "did you mean 'garment_photo_type'",
            "it accepts: model_image, garment_image, category",
        ),
    ),
    "value not a choice": Bad(
        "m.yaml",
        tryon("category: shirts"),
        6,
        "inputs.category",
        ("must be one of: auto, tops, bottoms, one-pieces", "'shirts'"),
    ),
    "count out of range": Bad(
        "m.yaml",
        tryon("num_samples: 5"),
        6,
        "inputs.num_samples",
        ("whole number from 1 to 4", "5"),
    ),
    "count as text": Bad(
        "m.yaml",
        tryon('num_samples: "2"'),
        6,
        "inputs.num_samples",
        ("whole number from 1 to 4", "'2'"),
    ),
    "seed not an int": Bad("m.yaml", tryon("seed: 1.5"), 6, "inputs.seed", ("whole number", "1.5")),
    "return_base64 not a bool": Bad(
        "m.yaml",
        tryon('return_base64: "yes"'),
        6,
        "inputs.return_base64",
        ("true or false", "'yes'"),
    ),
    "text input not text": Bad(
        "m.yaml",
        "jobs:\n  - model_name: model-create\n    inputs:\n      prompt: 12\n",
        4,
        "inputs.prompt",
        ("must be text", "quotes"),
    ),
    "image file missing": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "garmnet.png"),
        5,
        "inputs.garment_image",
        ("'garmnet.png' is not an http(s) URL", "looked for", "relative to the manifest"),
    ),
    "image not an image": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "fake.png"),
        5,
        "inputs.garment_image",
        ("fake.png is not an image", "PNG, JPEG, WEBP or GIF"),
    ),
    "image is a BMP": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "scan.bmp"),
        5,
        "inputs.garment_image",
        ("is a BMP image", "convert it"),
    ),
    "image file empty": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "empty.png"),
        5,
        "inputs.garment_image",
        ("is empty",),
    ),
    "image is a folder": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "sub"),
        5,
        "inputs.garment_image",
        ("is a folder",),
    ),
    "image not text": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "[a.png]"),
        5,
        "inputs.garment_image",
        ("must be an image", "a list"),
    ),
    "ftp url": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "ftp://files.example.com/g.png"),
        5,
        "inputs.garment_image",
        ("unsupported URL scheme 'ftp:'", "only http(s)"),
    ),
    "file url": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "file:///tmp/g.png"),
        5,
        "inputs.garment_image",
        ("unsupported URL scheme 'file:'",),
    ),
    "url without host": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "https:///g.png"),
        5,
        "inputs.garment_image",
        ("has no host",),
    ),
    "data uri not base64": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "data:image/png;base64,@@@@"),
        5,
        "inputs.garment_image",
        ("not valid base64", "re-encode"),
    ),
    "data uri not an image": Bad(
        "m.yaml",
        tryon("").replace("garment.png", "data:text/plain;base64,aGk="),
        5,
        "inputs.garment_image",
        ("must look like data:image/png;base64,<data>",),
    ),
    "id unsafe": Bad(
        "m.yaml",
        tryon("").replace("inputs:", "id: shirts/front\n    inputs:"),
        3,
        "id",
        ("invalid id 'shirts/front'", "letters, digits", "output folder"),
    ),
    "id hidden": Bad(
        "m.yaml",
        tryon("").replace("inputs:", "id: .front\n    inputs:"),
        3,
        "id",
        ("invalid id '.front'", "not starting or ending with '.'"),
    ),
    "id empty": Bad(
        "m.yaml",
        tryon("").replace("inputs:", 'id: ""\n    inputs:'),
        3,
        "id",
        ("invalid id ''",),
    ),
    "id a number": Bad(
        "m.yaml",
        tryon("").replace("inputs:", "id: 42\n    inputs:"),
        3,
        "id",
        ("invalid id a number 42", 'quote it: id: "42"'),
    ),
    "id too long": Bad(
        "m.yaml",
        tryon("").replace("inputs:", f"id: {'x' * 129}\n    inputs:"),
        3,
        "id",
        ("invalid id", "1-128"),
    ),
    "priority not an int": Bad(
        "m.yaml",
        tryon("").replace("inputs:", "priority: high\n    inputs:"),
        3,
        "priority",
        ("priority must be a whole number", "higher runs first", "'high'"),
    ),
    "batch unsafe": Bad(
        "m.yaml",
        "batch: spring/2025\n" + tryon(""),
        1,
        "batch",
        ("invalid batch name 'spring/2025'", "letters, digits"),
    ),
    "defaults with id": Bad(
        "m.yaml",
        "defaults:\n  id: same\n" + tryon(""),
        2,
        "defaults.id",
        ("unknown key 'id'", "ids must differ per job", "defaults has only: model_name"),
    ),
    "defaults not a mapping": Bad(
        "m.yaml", "defaults: tryon-max\n" + tryon(""), 1, "defaults", ("must be a mapping",)
    ),
    "duplicate yaml key": Bad(
        "m.yaml",
        tryon("category: tops\n      category: bottoms"),
        7,
        "inputs.category",
        ("duplicate key 'category'", "first on line 6", "keep one"),
    ),
    "unknown yaml tag": Bad(
        "m.yaml",
        tryon("prompt: !python/name:os.system x"),
        6,
        "inputs.prompt",
        ("cannot read this value",),
    ),
    "csv unknown column": Bad(
        "m.csv",
        "model_name,garment_image,inputs.model_image\ntryon-v1.6,garment.png,model.png\n",
        1,
        "garment_image",
        ("unknown column 'garment_image'", "did you mean 'inputs.garment_image'"),
    ),
    "csv column without name": Bad(
        "m.csv",
        "model_name,inputs.image,\nbackground-remove,model.png,\n",
        1,
        None,
        ("unknown column number 3 (no name)",),
    ),
    "csv duplicate column": Bad(
        "m.csv",
        "model_name,inputs.image,inputs.image\nbackground-remove,model.png,model.png\n",
        1,
        "inputs.image",
        ("appears twice", "columns 2 and 3"),
    ),
    "csv no model_name column": Bad(
        "m.csv", "id,inputs.image\na,model.png\n", 1, "model_name", ("no model_name column",)
    ),
    "csv empty": Bad("m.csv", "", None, None, ("empty", "header")),
    "csv not an int": Bad(
        "m.csv",
        "model_name,inputs.image,inputs.num_images\nreframe,model.png,two\n",
        2,
        "inputs.num_images",
        ("'two' is not a whole number",),
    ),
    "csv not a bool": Bad(
        "m.csv",
        "model_name,inputs.image,inputs.return_base64\nbackground-remove,model.png,maybe\n",
        2,
        "inputs.return_base64",
        ("'maybe' is not true or false", "yes/no"),
    ),
    "csv bad priority": Bad(
        "m.csv",
        "model_name,priority,inputs.image\nbackground-remove,urgent,model.png\n",
        2,
        "priority",
        ("priority 'urgent' is not a whole number",),
    ),
    "csv extra cells": Bad(
        "m.csv",
        "model_name,inputs.image\nbackground-remove,model.png,oops\n",
        2,
        None,
        ("3 cells", "header names 2 columns", "quote cells"),
    ),
    "csv unclosed quote": Bad(
        "m.csv",
        'model_name,inputs.image\nbackground-remove,"model.png\n',
        2,
        None,
        ("cannot read this CSV row", "quoted cell must be closed"),
    ),
    "jsonl invalid json": Bad(
        "m.jsonl",
        '{"model_name": "background-remove", "inputs": {"image": "model.png"}}\n'
        '{"model_name": "background-remove", "inputs": {"image": "model.png"}\n',
        2,
        None,
        ("not valid JSON", "at column 70", "one job per line"),
    ),
    "jsonl not an object": Bad(
        "m.jsonl",
        '{"model_name": "background-remove", "inputs": {"image": "model.png"}}\n'
        '["background-remove"]\n',
        2,
        None,
        ("must be a JSON object", "a list"),
    ),
    "jsonl unknown key": Bad(
        "m.jsonl",
        '{"model": "background-remove", "model_name": "reframe",'
        ' "inputs": {"image": "model.png", "aspect_ratio": "1:1"}}\n',
        1,
        "model",
        ("unknown key 'model'", "did you mean 'model_name'"),
    ),
    "jsonl not utf-8": Bad("m.jsonl", None, 2, None, ("not valid UTF-8",)),
}


@pytest.mark.parametrize("case", BAD.values(), ids=BAD.keys())
def test_bad_manifest_is_reported_precisely(folder: Path, case: Bad) -> None:
    """Each kind of mistake yields one problem at the right file, line and field."""
    path = folder / case.name
    if case.text is not None:
        path.write_text(textwrap.dedent(case.text).lstrip("\n"))
    elif case.name.endswith(".jsonl"):
        path.write_bytes(
            b'{"model_name": "background-remove", "inputs": {"image": "a.png"}}\n\xff\n'
        )
    m = read_manifest(path)
    list(m.jobs())
    matching = [p for p in m.problems if p.field == case.field and p.line == case.line]
    assert len(matching) == 1, m.problems
    problem = matching[0]
    assert problem.file == str(path)
    for word in case.words:
        assert word in problem.message, (word, problem.message)


def test_problem_kinds_cover_the_brief() -> None:
    """The table above holds at least fifteen distinct kinds of problem."""
    assert len(BAD) >= 15


def test_problem_renders_file_line_and_field(folder: Path) -> None:
    """A problem prints as file:line: field: message, ready for the terminal."""
    path = write(folder, "catalog.yaml", tryon("category: shirts"))
    m, _ = read_all(path)
    assert str(m.problems[0]).startswith(f"{path}:6: inputs.category: must be one of")


def test_all_problems_are_listed_at_once(folder: Path) -> None:
    """Three bad jobs give three problems; the good job between them is still yielded."""
    path = write(
        folder,
        "m.yaml",
        """
        jobs:
          - model_name: background-remove
            inputs: {image: missing.png}
          - model_name: background-remove
            inputs: {image: model.png}
          - model_name: reframe
            inputs: {image: model.png, aspect_ratio: "7:5"}
          - model_name: tryon-max
            inputs: {model_image: model.png}
        """,
    )
    m, jobs = read_all(path)
    assert [j.location.line for j in jobs if j.location] == [4]
    assert [(p.line, p.field) for p in m.problems] == [
        (3, "inputs.image"),
        (7, "inputs.aspect_ratio"),
        (9, "inputs.product_image"),
    ]
    with pytest.raises(ManifestError) as caught:
        raise ManifestError(m.problems)
    assert "3 problems in the manifest" in str(caught.value)


def test_problems_beyond_the_cap_are_counted(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_PROBLEMS only a count is kept, so a broken huge file stays readable."""
    monkeypatch.setattr(reading, "MAX_PROBLEMS", 3)
    rows = "".join(f"background-remove,missing-{i}.png\n" for i in range(10))
    path = write(folder, "m.csv", "model_name,inputs.image\n" + rows)
    m, jobs = read_all(path)
    assert jobs == []
    assert [p.line for p in m.problems] == [2, 3, 4]
    assert (m.problems.unlisted, m.problem_count) == (7, 10)
    message = str(ManifestError(m.problems)).splitlines()
    assert message[0] == "10 problems in the manifest; the first 3 are listed; nothing was queued"
    assert message[-1] == "  ... 7 more problems not listed; fix the ones above and retry"


def test_reading_twice_does_not_double_problems(folder: Path) -> None:
    """jobs() starts afresh on each call: same jobs, same problems."""
    path = write(folder, "m.yaml", tryon("category: shirts") + tryon("").replace("jobs:", ""))
    m = read_manifest(path)
    first = list(m.jobs())
    problems = list(m.problems)
    assert list(m.jobs()) == first
    assert m.problems == problems
    assert len(problems) == 1


# -- YAML -----------------------------------------------------------------------------


def test_yaml_defaults_are_merged_and_jobs_win(folder: Path) -> None:
    """defaults give model_name, priority and inputs; a job's own values win."""
    path = write(
        folder,
        "m.yaml",
        """
        defaults:
          model_name: tryon-max
          priority: 3
          inputs:
            model_image: model.png
            generation_mode: balanced
            num_images: 2
        jobs:
          - inputs:
              product_image: https://shop.example/p/1.jpg
          - priority: 9
            inputs:
              product_image: https://shop.example/p/2.jpg
              generation_mode: quality
              num_images: null
          - model_name: tryon-v1.6
            inputs:
              garment_image: garment.png
        """,
    )
    m, jobs = read_all(path)
    assert m.problems == []
    first, second, third = jobs
    assert first.model_name == "tryon-max"
    assert first.priority == 3
    assert first.inputs["generation_mode"] == "balanced"
    assert first.inputs["num_images"] == 2
    assert first.inputs["model_image"].startswith("data:image/png;base64,")
    assert second.priority == 9
    assert second.inputs["generation_mode"] == "quality"
    assert "num_images" not in second.inputs  # null cancels a default
    # tryon-v1.6 takes neither generation_mode nor num_images: they are not sent.
    assert third.model_name == "tryon-v1.6"
    assert set(third.inputs) == {"model_image", "garment_image"}


def test_yaml_problem_in_defaults_is_reported_once_at_its_line(folder: Path) -> None:
    """A bad default affects every job but is listed once, at the defaults line."""
    path = write(
        folder,
        "m.yaml",
        """
        defaults:
          inputs:
            model_image: nowhere.png
        jobs:
          - model_name: tryon-max
            inputs: {product_image: garment.png}
          - model_name: tryon-max
            inputs: {product_image: model.png}
        """,
    )
    m, jobs = read_all(path)
    assert jobs == []
    assert [(p.line, p.field) for p in m.problems] == [(3, "inputs.model_image")]


def test_yaml_default_input_no_model_takes_is_a_warning(folder: Path) -> None:
    """A default input no known model accepts warns (it may serve an unknown model)."""
    path = write(
        folder,
        "m.yaml",
        """
        defaults:
          inputs: {modle_image: model.png}
        jobs:
          - model_name: background-remove
            inputs: {image: model.png}
        """,
    )
    m, jobs = read_all(path)
    assert len(jobs) == 1 and m.problems == []
    (warning,) = m.warnings
    assert (warning.line, warning.field) == (2, "defaults.inputs.modle_image")
    assert "did you mean 'model_image'" in warning.message


def test_yaml_batch_name_and_default(folder: Path) -> None:
    """batch: overrides the batch name, which is otherwise the file stem."""
    named = write(folder, "a.yaml", "batch: spring-2025\n" + tryon(""))
    plain = write(folder, "summer-drop.yml", tryon(""))
    assert read_manifest(named).batch_name == "spring-2025"
    assert read_manifest(plain).batch_name == "summer-drop"


def test_yaml_unquoted_aspect_ratio_stays_text(folder: Path) -> None:
    """`aspect_ratio: 3:4` is not read as YAML 1.1's base-60 number 184."""
    path = write(
        folder,
        "m.yaml",
        """
        jobs:
          - model_name: reframe
            inputs: {image: model.png, aspect_ratio: 3:4}
        """,
    )
    m, jobs = read_all(path)
    assert m.problems == []
    assert jobs[0].inputs["aspect_ratio"] == "3:4"


def test_yaml_anchors_and_merge_keys(folder: Path) -> None:
    """`<<: *anchor` merges work, and the job's own keys win over the merged ones."""
    path = write(
        folder,
        "m.yaml",
        """
        jobs:
          - &base
            model_name: reframe
            inputs: {image: model.png, aspect_ratio: "1:1"}
          - <<: *base
            id: wide
            inputs: {image: model.png, aspect_ratio: "16:9"}
        """,
    )
    m, jobs = read_all(path)
    assert m.problems == []
    assert [j.inputs["aspect_ratio"] for j in jobs] == ["1:1", "16:9"]
    assert jobs[1].id == "wide"


def test_yaml_job_line_is_where_the_job_starts(folder: Path) -> None:
    """Each JobSpec carries the file and the line of its '- ' entry."""
    path = write(
        folder,
        "m.yaml",
        """
        # comment
        jobs:
          - model_name: background-remove
            inputs: {image: model.png}

          - inputs: {image: model.png}
            model_name: background-remove
        """,
    )
    _, jobs = read_all(path)
    assert [str(j.location) for j in jobs] == [f"{path}:3", f"{path}:6"]


# -- CSV ------------------------------------------------------------------------------


def test_csv_values_are_converted_and_empty_cells_omitted(folder: Path) -> None:
    """Counts, seed → int; return_base64 → bool; empty cells are not sent."""
    path = write(
        folder,
        "m.csv",
        "id,model_name,priority,inputs.model_image,inputs.product_image,inputs.num_images,"
        "inputs.seed,inputs.return_base64,inputs.prompt\n"
        "a1,tryon-max,5,model.png,https://shop.example/p/1.jpg,2,42,yes,\n"
        ",tryon-max,,model.png,garment.png,,,,  studio light  \n",
    )
    m, jobs = read_all(path)
    assert m.problems == []
    first, second = jobs
    assert first.id == "a1"
    assert first.priority == 5
    assert first.inputs["num_images"] == 2
    assert first.inputs["seed"] == 42
    assert first.inputs["return_base64"] is True
    assert "prompt" not in first.inputs
    assert second.priority == 0
    assert second.inputs["prompt"] == "studio light"
    assert set(second.inputs) == {"model_image", "product_image", "prompt"}


@pytest.mark.parametrize(
    ("cell", "value"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("false", False),
     ("No", False), ("0", False)],
)  # fmt: skip
def test_csv_bool_words(folder: Path, cell: str, value: bool) -> None:
    """true/false, yes/no and 1/0 (any case) are booleans in CSV cells."""
    path = write(folder, "m.csv", f"model_name,inputs.image,inputs.return_base64\n"
                 f"background-remove,model.png,{cell}\n")  # fmt: skip
    _, jobs = read_all(path)
    assert jobs[0].inputs["return_base64"] is value


def test_csv_lines_count_multiline_cells_and_blank_rows(folder: Path) -> None:
    """Row numbers are file lines: a quoted cell spanning lines shifts the next rows."""
    path = write(
        folder,
        "m.csv",
        "model_name,inputs.image,inputs.prompt\n"
        'background-change,model.png,"a beach,\nat sunset"\n'
        "\n"
        ",,\n"
        "background-change,model.png,\n",
    )
    m, jobs = read_all(path)
    assert len(jobs) == 1
    assert jobs[0].location is not None and jobs[0].location.line == 2
    assert jobs[0].inputs["prompt"] == "a beach,\nat sunset"
    assert [(p.line, p.field) for p in m.problems] == [(6, "inputs.prompt")]


def test_csv_byte_order_mark_is_ignored(folder: Path) -> None:
    """A spreadsheet's UTF-8 BOM does not turn the first header into an unknown column."""
    path = folder / "m.csv"
    path.write_bytes("\ufeffmodel_name,inputs.image\nbackground-remove,model.png\n".encode())
    m, jobs = read_all(path)
    assert m.problems == [] and len(jobs) == 1


def test_csv_streams_first_job_before_reading_a_later_bad_row(folder: Path) -> None:
    """The generator yields row 2 before the bad last row has been read."""
    good = "background-remove,https://shop.example/p/{}.jpg\n"
    rows = "".join(good.format(i) for i in range(20_000))
    path = write(folder, "m.csv", "model_name,inputs.image\n" + rows + "background-remove,\n")
    m = read_manifest(path)
    stream = m.jobs()
    first = next(stream)
    assert first.location is not None and first.location.line == 2
    assert m.problems == []
    rest = list(stream)
    assert len(rest) == 19_999
    assert [(p.line, p.field) for p in m.problems] == [(20_002, "inputs.image")]


def test_csv_large_file_iterates(folder: Path) -> None:
    """A 20k-row CSV that shares one local image reads through (a million rows and their
    memory are benchmarked: bench/scale.py)."""
    path = folder / "big.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "model_name", "priority", "inputs.image", "inputs.return_base64"])
        for i in range(20_000):
            writer.writerow([f"sku-{i}", "background-remove", i % 3, "model.png", "false"])
    m = read_manifest(path)
    count = sum(1 for _ in m.jobs())
    assert count == 20_000
    assert m.problems == []


def test_local_image_is_read_once_per_read(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows sharing a file (however spelled) read it once: the encoding is cached."""
    reads: list[str] = []
    original = ImageResolver._read

    def counting(self: ImageResolver, value: str, path: str) -> object:
        reads.append(path)
        return original(self, value, path)

    monkeypatch.setattr(ImageResolver, "_read", counting)
    rows = "".join(f"background-remove,{name}\n" for name in ["model.png", "./model.png"] * 500)
    path = write(folder, "m.csv", "model_name,inputs.image\n" + rows)
    _, jobs = read_all(path)
    assert len(jobs) == 1000
    assert reads == [str(folder / "model.png")]
    # One shared string, not a thousand copies of the encoding.
    assert len({id(j.inputs["image"]) for j in jobs}) == 1


def test_image_cache_is_bounded() -> None:
    """The cache evicts the least recently used entry past its item or size bound."""
    cache = LRU(max_items=2, max_chars=100)
    cache.put("a", ("x" * 10, "t", None))
    cache.put("b", ("x" * 10, "t", None))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", ("x" * 10, "t", None))
    assert cache.get("b") is None and cache.get("a") is not None
    cache.put("d", ("x" * 95, "t", None))  # over the size budget: all older entries go
    assert cache.get("a") is None and cache.get("c") is None and cache.get("d") is not None
    cache.put("huge", ("x" * 200, "t", None))  # larger than the budget: never stored
    assert cache.get("huge") is None


# -- JSON Lines -------------------------------------------------------------------------


def test_jsonl_jobs_and_blank_lines(folder: Path) -> None:
    """One object per line; blank lines are skipped but still counted for line numbers."""
    path = write(
        folder,
        "m.ndjson",
        '{"model_name": "background-remove", "inputs": {"image": "model.png"}, "priority": 2}\n'
        "\n"
        "   \n"
        '{"id": "hero", "model_name": "reframe",'
        ' "inputs": {"image": "https://shop.example/a.jpg", "aspect_ratio": "16:9"}}\n',
    )
    m, jobs = read_all(path)
    assert m.problems == []
    assert [(j.id, j.priority, j.location.line if j.location else None) for j in jobs] == [
        (jobs[0].id, 2, 1),
        ("hero", 0, 4),
    ]
    assert jobs[1].inputs["image"] == "https://shop.example/a.jpg"


# -- ids --------------------------------------------------------------------------------


def test_same_job_gets_the_same_id_in_every_format(folder: Path) -> None:
    """A job without id written as YAML, CSV and JSONL gets one id, stable across runs."""
    yaml_path = write(
        folder,
        "m.yaml",
        """
        jobs:
          - model_name: tryon-max
            inputs:
              model_image: model.png
              product_image: https://shop.example/p/1.jpg
              num_images: 2
              seed: 7
              return_base64: false
        """,
    )
    csv_path = write(
        folder,
        "m.csv",
        "model_name,inputs.model_image,inputs.product_image,inputs.num_images,inputs.seed,"
        "inputs.return_base64\n"
        "tryon-max,model.png,https://shop.example/p/1.jpg,2,7,no\n",
    )
    jsonl_path = write(
        folder,
        "m.jsonl",
        json.dumps(
            {
                "model_name": "tryon-max",
                "inputs": {
                    "seed": 7,
                    "return_base64": False,
                    "num_images": 2,
                    "product_image": "https://shop.example/p/1.jpg",
                    "model_image": str(folder / "model.png"),  # absolute this time
                },
            }
        )
        + "\n",
    )
    ids = {read_all(p)[1][0].id for p in (yaml_path, csv_path, jsonl_path, yaml_path)}
    assert len(ids) == 1
    (job_id,) = ids
    assert len(job_id) == 16 and set(job_id) <= set("0123456789abcdef")


def test_generated_id_is_a_fingerprint_of_resolved_inputs(folder: Path) -> None:
    """The id is models.fingerprint of the inputs with each data URI as its sha256."""
    path = write(
        folder,
        "m.yaml",
        """
        jobs:
          - model_name: background-remove
            inputs: {image: model.png}
          - model_name: reframe
            inputs: {image: "https://shop.example/a.jpg", aspect_ratio: "1:1"}
        """,
    )
    _, (local, remote) = read_all(path)
    uri = local.inputs["image"]
    token = "sha256:" + hashlib.sha256(uri.encode()).hexdigest()
    assert local.id == fingerprint("background-remove", {"image": token})[:16]
    assert remote.id == fingerprint("reframe", dict(remote.inputs))[:16]


def test_generated_id_follows_image_content_not_path(folder: Path) -> None:
    """Same bytes at another path or inline give the same id; other bytes another id."""
    (folder / "sub" / "copy.png").write_bytes((folder / "model.png").read_bytes())
    inline = data_uri("image/png", (folder / "model.png").read_bytes())
    path = write(
        folder,
        "m.yaml",
        f"""
        jobs:
          - model_name: background-remove
            inputs: {{image: model.png}}
          - model_name: background-remove
            inputs: {{image: sub/copy.png}}
          - model_name: background-remove
            inputs: {{image: "{inline}"}}
          - model_name: background-remove
            inputs: {{image: garment.png}}
        """,
    )
    _, jobs = read_all(path)
    ids = [j.id for j in jobs]
    assert ids[0] == ids[1] == ids[2]
    assert ids[3] != ids[0]


def test_duplicate_ids_are_left_to_the_store(folder: Path) -> None:
    """Reading does not keep ids in memory: duplicates pass through to the store's check."""
    path = write(folder, "m.csv", "id,model_name,inputs.image\nx,background-remove,model.png\n"
                 "x,background-remove,garment.png\n")  # fmt: skip
    m, jobs = read_all(path)
    assert m.problems == [] and [j.id for j in jobs] == ["x", "x"]


# -- images -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "mime"),
    [(png_bytes(), "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
    ids=["png", "jpeg", "gif", "webp"],
)
def test_local_image_becomes_data_uri_by_magic_bytes(folder: Path, data: bytes, mime: str) -> None:
    """The MIME type comes from the file's first bytes, not from its name."""
    (folder / "picture.bin").write_bytes(data)
    path = write(folder, "m.jsonl", '{"model_name": "edit", "inputs": '
                 '{"image": "picture.bin", "prompt": "add a belt"}}\n')  # fmt: skip
    m, jobs = read_all(path)
    assert m.problems == []
    assert jobs[0].inputs["image"] == data_uri(mime, data)


def test_image_paths_are_relative_to_the_manifest(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path is looked up beside the manifest, whatever the working directory."""
    (folder / "sub" / "look.png").write_bytes(png_bytes())
    path = write(folder / "sub", "m.yaml", """
        jobs:
          - model_name: background-remove
            inputs: {image: look.png}
          - model_name: background-remove
            inputs: {image: ../model.png}
        """)  # fmt: skip
    monkeypatch.chdir(folder)
    m, jobs = read_all(path)
    assert m.problems == [] and len(jobs) == 2


def test_home_relative_image_path(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A path starting with ~ is expanded to the user's home folder."""
    monkeypatch.setenv("HOME", str(folder / "sub"))
    (folder / "sub" / "me.png").write_bytes(png_bytes())
    path = write(folder, "m.csv", "model_name,inputs.image\nbackground-remove,~/me.png\n")
    m, jobs = read_all(path)
    assert m.problems == []
    assert jobs[0].inputs["image"] == data_uri("image/png", png_bytes())


def test_urls_and_data_uris_pass_through(folder: Path) -> None:
    """http(s) URLs and valid data URIs are sent exactly as written."""
    inline = data_uri("image/jpeg", JPEG)
    path = write(folder, "m.yaml", f"""
        jobs:
          - model_name: tryon-v1.6
            inputs:
              model_image: "HTTPS://Shop.Example/m.jpg?size=large"
              garment_image: "{inline}"
        """)  # fmt: skip
    m, jobs = read_all(path)
    assert m.problems == []
    assert jobs[0].inputs["model_image"] == "HTTPS://Shop.Example/m.jpg?size=large"
    assert jobs[0].inputs["garment_image"] == inline


# -- unknown models -----------------------------------------------------------------------


def test_unknown_model_warns_once_and_passes_through(folder: Path) -> None:
    """An unknown model is a warning; its inputs are sent as is, with images resolved."""
    path = write(
        folder,
        "m.yaml",
        """
        jobs:
          - model_name: tryon-v2
            inputs:
              model_image: model.png
              garment: https://shop.example/g.jpg
              brand_new_knob: 0.5
          - model_name: tryon-v2
            inputs: {model_image: model.png}
        """,
    )
    m, jobs = read_all(path)
    assert m.problems == []
    (warning,) = m.warnings
    assert (warning.line, warning.field) == (2, "model_name")
    assert "unknown model 'tryon-v2'" in warning.message
    assert "sent to the API unchanged" in warning.message
    assert len(jobs) == 2
    assert jobs[0].inputs["model_image"].startswith("data:image/png;base64,")
    assert jobs[0].inputs["garment"] == "https://shop.example/g.jpg"
    assert jobs[0].inputs["brand_new_knob"] == 0.5


def test_unknown_model_still_checks_its_image_files(folder: Path) -> None:
    """Image-named inputs of an unknown model must still point at readable images."""
    path = write(folder, "m.jsonl", '{"model_name": "x-1", "inputs": {"image": "fake.png"}}\n')
    m, jobs = read_all(path)
    assert jobs == []
    assert [(p.line, p.field) for p in m.problems] == [(1, "inputs.image")]


# -- the shipped example ------------------------------------------------------------------


def test_example_manifest_is_valid() -> None:
    """jobs.example.yaml validates cleanly, with its local images turned into data URIs."""
    m, jobs = read_all(ROOT / "jobs.example.yaml")
    assert m.problems == [] and m.warnings == []
    assert m.batch_name == "spring-catalog"
    assert 8 <= len(jobs) <= 12
    models = {j.model_name for j in jobs}
    assert {"tryon-max", "tryon-v1.6", "product-to-model", "background-remove"} <= models
    values = [v for j in jobs for v in j.inputs.values() if isinstance(v, str)]
    assert any(v.startswith("data:image/jpeg;base64,") for v in values)
    assert any(v.startswith("data:image/png;base64,") for v in values)
    assert any(v.startswith("https://") for v in values)
    assert any(j.inputs.get("return_base64") is True for j in jobs)
    assert len({j.id for j in jobs}) == len(jobs)


def test_example_images_are_small_real_images() -> None:
    """The sample images are tiny PNG/JPEG files that the sniffer recognises."""
    images = sorted((ROOT / "examples" / "images").iterdir())
    assert images
    for image in images:
        data = image.read_bytes()
        assert len(data) < 2048, image
        assert sniff(data) in {"image/png", "image/jpeg"}, image


@pytest.mark.parametrize(
    "inputs",
    [
        {"image": "https://x/1.png"},
        {"prompt": 'é \u2028 "q"', "num_images": 2, "seed": None, "b": [1, {"z": True}]},
        {},
    ],
)
def test_a_fingerprint_from_the_inputs_json_is_the_same_fingerprint(inputs: dict) -> None:
    """Ingest hashes the canonical JSON it stores: the fingerprint of the inputs themselves."""
    expected = fingerprint("model-\u00e9", inputs, {})
    assert fingerprint_of_json("model-\u00e9", canonical_json(inputs)) == expected

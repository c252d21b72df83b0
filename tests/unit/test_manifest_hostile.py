"""Hostile manifests: each is refused with a located problem (file, line, field, what to
do), quickly and in bounded memory; nothing is queued and nothing raises a traceback."""

from __future__ import annotations

import os
import socket
import textwrap
import tracemalloc
from pathlib import Path

import pytest
import yaml

from orchestrator.errors import ManifestError, Problem
from orchestrator.manifest import Manifest, images, read_manifest, reading, values
from orchestrator.service import queue_manifest
from orchestrator.store import Store

from .test_manifest import png_bytes

MIB = 1024 * 1024
PNG_HEAD = png_bytes()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("ORCHESTRATOR_MAX_IMAGE_MB", raising=False)
    (tmp_path / "model.png").write_bytes(PNG_HEAD)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def read(path: Path, **kwargs: int) -> Manifest:
    manifest = read_manifest(path, **kwargs)
    manifest.jobs_read = list(manifest.jobs())  # type: ignore[attr-defined]
    return manifest


def only(manifest: Manifest) -> Problem:
    assert len(manifest.problems) == 1, manifest.problems
    return manifest.problems[0]


def submit(folder: Path, path: Path, batch: str | None = None) -> ManifestError:
    store = Store(folder / "queue.db")
    try:
        with pytest.raises(ManifestError) as caught:
            queue_manifest(store, path, batch=batch)
        assert store.state_counts(None) == {}
    finally:
        store.close()
    return caught.value


@pytest.fixture
def python_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use PyYAML's pure-Python parser, as on a machine without libyaml."""
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)


# -- 1. YAML aliases that expand without end ----------------------------------------


def _laughs(levels: int, fan: int, leaf: str = '"lol"') -> str:
    rows = [f"l0: &l0 [{', '.join([leaf] * fan)}]"]
    for n in range(1, levels):
        rows.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fan)}]")
    return "\n".join(rows) + "\n"


BILLION_LAUGHS = _laughs(9, 9)  # 9^9 = 387,420,489 strings from ~480 bytes

# ~1 KB: block mappings with the bomb inside a job's inputs (an unknown model sends
# them as they are), so it would also expand when the job is stored.
KILO_LAUGHS = (
    "x0: &x0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol}\n"
    + "".join(
        f"x{n}: &x{n} {{a: *x{n - 1}, b: *x{n - 1}, c: *x{n - 1}, d: *x{n - 1},"
        f" e: *x{n - 1}, f: *x{n - 1}, g: *x{n - 1}, h: *x{n - 1}}}\n"
        for n in range(1, 12)
    )
    + "jobs:\n  - model_name: brand-new-model\n    inputs:\n      knob: *x11\n"
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", [BILLION_LAUGHS, KILO_LAUGHS], ids=["466B", "1KB"])
def test_yaml_alias_bomb_is_refused_in_bounded_memory(folder: Path, text: str) -> None:
    """Aliases that would expand to billions of values are refused at the alias's line,
    before they are built: memory stays small and nothing is read further."""
    assert len(text) < 1100
    path = write(folder, "bomb.yaml", text)
    tracemalloc.start()
    try:
        m = read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MIB
    problem = only(m)
    assert problem.file == str(path)
    alias_lines = [n for n, row in enumerate(text.splitlines(), 1) if "*" in row]
    assert problem.line in alias_lines
    assert problem.field is not None
    assert problem.field.split(".")[0] == text.splitlines()[problem.line - 1].split(":")[0]
    for words in ("aliases expand too far", "write the values out", "defaults:"):
        assert words in problem.message
    assert m.jobs_read == []  # type: ignore[attr-defined]


@pytest.mark.timeout(60)
def test_yaml_merge_chain_does_not_multiply(folder: Path) -> None:
    """`<<: [*a, *a, ...]` chains merge keys, they do not copy them ten times per level."""
    rows = ["m0: &m0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}"]
    for n in range(1, 10):
        rows.append(f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * 10)}], own{n}: {n}}}")
    path = write(folder, "merge.yaml", "\n".join(rows) + "\njobs: []\n")
    tracemalloc.start()
    try:
        m = read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MIB
    # Only the ordinary complaints about this odd file remain.
    assert all("unknown key" in p.message or "no jobs" in p.message for p in m.problems)


def test_yaml_many_legitimate_merges_still_read(folder: Path) -> None:
    """A job anchored once and merged into 20,000 others, with a shared inputs mapping
    aliased into half of them, is ordinary YAML, not a bomb."""
    inputs = ", ".join(f"{key}: {n}" for n, key in enumerate("abcdefghijkl"))
    head = (
        "jobs:\n"
        "  - &base\n"
        "    id: j0\n"
        "    model_name: brand-new-model\n"
        "    priority: 2\n"
        f"    inputs: &common {{{inputs}}}\n"
    )
    jobs = "".join(
        f"  - <<: *base\n    id: j{i}\n"
        if i % 2
        else f"  - {{<<: *base, id: j{i}, inputs: *common}}\n"
        for i in range(1, 20_000)
    )
    path = folder / "merges.yaml"
    path.write_text(head + jobs)
    m = read(path)
    assert m.problems == []
    assert len(m.jobs_read) == 20_000  # type: ignore[attr-defined]
    last = m.jobs_read[-1]  # type: ignore[attr-defined]
    assert (last.id, last.priority, last.inputs["l"]) == ("j19999", 2, 11)


@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_yaml_nesting_too_deep_is_a_problem(
    folder: Path, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deeply nested values (fine for the parser) are refused at their line."""
    if loader == "python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    depth = 900
    text = "jobs:\n  - model_name: brand-new-model\n    inputs:\n      knob: "
    path = write(folder, "deep.yaml", text + "[" * depth + "]" * depth + "\n")
    m = read(path)
    problem = only(m)
    assert problem.line == 4
    assert "nest" in problem.message and "deep" in problem.message
    assert submit(folder, path).problems == [problem]


# -- 2. image files that are not regular files, or too large ------------------------


def _image_job(folder: Path, image: str) -> Path:
    return write(
        folder,
        "m.yaml",
        f"""
        jobs:
          - model_name: background-remove
            inputs:
              image: "{image}"
        """,
    )


def _assert_image_problem(m: Manifest, path: Path, *words: str) -> None:
    problem = only(m)
    assert (problem.file, problem.line, problem.field) == (str(path), 4, "inputs.image")
    for word in words:
        assert word in problem.message, problem.message


@pytest.mark.timeout(20)
def test_image_that_is_a_device_is_refused(folder: Path) -> None:
    """/dev/zero is endless: it is refused by its type, not read until memory runs out."""
    path = _image_job(folder, "/dev/zero")
    _assert_image_problem(read(path), path, "/dev/zero is a device, not an image file")


@pytest.mark.timeout(20)
def test_image_that_is_a_fifo_does_not_block(folder: Path) -> None:
    """A named pipe without a writer would block a plain open() for ever."""
    os.mkfifo(folder / "pipe.png")
    path = _image_job(folder, "pipe.png")
    _assert_image_problem(read(path), path, "pipe.png is a FIFO", "not an image file")


@pytest.mark.timeout(20)
def test_image_that_is_a_socket_is_refused(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)  # a short relative name: socket paths are limited in length
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind("sock.png")
        path = _image_job(folder, "sock.png")
        _assert_image_problem(read(path), path, "sock.png is a socket, not an image file")
    finally:
        server.close()


def test_oversize_image_is_refused_without_reading_it(folder: Path) -> None:
    """A 200 MB image (sparse: no disk used) is refused by its size, with the knob to turn."""
    with open(folder / "huge.png", "wb") as handle:
        handle.write(PNG_HEAD)
        handle.truncate(200 * MIB)
    path = _image_job(folder, "huge.png")
    tracemalloc.start()
    try:
        m = read(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * MIB
    _assert_image_problem(m, path, "is 200 MB; the limit is 25 MB (ORCHESTRATOR_MAX_IMAGE_MB)")


def test_image_size_limit_from_environment_and_argument(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORCHESTRATOR_MAX_IMAGE_MB is read when the manifest is opened; the argument wins."""
    assert images.MAX_IMAGE_MB == 25
    with open(folder / "big.png", "wb") as handle:
        handle.write(PNG_HEAD)
        handle.truncate(3 * MIB)
    path = _image_job(folder, "big.png")
    assert read(path).problems == []
    monkeypatch.setenv("ORCHESTRATOR_MAX_IMAGE_MB", "2")
    _assert_image_problem(read(path), path, "is 3 MB; the limit is 2 MB")
    monkeypatch.setenv("ORCHESTRATOR_MAX_IMAGE_MB", "0.5")
    _assert_image_problem(read(path), path, "is 3 MB; the limit is 0.5 MB")
    assert read(path, max_image_bytes=4 * MIB).problems == []
    small = read(_image_job(folder, "model.png"), max_image_bytes=len(PNG_HEAD))
    assert small.problems == []
    _assert_image_problem(read(path, max_image_bytes=len(PNG_HEAD) - 1), path, "the limit is", "MB")


@pytest.mark.parametrize("value", ["lots", "-1", "0", "nan", "inf"])
def test_bad_image_size_setting_is_a_problem(
    folder: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MAX_IMAGE_MB", value)
    m = read(_image_job(folder, "model.png"))
    problem = only(m)
    assert "ORCHESTRATOR_MAX_IMAGE_MB" in problem.message and repr(value) in problem.message


def test_image_path_with_a_nul_byte_is_a_problem(folder: Path) -> None:
    path = write(
        folder,
        "m.jsonl",
        '{"model_name": "background-remove", "inputs": {"image": "mod\\u0000el.png"}}\n',
    )
    problem = only(read(path))
    assert (problem.line, problem.field) == (1, "inputs.image")


# -- 3. JSON nesting and text that is not Unicode ------------------------------------


GOOD_LINE = '{"model_name": "background-remove", "inputs": {"image": "model.png"}}\n'


def test_jsonl_deep_nesting_is_a_problem_at_its_line(folder: Path) -> None:
    """100,000 nested brackets exceed Python's recursion limit: a problem, no traceback."""
    path = folder / "m.jsonl"
    path.write_text(GOOD_LINE + "[" * 100_000 + "]" * 100_000 + "\n" + GOOD_LINE)
    m = read(path)
    problem = only(m)
    assert (problem.file, problem.line, problem.field) == (str(path), 2, None)
    assert "nested too deeply" in problem.message
    assert len(m.jobs_read) == 2  # type: ignore[attr-defined]


def test_jsonl_value_nested_deeper_than_the_limit_is_a_problem(folder: Path) -> None:
    """Depth the parser accepts can still break the encoder when the job is stored."""
    depth = 500
    line = '{"model_name": "brand-new-model", "inputs": {"knob": ' + "[" * depth
    path = folder / "m.jsonl"
    path.write_text(line + "]" * depth + "}}\n")
    problem = only(read(path))
    assert (problem.line, problem.field) == (1, "inputs.knob")
    assert f"more than {values.MAX_NESTING} levels" in problem.message
    assert submit(folder, path).problems == [problem]


LONE = "\\ud800"  # as written in the file: a JSON escape of half a surrogate pair


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"model_name": "edit", "inputs": {"image": "model.png", "prompt": "a' + LONE + '"}}',
         "inputs.prompt"),
        ('{"model_name": "new' + LONE + '", "inputs": {"image": "model.png"}}', "model_name"),
        ('{"model_name": "brand-new", "inputs": {"knob": {"deep": ["x' + LONE + '"]}}}',
         "inputs.knob"),
        ('{"model_name": "brand-new", "inputs": {"knob": {"k' + LONE + '": 1}}}', "inputs.knob"),
        ('{"model_name": "brand-new", "inputs": {"k' + LONE + '": 1}}', "inputs"),
        ('{"model_name": "background-remove", "inputs": {"image": "m' + LONE + '.png"}}',
         "inputs.image"),
        ('{"model_name": "background-remove", "inputs": {"image": "https://cdn.example/'
         + LONE + '.png"}}', "inputs.image"),
    ],
    ids=["prompt", "model_name", "nested value", "nested key", "input name", "path", "url"],
)  # fmt: skip
def test_lone_surrogate_is_a_problem_not_a_crash(folder: Path, line: str, field: str) -> None:
    """Half a surrogate pair cannot be stored as UTF-8: refused at its line and field."""
    path = folder / "m.jsonl"
    path.write_text(GOOD_LINE + line + "\n")
    m = read(path)
    problem = only(m)
    assert (problem.line, problem.field) == (2, field)
    assert "is not valid Unicode text" in problem.message
    str(problem).encode()  # printable as UTF-8 itself
    error = submit(folder, path)
    assert error.problems == [problem]
    str(error).encode()


def test_lone_surrogate_in_an_id_is_an_invalid_id(folder: Path) -> None:
    path = folder / "m.jsonl"
    path.write_text('{"id": "a' + LONE + '", "model_name": "background-remove",'
                    ' "inputs": {"image": "model.png"}}\n')  # fmt: skip
    problem = only(read(path))
    assert (problem.line, problem.field) == (1, "id")
    assert submit(folder, path).problems == [problem]


@pytest.mark.parametrize("loader", ["libyaml", "python"])
def test_yaml_surrogate_escape_is_a_problem(
    folder: Path, loader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libyaml rejects the escape itself; PyYAML's own parser lets it through to us."""
    if loader == "python":
        monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    path = write(folder, "m.yaml", f"""
        jobs:
          - model_name: edit
            inputs:
              image: model.png
              prompt: "a{LONE}"
        """)  # fmt: skip
    problem = only(read(path))
    assert problem.line == 5
    if loader == "python":
        assert problem.field == "inputs.prompt"
        assert "is not valid Unicode text" in problem.message
    assert submit(folder, path).problems == [problem]


# -- 4. URLs with spaces or control characters ---------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://cdn.example/a b.png", ("a space", "%20")),
        ("https://cdn.example/a\\nb.png", ("line break", "percent-encode")),
        ("https://cdn.example/a\\tb.png", ("tab", "percent-encode")),
        ("https://cdn.example/a\\u0085b.png", ("'\\x85'", "percent-encode")),
        ("http://cdn.example/a\\u00a0b.png", ("'\\xa0'", "percent-encode")),
    ],
)
def test_url_with_whitespace_or_control_characters_is_refused(
    folder: Path, url: str, words: tuple[str, ...]
) -> None:
    path = folder / "m.jsonl"
    path.write_text(
        GOOD_LINE + '{"model_name": "background-remove", "inputs": {"image": "' + url + '"}}\n'
    )
    problem = only(read(path))
    assert (problem.line, problem.field) == (2, "inputs.image")
    for word in words:
        assert word in problem.message, problem.message


def test_url_with_percent_encoding_passes(folder: Path) -> None:
    path = write(folder, "m.csv", "model_name,inputs.image\n"
                 "background-remove,https://cdn.example/a%20b.png?x=1&y=%0A\n")  # fmt: skip
    assert read(path).problems == []


# -- 5. the count of problems ---------------------------------------------------------


def test_problem_total_is_true_past_the_listing_cap(folder: Path) -> None:
    """40,000 problems: the header gives 40000, 1000 are listed, the note says 39000 more."""
    rows = "".join(f"r{i},background-remove,urgent,model.png\n" for i in range(40_000))
    path = write(folder, "m.csv", "id,model_name,priority,inputs.image\n" + rows)
    m = read(path)
    assert len(m.problems) == reading.MAX_PROBLEMS == 1000
    assert m.problem_count == 40_000
    assert all(p.field == "priority" for p in m.problems)
    error = submit(folder, path)
    assert error.total == 40_000
    assert len(error.problems) == 1000
    lines = str(error).splitlines()
    assert (
        lines[0] == "40000 problems in the manifest; the first 1000 are listed; nothing was queued"
    )
    assert len(lines) == 1002
    assert "39000 more problems not listed" in lines[-1]


def test_problem_total_counts_duplicates_past_the_cap(folder: Path) -> None:
    """Duplicate ids found by the store add to the total too, listed or not."""
    rows = "".join(f"same,background-remove,https://cdn.example/{i}.png\n" for i in range(3000))
    path = write(folder, "m.csv", "id,model_name,inputs.image\n" + rows)
    error = submit(folder, path)
    assert error.total == 2999
    assert len(error.problems) == 1000
    assert str(error).splitlines()[0].startswith("2999 problems in the manifest; the first 1000")
    assert "1999 more problems not listed" in str(error).splitlines()[-1]


def test_manifest_error_header_without_a_cap() -> None:
    problems = [Problem("m.csv", n, "id", "bad") for n in (2, 3)]
    assert str(ManifestError(problems)).splitlines()[0] == (
        "2 problems in the manifest; nothing was queued"
    )
    assert ManifestError(problems).total == 2
    assert str(ManifestError(problems[:1])).startswith("1 problem in the manifest;")


# -- 6. duplicate ids of jobs that are invalid for another reason ---------------------


@pytest.mark.parametrize("bad_first", [False, True], ids=["valid-first", "invalid-first"])
def test_duplicate_id_is_reported_with_the_other_problems(folder: Path, bad_first: bool) -> None:
    """One run lists the missing image and the repeated id: no second round of fixes."""
    good = "x,background-remove,model.png\n"
    bad = "x,background-remove,missing.png\n"
    rows = bad + good if bad_first else good + bad
    path = write(folder, "m.csv", "id,model_name,inputs.image\n" + rows + "y,reframe,model.png\n")
    error = submit(folder, path)
    bad_line = 2 if bad_first else 3
    found = {(p.line, p.field): p.message for p in error.problems}
    assert set(found) == {(bad_line, "inputs.image"), (3, "id"), (4, "inputs.aspect_ratio")}
    assert "duplicate job id 'x' (first used on line 2)" in found[(3, "id")]
    assert error.total == 3


def test_duplicate_id_among_invalid_yaml_jobs(folder: Path) -> None:
    """Both jobs invalid (here: an unknown key) still reveal that they share an id."""
    path = write(folder, "m.yaml", """
        jobs:
          - id: x
            model_name: background-remove
            inputs: {image: model.png}
            colour: red
          - id: x
            model_name: background-remove
            inputs: {image: model.png}
            colour: blue
        """)  # fmt: skip
    error = submit(folder, path)
    found = {(p.line, p.field) for p in error.problems}
    assert found == {(5, "colour"), (9, "colour"), (6, "id")}


# -- 7. ids that would share an output folder -----------------------------------------


@pytest.mark.parametrize("job_id", ["shoe.", "shoe..", "a.b."])
def test_id_ending_in_a_dot_is_refused(folder: Path, job_id: str) -> None:
    """Windows drops trailing dots: `shoe.` would write into `shoe`'s folder."""
    path = write(folder, "m.csv", f"id,model_name,inputs.image\n{job_id},background-remove,"
                 "model.png\n")  # fmt: skip
    problem = only(read(path))
    assert (problem.line, problem.field) == (2, "id")
    assert "not starting or ending with '.'" in problem.message


def test_batch_name_ending_in_a_dot_is_refused(folder: Path) -> None:
    path = write(folder, "m.yaml", """
        batch: spring.
        jobs:
          - model_name: background-remove
            inputs: {image: model.png}
        """)  # fmt: skip
    problem = only(read(path))
    assert (problem.line, problem.field) == (1, "batch")


def test_ids_differing_only_in_case_are_refused(folder: Path) -> None:
    """`shoe` and `Shoe` are one folder on macOS: both lines are named."""
    rows = "".join(
        f"{job_id},background-remove,https://cdn.example/{n}.png\n"
        for n, job_id in enumerate(["shoe", "hat", "boot", "a", "b", "Shoe", "SHOE", "shoe"])
    )
    path = write(folder, "m.csv", "id,model_name,inputs.image\n" + rows)
    error = submit(folder, path)
    messages = {p.line: p.message for p in error.problems}
    assert set(messages) == {7, 8, 9}
    assert messages[7] == (
        "id 'Shoe' (line 7) and id 'shoe' (line 2) differ only in case: they would share one "
        "output folder on case-insensitive file systems; rename one"
    )
    assert "id 'SHOE' (line 8) and id 'shoe' (line 2) differ only in case" in messages[8]
    assert "duplicate job id 'shoe' (first used on line 2)" in messages[9]
    assert all(p.field == "id" for p in error.problems)


def test_ids_differing_only_in_case_from_queued_jobs_are_refused(folder: Path) -> None:
    """The check also covers jobs already queued in the same batch, not other batches."""
    first = write(folder, "first.csv", "id,model_name,inputs.image\n"
                  "shoe,background-remove,https://cdn.example/1.png\n")  # fmt: skip
    second = write(folder, "second.csv", "id,model_name,inputs.image\n"
                   "hat,background-remove,https://cdn.example/2.png\n"
                   "Shoe,background-remove,https://cdn.example/1.png\n")  # fmt: skip
    store = Store(folder / "queue.db")
    try:
        queue_manifest(store, first, batch="b")
        with pytest.raises(ManifestError) as caught:
            queue_manifest(store, second, batch="b")
        (problem,) = caught.value.problems
        assert (problem.line, problem.field) == (3, "id")
        assert "id 'Shoe' differs only in case from id 'shoe', already queued in batch 'b'" in (
            problem.message
        )
        assert store.state_counts(None) == {"queued": 1}
        assert queue_manifest(store, second, batch="other").added == 2
        assert queue_manifest(store, first, batch="b").unchanged == 1
    finally:
        store.close()


# -- values JSON cannot carry --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("!!binary aGk=", ("cannot read this value", "binary")),
        ("!!set {a, b}", ("cannot read this value", "set")),
        ("!!omap [{a: 1}]", ("cannot read this value", "omap")),
        (".nan", ("not a number JSON can carry",)),
        ("[1, -.inf]", ("not a number JSON can carry",)),
    ],
)
def test_yaml_values_json_cannot_carry_are_problems(
    folder: Path, value: str, words: tuple[str, ...]
) -> None:
    """Such values passed validation and crashed when the job's id was computed."""
    path = write(folder, "m.yaml", f"""
        jobs:
          - model_name: brand-new-model
            inputs:
              image: https://cdn.example/a.png
              knob: {value}
        """)  # fmt: skip
    problem = only(read(path))
    assert (problem.line, problem.field) == (5, "inputs.knob")
    for word in words:
        assert word in problem.message, problem.message
    assert submit(folder, path).problems == [problem]


def test_yaml_dates_stay_text(folder: Path) -> None:
    """An unquoted 2025-03-01 is YAML's timestamp; JSON has none: the text is kept."""
    path = write(folder, "m.yaml", """
        jobs:
          - model_name: brand-new-model
            inputs: {image: "https://cdn.example/a.png", drop: 2025-03-01}
          - model_name: model-create
            inputs: {prompt: 2025-03-01 12:00:00}
        """)  # fmt: skip
    m = read(path)
    assert m.problems == []
    assert [j.inputs for j in m.jobs_read] == [  # type: ignore[attr-defined]
        {"image": "https://cdn.example/a.png", "drop": "2025-03-01"},
        {"prompt": "2025-03-01 12:00:00"},
    ]


def test_repeated_defaults_problem_is_counted_once_past_the_cap(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad default is one problem however many jobs it reaches, listed or not."""
    monkeypatch.setattr(reading, "MAX_PROBLEMS", 3)
    own = "  - model_name: background-remove\n    inputs: {{image: missing-{}.png}}\n"
    defaulted = "  - model_name: tryon-max\n    inputs: {product_image: model.png}\n"
    jobs = "".join(own.format(i) for i in range(5)) + defaulted * 5
    path = folder / "m.yaml"
    path.write_text("defaults:\n  inputs:\n    model_image: nowhere.png\njobs:\n" + jobs)
    m = read(path)
    assert m.problem_count == 6  # each job's own image, and the default once
    assert submit(folder, path).total == 6

"""Saving outputs: names, data URIs, atomic writes."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import anyio
import httpx
import pytest

from orchestrator.outputs import (
    OutputDirError,
    OutputError,
    check_writable,
    decode_data_uri,
    extension,
    is_folder_name,
    output_path,
    remove_partials,
    save_output,
    write_atomically,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 8


def test_distinct_ids_get_distinct_folders(tmp_path: Path) -> None:
    """Ids that differ by a dot never share a folder: ids are used verbatim."""
    ids = ["shoe", "shoe.", "shoe..", "shoe.1", "shoe_", "Shoe"]
    paths = {output_path(tmp_path, "b", job_id, 0, "png") for job_id in ids}
    assert len(paths) == len(ids)
    assert output_path(tmp_path, "b", "shoe.", 0, "png").parent.name == "shoe."


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "..", ".hidden", "", "ü", "a" * 129])
def test_unsafe_names_never_become_paths(tmp_path: Path, name: str) -> None:
    """A name that is not one plain path component is refused, not rewritten."""
    assert not is_folder_name(name)
    with pytest.raises(OutputError):
        output_path(tmp_path, "b", name, 0, "png")


@pytest.mark.parametrize("name", ["sku-123_front.v2", "A", "0", "x" * 128])
def test_folder_names(name: str) -> None:
    """Letters, digits, '.', '_' and '-', not starting with '.', nor ending with it."""
    assert is_folder_name(name)
    assert not is_folder_name(name + ".")


def test_decode_data_uri() -> None:
    """A base64 data URI gives its bytes and media type."""
    data, mime = decode_data_uri("data:image/png;base64," + base64.b64encode(b"abc").decode())
    assert (data, mime) == (b"abc", "image/png")


@pytest.mark.parametrize("uri", ["data:image/png,abc", "data:image/png;base64,@@@", "nonsense"])
def test_bad_data_uri_is_not_retryable(uri: str) -> None:
    """A data URI that does not decode will not decode next time either."""
    with pytest.raises(OutputError) as err:
        decode_data_uri(uri)
    assert not err.value.retryable


@pytest.mark.parametrize(
    ("data", "ext"),
    [
        (PNG, "png"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "jpg"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "webp"),
        (b"GIF89a\x01\0", "gif"),
        (b"\0\0\0\x18ftypmp42\0\0", "mp4"),
        (b"#!/bin/sh\nrm -rf ~\n", "bin"),
        (b"", "bin"),
    ],
)
def test_extension_comes_from_the_bytes(data: bytes, ext: str) -> None:
    """PNG, JPEG, WEBP, GIF and MP4 by their signatures; anything else is .bin."""
    assert extension(data) == ext


def test_content_type_and_url_never_name_the_file(tmp_path: Path) -> None:
    """A shell script served as application/x-sh from a .sh URL is saved as 0.bin."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=b"#!/bin/sh\n", headers={"content-type": "application/x-sh"}
        )

    async def main():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await save_output(http, "https://cdn.example/0.sh", tmp_path, "b", "j", 0)

    assert anyio.run(main).path.name == "0.bin"


def test_outputs_get_the_usual_mode(tmp_path: Path) -> None:
    """Saved files are readable by others under the usual umask (0644), not 0600."""
    umask = os.umask(0o022)
    os.umask(umask)
    saved = write_atomically(tmp_path / "a" / "0.png", PNG)
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o666 & ~umask


def test_remove_partials_deletes_only_temporary_files(tmp_path: Path) -> None:
    """What a killed writer left (.N.png.XXXX.part) goes; outputs stay."""
    folder = tmp_path / "b" / "j"
    folder.mkdir(parents=True)
    (folder / "0.png").write_bytes(PNG)
    (folder / ".1.png.abcd1234.part").write_bytes(b"half")
    assert remove_partials(folder) == 1
    assert [p.name for p in folder.iterdir()] == ["0.png"]
    assert remove_partials(tmp_path / "absent") == 0


def test_check_writable_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    """--out that cannot be a folder is found before anything is paid for."""
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(OutputDirError, match="taken"):
        check_writable(tmp_path / "taken" / "out")
    check_writable(tmp_path / "fine")
    assert list((tmp_path / "fine").iterdir()) == []


def test_write_atomically_leaves_no_partial_files(tmp_path: Path) -> None:
    """The file appears whole, with its checksum, and no temporary file remains."""
    saved = write_atomically(tmp_path / "a" / "0.png", b"hello")
    assert saved.path.read_bytes() == b"hello"
    assert saved.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["0.png"]


def test_save_output_refuses_other_schemes(tmp_path: Path) -> None:
    """Only http(s) and data: outputs are accepted; file: is refused for good."""

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            await save_output(http, "file:///etc/passwd", tmp_path, "b", "j", 0)

    with pytest.raises(OutputError, match="scheme 'file'") as err:
        anyio.run(main)
    assert not err.value.retryable


def test_save_output_from_data_uri(tmp_path: Path) -> None:
    """A base64 output is decoded to OUT/batch/job/n.ext; only its header is kept as URL."""
    uri = "data:image/png;base64," + base64.b64encode(b"png-bytes").decode()

    async def main():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as http:
            return await save_output(http, uri, tmp_path, "batch", "job-1", 2)

    saved = anyio.run(main)
    assert saved.path == tmp_path / "batch" / "job-1" / "2.bin"
    assert saved.path.read_bytes() == b"png-bytes"
    assert saved.url == "data:image/png;base64,…"


@pytest.mark.parametrize(
    "error",
    [
        httpx.DecodingError("bad gzip"),
        httpx.TooManyRedirects("loop"),
        httpx.ReadTimeout("slow"),
    ],
)
def test_any_http_failure_is_a_failed_try(tmp_path: Path, error: Exception) -> None:
    """Errors that are not transport errors (a body that does not decode, a redirect
    loop) are a retryable download failure too, never an unexpected exception."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await save_output(http, "https://cdn.example/0.png", tmp_path, "b", "j", 0)

    with pytest.raises(OutputError, match=type(error).__name__) as err:
        anyio.run(main)
    assert err.value.retryable

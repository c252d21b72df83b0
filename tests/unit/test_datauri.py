"""The one data-URI parser: what it accepts, and which of its two errors it raises."""

from __future__ import annotations

import base64

import pytest

from orchestrator.datauri import DataURI, DataURIError, parse_data_uri

PAYLOAD = base64.b64encode(b"\x89PNG\r\n\x1a\nrest").decode()


@pytest.mark.parametrize(
    ("uri", "mime"),
    [
        (f"data:image/png;base64,{PAYLOAD}", "image/png"),
        (f"DATA:image/png;base64,{PAYLOAD}", "image/png"),  # the scheme in any case
        (f"data:;base64,{PAYLOAD}", ""),  # no media type named
        (f"data:image/png;name=a.png;base64,{PAYLOAD}", "image/png;name=a.png"),
    ],
)
def test_parses_media_type_and_bytes(uri: str, mime: str) -> None:
    assert parse_data_uri(uri) == DataURI(mime, b"\x89PNG\r\n\x1a\nrest")


def test_empty_payload_is_no_bytes() -> None:
    """Whether empty data is acceptable is for the caller to say."""
    assert parse_data_uri("data:image/png;base64,") == DataURI("image/png", b"")


@pytest.mark.parametrize(
    "uri",
    [
        "nonsense",
        "https://cdn.example/a.png",
        "data:image/png,abc",  # not base64
        "data:image/png;base64",  # no comma
        "data:base64,QUJD",  # no ';' before base64
        "dat:image/png;base64,QUJD",
    ],
)
def test_not_a_base64_data_uri(uri: str) -> None:
    with pytest.raises(DataURIError) as caught:
        parse_data_uri(uri)
    assert caught.value.payload is False


def test_media_prefix_is_checked_before_the_payload() -> None:
    """A text/plain URI is refused for its type, even when its payload is bad too."""
    for payload in ("aGk=", "@@@"):
        with pytest.raises(DataURIError) as caught:
            parse_data_uri(f"data:text/plain;base64,{payload}", media_prefix="image/")
        assert caught.value.payload is False
    assert parse_data_uri("data:image/gif;base64,aGk=", media_prefix="image/").mime == "image/gif"


@pytest.mark.parametrize(
    "payload",
    [
        "@@@@",
        "QUJD\nQUJD",  # a line break
        "QU JD",  # a space
        "QUI",  # not padded
        "QQ==QQ==",  # data after the padding
        "=QUJ",  # padding first
        "QUJD\u00e9",  # not ASCII: this used to escape as a bare ValueError
    ],
)
def test_payload_must_be_strict_base64(payload: str) -> None:
    with pytest.raises(DataURIError) as caught:
        parse_data_uri(f"data:image/png;base64,{payload}")
    assert caught.value.payload is True
    assert str(caught.value)  # says why, for the callers that show it

"""One card per job: id, model and state; its inputs (thumbnails and the other values);
its outputs (thumbnails linking to the full files, videos with a poster); its attempts;
and, for a failed job, its error in words."""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..catalog import GENERIC_IMAGE_INPUTS, MODELS
from .thumbs import Thumbnailer
from .words import in_words

_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov")
_BLOB_KEY = "$blob"


class CardMaker:
    """Renders cards; `blob` returns a stored data URI by digest (local input images)."""

    def __init__(
        self, thumbs: Thumbnailer, blob: Callable[[str], str | None], out_dir: Path
    ) -> None:
        self.thumbs = thumbs
        self._blob = blob
        self._blobs: dict[str, str | None] = {}  # digest -> thumbnail link
        self.out_dir = out_dir

    def card(self, row: dict[str, Any], index: int) -> str:
        job, attempts, outputs = row["job"], row["attempts"], row["outputs"]
        batch, state, model = job["batch_id"], job["state"], job["model_name"]
        inputs = json.loads(job["inputs"])
        pictures, values, poster = self._inputs(batch, model, inputs)
        made = self._outputs(batch, job["job_id"], outputs, poster)
        error = in_words(job["error"]) if state == "failed" else None
        e = escape
        head = (
            f'<article class="card {e(state)}" id="job-{index}" data-state="{e(state)}" '
            f'data-model="{e(model)}" data-id="{e(job["job_id"])}">'
            f'<header><h3 title="{e(batch)}">{e(job["job_id"])}</h3>'
            f'<span class="badge {e(state)}">{e(state)}</span></header>'
            f'<p class="meta"><span class="model">{e(model)}</span>'
            f'<span class="credits">{_credits(int(job["credits"]))}</span></p>'
        )
        body = (
            f'<div class="io"><div class="inputs" title="inputs">{"".join(pictures)}</div>'
            f'<div class="arrow" aria-hidden="true">&rarr;</div>'
            f'<div class="outputs" title="outputs">{made}</div></div>'
        )
        if error:
            body += (
                f'<p class="error"><strong>{e(error)}</strong>'
                f'<span class="raw">{e(job["error"])}</span></p>'
            )
        if values:
            body += f'<dl class="values">{"".join(values)}</dl>'
        return head + body + _attempts(attempts) + "</article>\n"

    def _inputs(
        self, batch: str, model: str, inputs: dict[str, Any]
    ) -> tuple[list[str], list[str], str | None]:
        """Image inputs as thumbnails (remote ones as links), other values as a list;
        and the first input thumbnail, a video's poster."""
        spec = MODELS.get(model)
        images = set(spec.image_inputs if spec else ()) | GENERIC_IMAGE_INPUTS
        pictures, values, poster = [], [], None
        for key, value in inputs.items():
            if isinstance(value, dict) and _BLOB_KEY in value:
                link = self._of_blob(batch, str(value[_BLOB_KEY]))
                pictures.append(_picture(key, link))
                poster = poster or link
            elif isinstance(value, str) and value[:11].lower() == "data:image/":
                link = self.thumbs.of_data_uri(batch, value)
                pictures.append(_picture(key, link))
                poster = poster or link
            elif isinstance(value, str) and key in images and value.startswith(("http:", "https:")):
                pictures.append(_remote(key, value))
            else:
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                values.append(f"<dt>{escape(key)}</dt><dd>{escape(shown)}</dd>")
        return pictures, values, poster

    def _of_blob(self, batch: str, digest: str) -> str | None:
        key = f"{batch}/{digest}"
        if key not in self._blobs:
            uri = self._blob(digest)
            self._blobs[key] = None if uri is None else self.thumbs.of_data_uri(batch, uri)
        return self._blobs[key]

    def _outputs(
        self, batch: str, job_id: str, outputs: list[dict[str, Any]], poster: str | None
    ) -> str:
        shown = []
        for o in outputs:
            if o["state"] != "saved" or not o["path"]:
                shown.append(f'<div class="missing">output {o["idx"]}: not saved</div>')
                continue
            path = self._locate(batch, job_id, Path(o["path"]))
            full = self.thumbs.link(path)
            label = f"{job_id} · output {o['idx']}"
            if path.suffix.lower() in _VIDEO_SUFFIXES:
                attr = f' poster="{escape(poster)}"' if poster else ""
                shown.append(
                    f'<video class="output" controls preload="none"{attr} src="{escape(full)}" '
                    f'title="{escape(label)}"></video>'
                )
                continue
            thumb = self.thumbs.of_file(batch, path, o["sha256"]) if path.exists() else None
            inner = (
                f'<img class="output" src="{escape(thumb)}" loading="lazy" alt="{escape(label)}">'
                if thumb
                else f'<span class="file">{escape(path.name)}</span>'
            )
            shown.append(
                f'<a class="out" href="{escape(full)}" title="{escape(label)}">{inner}</a>'
            )
        return "".join(shown) or '<div class="none">no output</div>'

    def _locate(self, batch: str, job_id: str, recorded: Path) -> Path:
        """The file as recorded (relative paths are the run's working directory), or
        where it is under OUT when the recorded place no longer has it."""
        if recorded.exists():
            return recorded
        moved = self.out_dir / batch / job_id / recorded.name
        return moved if moved.exists() else recorded


def _picture(key: str, link: str | None) -> str:
    if link is None:
        return f'<figure class="input"><div class="file">{escape(key)}</div></figure>'
    return (
        f'<figure class="input"><img src="{escape(link)}" loading="lazy" alt="{escape(key)}">'
        f"<figcaption>{escape(key)}</figcaption></figure>"
    )


def _remote(key: str, url: str) -> str:
    """A remote input: a link, never fetched by the page."""
    parts = urlsplit(url)
    name = parts.path.rsplit("/", 1)[-1] or parts.netloc
    return (
        f'<figure class="input remote"><a href="{escape(url)}" target="_blank" rel="noopener '
        f'noreferrer" title="{escape(url)}"><span class="tag">remote</span>'
        f'<span class="host">{escape(parts.netloc)}</span><span class="name">{escape(name)}</span>'
        f"</a><figcaption>{escape(key)}</figcaption></figure>"
    )


def _attempts(attempts: list[dict[str, Any]]) -> str:
    if not attempts:
        return '<p class="attempts none">not sent yet</p>'
    rows = []
    for a in attempts:
        status = a["status"] or a["state"]
        error = ": ".join(x for x in (a["error_name"], a["error_message"]) if x)
        flag = (
            ' <span class="uncertain" title="sent, answer lost: may have been charged">'
            "uncertain</span>"
        )
        rows.append(
            f"<tr><td><code>{escape(a['prediction_id'] or '-')}</code>"
            f"{flag if a['uncertain'] else ''}</td><td>{escape(status)}</td>"
            f"<td>{int(a['credits'] or 0)}</td><td>{escape(error)}</td></tr>"
        )
    n = len(attempts)
    return (
        f'<details class="attempts"><summary>{n} attempt{"" if n == 1 else "s"}</summary>'
        "<table><thead><tr><th>prediction</th><th>status</th><th>credits</th><th>error</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></details>"
    )


def _credits(n: int) -> str:
    return f"{n} credit" if n == 1 else f"{n} credits"

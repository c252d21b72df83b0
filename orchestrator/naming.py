"""Where outputs go under --out: a name template such as `{batch}/{id}/{n}.{ext}`.

Fields: `batch`, `id`, `model`, `n` (the output's index), `ext` (from the file's own
bytes) and `meta.<name>` (the job's own data). A template is checked when it is
given (syntax, fields, no absolute path, no `..`), and again against every job it
will name before anything is paid (NameCheck): each value must be one path
component (no separators), every meta field must be there, and no two outputs may
get one name, compared as case-insensitive file systems (macOS, Windows) compare
them. Pure: the store feeds the jobs, the downloader renders the paths.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from .catalog import MODELS, output_count
from .errors import HandledError, Problem, UsageError

DEFAULT_TEMPLATE: Final = "{batch}/{id}/{n}.{ext}"
FIELDS: Final = ("batch", "id", "model", "n", "ext")
# What `ext` is when a template is checked: outputs of one job that differ only in
# their extension are told apart by the check anyway, which is the safe side.
CHECK_EXT: Final = "png"
MAX_COMPONENT_BYTES: Final = 255  # the common file system limit on one name
_META: Final = "meta."
_FIELD_HELP: Final = "fields are {batch}, {id}, {model}, {n}, {ext} and {meta.<name>}"
# The names a job's meta may use (manifest/meta.py): what `{meta.<name>}` and a CSV
# header's `meta.<name>` can spell.
META_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,63}")
META_NAME_RULE: Final = "1-64 letters, digits, '_' or '-' (not starting with '-'), e.g. 'sku'"


class TemplateError(UsageError):
    """A name template that cannot be used, whatever the jobs."""


class NamingProblem(HandledError):
    """One job's output cannot be named by a template (`field` says which value)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class JobNaming:
    """What a template may use of one job, and where the job came from."""

    batch: str
    id: str
    model: str
    meta: Mapping[str, Any] | None = None
    outputs: int = 1  # the most outputs its prediction can yield
    file: str | None = None
    line: int | None = None


def most_outputs(model: str, inputs: Mapping[str, Any]) -> int:
    """How many outputs a job may yield: a model this release does not know may yield
    several, so a template without {n} is refused for it."""
    count = output_count(model, inputs)
    return count if model in MODELS else max(count, 2)


@dataclass(frozen=True)
class NameTemplate:
    text: str
    parts: tuple[tuple[str, str | None], ...] = field(repr=False)

    @classmethod
    def parse(cls, text: str | None) -> NameTemplate:
        """The template `text` (None: the default), checked; TemplateError if unusable."""
        return _parse(DEFAULT_TEMPLATE if text is None else text)

    @property
    def is_default(self) -> bool:
        return self.text == DEFAULT_TEMPLATE

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(name for _, name in self.parts if name is not None)

    @property
    def keeps_jobs_apart(self) -> bool:
        """Whether two jobs can never share a name, whatever their values: a first
        folder of its own per batch, and a component of its own per job id."""
        components = self.text.split("/")
        return components[0] == "{batch}" and "{id}" in components[1:]

    @property
    def needs_values(self) -> bool:
        """Whether some job's values could make a name invalid (model, meta)."""
        return any(name == "model" or name.startswith(_META) for name in self.fields)

    def render(self, job: JobNaming, n: int, ext: str) -> str:
        """The output's path under --out, `/`-separated; NamingProblem if it has none."""
        pieces = []
        for literal, name in self.parts:
            pieces.append(literal)
            if name is not None:
                pieces.append(_value(job, name, n, ext))
        path = "".join(pieces)
        for component in path.split("/"):
            if component in ("", ".", ".."):
                raise NamingProblem(
                    "name-template", f"the name {path!r} has an empty, '.' or '..' part"
                )
            if len(component.encode()) > MAX_COMPONENT_BYTES:
                raise NamingProblem(
                    "name-template",
                    f"the name {path!r} has a part longer than {MAX_COMPONENT_BYTES} bytes",
                )
        return path


@lru_cache(maxsize=64)
def _parse(text: str) -> NameTemplate:
    where = f"--name-template {text!r}"
    if not text or any(unicodedata.category(c).startswith("C") for c in text):
        raise TemplateError(
            f"{where} is empty or holds control characters; e.g. {DEFAULT_TEMPLATE}"
        )
    if text.startswith(("/", "~")) or "\\" in text or (len(text) > 1 and text[1] == ":"):
        raise TemplateError(
            f"{where} must be a path relative to --out with '/' between folders, "
            "e.g. {batch}/{meta.sku}/{n}.{ext}"
        )
    try:
        raw = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}; write {{{{ or }}}} for a literal brace") from None
    parts: list[tuple[str, str | None]] = []
    for literal, name, spec, conversion in raw:
        if name is not None and (spec or conversion):
            raise TemplateError(f"{where}: write {{{name}}} without ':' or '!'; {_FIELD_HELP}")
        if name is not None and not _known(name):
            raise TemplateError(f"{where}: unknown field {{{name}}}; {_FIELD_HELP}")
        parts.append((literal, name))
    template = NameTemplate(text, tuple(parts))
    meta = {name[len(_META) :]: "v" for _, name in parts if name and name.startswith(_META)}
    sample = JobNaming("b", "i", "m", meta)
    try:
        template.render(sample, 0, CHECK_EXT)
    except NamingProblem:
        raise TemplateError(
            f"{where} has an empty, '.' or '..' part: its names would leave --out or "
            "miss a folder; e.g. {batch}/{meta.sku}/{n}.{ext}"
        ) from None
    return template


def _known(name: str) -> bool:
    if name in FIELDS:
        return True
    return name.startswith(_META) and META_NAME.fullmatch(name[len(_META) :]) is not None


def _value(job: JobNaming, name: str, n: int, ext: str) -> str:
    if name == "batch":
        return job.batch
    if name == "id":
        return job.id
    if name == "n":
        return str(n)
    if name == "ext":
        return ext
    if name == "model":
        return _component(name, job.model, "the model name")
    key = name[len(_META) :]
    value = (job.meta or {}).get(key)
    if value is None:
        raise NamingProblem(
            name,
            f"job {job.id!r} has no {name}, which the template names; give every job a "
            f"{name}, or leave {{{name}}} out of --name-template",
        )
    if isinstance(value, Mapping):
        raise NamingProblem(name, f"{name} of job {job.id!r} is a mapping; name a text value")
    if isinstance(value, bool):
        return "true" if value else "false"
    return _component(name, str(value), f"{name} of job {job.id!r}")


def _component(name: str, value: str, what: str) -> str:
    """`value` as (part of) one path component: no separator, no control character."""
    if not value or "/" in value or "\\" in value:
        shown = repr(value) if value else "empty"
        raise NamingProblem(
            name,
            f"{what} is {shown}: a name may not hold '/' or '\\' (or be empty), which "
            "would put the output elsewhere; change the value or the template",
        )
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise NamingProblem(name, f"{what} holds control characters; change the value")
    return value


def folded(path: str) -> str:
    """A name as a case-insensitive file system compares it."""
    return unicodedata.normalize("NFC", path).casefold()


class NameCheck:
    """Every output of the jobs added so far, by folded name, to find two that would
    share one; problems are kept for the jobs added with `report=True`."""

    def __init__(self, *, shared: bool = True, limit: int = 1000):
        self.shared = shared  # False: jobs cannot clash (the templates keep them apart)
        self.limit = limit
        self.problems: list[Problem] = []
        self.total = 0
        self._names: dict[str, _Seen] = {}

    def add(self, template: NameTemplate, job: JobNaming, *, report: bool = True) -> None:
        try:
            names = [template.render(job, n, CHECK_EXT) for n in range(job.outputs)]
        except NamingProblem as exc:
            self._problem(job, exc.field, exc.message, report)
            return
        if len(set(map(folded, names))) < len(names):
            self._problem(
                job,
                "name-template",
                f"job {job.id!r} yields up to {job.outputs} outputs, which {template.text!r} "
                "gives one name; add {n} to --name-template",
                report,
            )
            return
        if not self.shared:
            return
        for n, name in enumerate(names):
            key = folded(name)
            other = self._names.get(key)
            if other is None:
                self._names[key] = (job.batch, job.id, job.file, job.line)
                continue
            self._problem(job, "name-template", _shared(job, n, name, other), report)
            return

    def _problem(self, job: JobNaming, field: str, message: str, report: bool) -> None:
        if not report:
            return
        self.total += 1
        if len(self.problems) < self.limit:
            self.problems.append(Problem(job.file or job.batch, job.line, field, message))


_Seen = tuple[str, str, str | None, int | None]  # batch, job id, manifest file, line


def _shared(job: JobNaming, n: int, name: str, other: _Seen) -> str:
    batch, job_id, file, line = other
    where = f" ({file}:{line})" if file and line else ""
    whose = f"job {job_id!r}" + (f" of batch {batch!r}" if batch != job.batch else "")
    return (
        f"job {job.id!r} would write output {n} to {name!r}, as {whose}{where} does; "
        "name each job apart (e.g. put {id} or a meta field that differs per job, and "
        "{batch}, in --name-template)"
    )


class NameTemplateError(UsageError):
    """Some job's outputs cannot be named by its batch's template: nothing was done."""

    def __init__(self, template: str, problems: list[Problem], total: int):
        self.problems = problems
        listed = "\n".join(f"  {p}" for p in problems)
        more = f"\n  ... {total - len(problems)} more" if total > len(problems) else ""
        super().__init__(
            f"the name template {template!r} cannot name every output ({total} "
            f"problem{'s' if total != 1 else ''}); nothing was queued or sent:\n{listed}{more}"
        )

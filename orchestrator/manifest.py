"""Manifest → validated job specs.

A manifest is a YAML, CSV or JSON Lines file of jobs. `read_manifest()` picks the
reader by suffix; `Manifest.jobs()` yields each valid job as a `JobSpec` and records
every problem (file, line, field, what to do) in `Manifest.problems`, so the caller
can list them all at once and queue nothing.

CSV and JSON Lines are streamed row by row: memory does not grow with the number of
rows. Duplicate ids (and ids that differ only in letter case) are left to the store,
which can check a million ids with SQL without holding them here; the reader only
keeps the ids of the jobs it refused for other reasons (bounded, in
`problems.rejected`), so that the store reports their duplicates in the same run.

Decisions worth knowing:
- A job without an `id` gets the first 16 hex digits of the fingerprint of its model
  and *resolved* inputs, where each image that became a data URI is represented by
  the sha256 of that URI. So the id depends on image content, not on how the image
  was written (path, folder, inline data URI), it is the same in every format, and
  a changed image gives a new id. Hashing a digest instead of the whole URI keeps a
  million rows that share one big image cheap.
- An input that a known model does not accept is a problem, not a warning: a typo
  such as `modle_image` would otherwise be dropped silently.
- An unknown model name is a warning: FASHN adds models, and the API has the last word.
- `null` (YAML/JSON) means "not set", so a job can cancel an input from `defaults`.
- `defaults.inputs` go only into jobs whose model accepts them (all inputs go to
  unknown models), so one defaults block can serve several models.
- Hostile input is a problem like any other: YAML aliases may not expand a file past
  a budget relative to what it writes (a "billion laughs" is 500 bytes); local images
  must be regular files under a size cap, opened without blocking; values may not
  nest past MAX_NESTING levels; text must be valid Unicode (a JSON or YAML escape can
  produce half a surrogate pair, which cannot be stored); URLs may not hold spaces.
"""

from __future__ import annotations

import base64
import binascii
import csv
import difflib
import hashlib
import json
import math
import os
import re
import stat
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import yaml
import yaml.constructor

from orchestrator.catalog import GENERIC_IMAGE_INPUTS, MAX_OUTPUTS, MODELS, ModelSpec
from orchestrator.errors import Problem, ProblemList
from orchestrator.models import JobSpec, Location

__all__ = ["FORMATS", "Manifest", "read_manifest"]

# Suffix → format. Anything else is refused with a problem naming these.
FORMATS: Final[Mapping[str, str]] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

ID_HEX_DIGITS: Final = 16  # 64 bits: P(any collision among 1M ids) ~ 3e-8
MAX_ID_LENGTH: Final = 128
# Ids name output folders: no separators, no hidden names, no `.` or `..`, and no
# trailing '.', which Windows drops (`shoe.` would be `shoe`'s folder). Ids of one
# batch that differ only in letter case share a folder on case-insensitive file
# systems: the store checks that, as it needs every id of the batch.
_SAFE_NAME = re.compile(rf"[A-Za-z0-9_-](?:[A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 2}}}[A-Za-z0-9_-])?")
_ID_RULE = (
    f"1-{MAX_ID_LENGTH} letters, digits, '.', '_' or '-', not starting or ending with '.'"
    " (it names the job's output folder, so the ids of a batch must also differ in more"
    " than letter case), e.g. 'sku-1042_front'"
)
_INT64 = 2**63 - 1  # SQLite INTEGER range, where priority ends up

# A broken million-row file should not build a million-line report: past this many
# problems only a count is kept.
MAX_PROBLEMS: Final = 1000
MAX_WARNINGS: Final = 100

# Local images are read once per manifest read; both bounds keep the cache small
# even when every file is large.
IMAGE_CACHE_FILES: Final = 64
IMAGE_CACHE_CHARS: Final = 256 * 1024 * 1024

# A local image larger than this is refused before it is read (it is sent inline, as
# base64, in every request). The environment variable, read when a Manifest is
# created, overrides it; the `max_image_bytes` argument overrides both.
MAX_IMAGE_MB: Final = 25
IMAGE_LIMIT_ENV: Final = "ORCHESTRATOR_MAX_IMAGE_MB"
_MIB: Final = 1024 * 1024

# Lists and mappings inside one input value: deeper is never a real input, and a
# few hundred levels break JSON encoding when the job is stored.
MAX_NESTING: Final = 32
# YAML aliases may expand a file to at most this many values per value it writes,
# plus the floor: merging an anchored job into 100,000 others stays well inside,
# a "billion laughs" (9 levels of 9 aliases in 500 bytes) does not.
YAML_EXPANSION_FACTOR: Final = 32
YAML_EXPANSION_FLOOR: Final = 100_000

JOB_KEYS: Final = ("id", "model_name", "inputs", "priority")
TOP_KEYS: Final = ("batch", "defaults", "jobs")
DEFAULT_KEYS: Final = ("model_name", "inputs", "priority")

# Inputs whose CSV cells are converted from text, whatever the model.
INT_INPUTS: Final = frozenset(
    {"seed", "duration"} | {m.count_input for m in MODELS.values() if m.count_input}
)
BOOL_INPUTS: Final = frozenset({"return_base64", "segmentation_free"})
_BOOL_WORDS: Final = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}
_COUNT_INPUTS: Final = frozenset(m.count_input for m in MODELS.values() if m.count_input)
_ALL_INPUTS: Final = frozenset(name for m in MODELS.values() for name in m.inputs)

_MISSING: Final[Any] = object()  # "the field is absent", distinct from null

Checker = Callable[[Any], "str | None"]  # value → what is wrong with it, or None


def read_manifest(path: str | os.PathLike[str], *, max_image_bytes: int | None = None) -> Manifest:
    """Open a manifest for reading; its format comes from the file suffix.

    YAML is parsed here (so `batch_name` is known at once); CSV and JSON Lines are
    read while `jobs()` is iterated. Problems found so far are in `.problems`.
    `max_image_bytes` caps local image files (default: MAX_IMAGE_MB, or the
    ORCHESTRATOR_MAX_IMAGE_MB environment variable).
    """
    manifest = Manifest(path, max_image_bytes=max_image_bytes)
    if manifest.format == "yaml":
        manifest._load_yaml()
    return manifest


class Manifest:
    """A manifest file: its jobs (streamed), its problems and warnings, its batch name."""

    def __init__(self, path: str | os.PathLike[str], *, max_image_bytes: int | None = None):
        self.path = Path(path)
        self.file = str(path)  # as the user wrote it: that is what they recognise
        self.format: str | None = FORMATS.get(self.path.suffix.lower())
        self.batch_name = self.path.stem
        self.problems = ProblemList()
        self.warnings: list[Problem] = []
        # Image paths are relative to the manifest, not to the working directory.
        self._base = os.path.dirname(os.path.abspath(self.path))
        self._plans: dict[str, _Plan] = {name: _Plan.known(spec) for name, spec in MODELS.items()}
        self._generic = _Plan.generic()
        self._load_problems: list[Problem] = []
        self._load_unlisted = 0
        self._load_warnings: list[Problem] = []
        self._yaml_jobs_list: _YList | None = None
        self._yaml_defaults: _YMap | None = None
        # CSV is decoded from UTF-8 into flat cells: it can hold neither half a
        # surrogate pair nor nested values, so its hot loop skips those checks.
        self._check_values = self.format != "csv"
        setting_error = None
        if max_image_bytes is None:
            max_image_bytes, setting_error = _image_limit_from_environment()
        elif max_image_bytes < 1:
            raise ValueError(f"max_image_bytes must be positive; got {max_image_bytes}")
        self.max_image_bytes = max_image_bytes
        self._reset()
        if setting_error is not None:
            self._problem(None, None, setting_error)
        if self.format is None:
            suffix = self.path.suffix or "(none)"
            self._problem(
                None,
                None,
                f"unsupported manifest type {suffix!r}; name the file *.yaml, *.yml, "
                "*.csv, *.jsonl or *.ndjson to match its format",
            )
        self._load_problems = list(self.problems)
        self._load_unlisted = self.problems.unlisted

    def __repr__(self) -> str:
        return (
            f"<Manifest {self.file!r} format={self.format} jobs_seen={self._jobs_seen}"
            f" problems={self.problem_count} warnings={len(self.warnings)}>"
        )

    # -- public -------------------------------------------------------------------

    @property
    def problem_count(self) -> int:
        """Every problem found, including those past MAX_PROBLEMS that are not listed."""
        return self.problems.total

    def jobs(self) -> Iterator[JobSpec]:
        """Yield every valid job in file order; record problems of the others.

        Each call reads the file again and starts the problem lists afresh.
        """
        self._reset()
        self.problems[:] = self._load_problems
        self.problems.unlisted = self._load_unlisted
        self.problems.rejected = []
        self.warnings[:] = self._load_warnings
        self._seen_problems.update(self.problems)
        if self.format == "yaml":
            yield from self._yaml_jobs()
        elif self.format == "csv":
            yield from self._csv_jobs()
        elif self.format == "jsonl":
            yield from self._jsonl_jobs()
        if self._jobs_seen == 0 and not self.problems:
            self._problem(None, "jobs", "the manifest has no jobs; add at least one job")

    # -- recording ----------------------------------------------------------------

    def _reset(self) -> None:
        self._seen_problems: set[Problem] = set()
        self._unknown_models: set[str] = set()
        self._jobs_seen = 0
        self._images = _Images(self._base, self.max_image_bytes)

    def _problem(self, line: int | None, field: str | None, message: str) -> None:
        problem = Problem(self.file, line, field, message)
        # A bad `defaults` entry is found again in every job: list it once.
        if problem in self._seen_problems:
            return
        if len(self.problems) < MAX_PROBLEMS:
            self._seen_problems.add(problem)
            self.problems.append(problem)
            return
        # Past the cap only a count is kept. A YAML file's repeats (defaults) must not
        # inflate it; YAML is held in memory anyway, so remembering them costs little.
        self.problems.unlisted += 1
        if self.format == "yaml":
            self._seen_problems.add(problem)

    def _reject(self, job_id: str, line: int) -> None:
        """Remember a refused job's valid id for the store's duplicate check."""
        if len(self.problems.rejected) < MAX_PROBLEMS:
            self.problems.rejected.append((job_id, line))

    def _warning(self, line: int | None, field: str | None, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(Problem(self.file, line, field, message))

    # -- one job, whatever the format ---------------------------------------------

    def _job(
        self,
        line: int,
        model_name: Any,
        inputs: Any,
        job_id: Any,
        priority: Any,
        lines: Mapping[str, int] | None = None,
        valid: bool = True,
    ) -> JobSpec | None:
        """Validate one job's fields; return its spec, or None after recording why not.

        `lines` maps a field ("model_name", "inputs.image") to its own line (YAML);
        without it every problem is reported at the job's line. `valid` is False when
        the caller has already reported a problem with this job (an unknown key).
        """
        self._jobs_seen += 1
        ok = valid
        plan = self._generic
        if model_name is _MISSING:
            ok = False
            self._problem(
                line,
                "model_name",
                "missing model_name; add one such as 'model_name: tryon-max' "
                f"(known models: {', '.join(MODELS)})",
            )
        elif type(model_name) is not str or not model_name:
            ok = False
            self._problem(
                _at(lines, "model_name", line),
                "model_name",
                f"model_name must be a model's name as text, e.g. tryon-max; "
                f"got {_show(model_name)}",
            )
        elif self._check_values and not _is_unicode(model_name):
            ok = False
            self._problem(
                _at(lines, "model_name", line), "model_name", f"{_show(model_name)} {_NOT_UNICODE}"
            )
        else:
            known = self._plans.get(model_name)
            if known is not None:
                plan = known
            elif model_name not in self._unknown_models:
                self._unknown_models.add(model_name)
                self._warning(
                    _at(lines, "model_name", line),
                    "model_name",
                    f"unknown model {model_name!r}{_did_you_mean(model_name, MODELS)}; "
                    "its jobs are sent to the API unchanged. Ignore this if it is a new "
                    f"FASHN model (known: {', '.join(MODELS)})",
                )

        resolved: dict[str, Any] = {}
        tokens: dict[str, str] | None = None
        if inputs is _MISSING:
            ok = False
            self._problem(
                line,
                "inputs",
                "missing inputs; add a mapping of the model's inputs, e.g. "
                "inputs: {image: photos/shirt.jpg}",
            )
        elif type(inputs) is not dict and not isinstance(inputs, Mapping):
            ok = False
            self._problem(
                _at(lines, "inputs", line),
                "inputs",
                f"inputs must be a mapping of input name to value; got {_show(inputs)}",
            )
        else:
            resolved, tokens, inputs_ok = self._inputs(plan, model_name, inputs, line, lines)
            ok = ok and inputs_ok

        id_ok = True
        if job_id is _MISSING or job_id is None:
            job_id = None
        elif type(job_id) is not str or not _SAFE_NAME.fullmatch(job_id):
            ok = id_ok = False
            hint = ' (in YAML, quote it: id: "42")' if isinstance(job_id, int | float) else ""
            self._problem(
                _at(lines, "id", line),
                "id",
                f"invalid id {_show(job_id)}{hint}; use {_ID_RULE}, or leave id out "
                "to get one derived from the model and inputs",
            )

        if priority is _MISSING or priority is None:
            priority = 0
        elif type(priority) is not int or not -_INT64 <= priority <= _INT64:
            ok = False
            self._problem(
                _at(lines, "priority", line),
                "priority",
                f"priority must be a whole number (higher runs first, default 0); "
                f"got {_show(priority)}",
            )

        if not ok:
            if job_id is not None and id_ok:
                self._reject(job_id, line)
            return None
        if job_id is None:
            # Images that became data URIs are hashed by digest: see the module docstring.
            basis = resolved if tokens is None else {**resolved, **tokens}
            job_id = _short_fingerprint(model_name, basis)
        return JobSpec(job_id, model_name, resolved, priority, Location(self.file, line))

    def _inputs(
        self,
        plan: _Plan,
        model_name: str,
        inputs: Mapping[Any, Any],
        line: int,
        lines: Mapping[str, int] | None,
    ) -> tuple[dict[str, Any], dict[str, str] | None, bool]:
        """Check and resolve a job's inputs: (inputs to send, id tokens, ok)."""
        ok = True
        out: dict[str, Any] = {}
        tokens: dict[str, str] | None = None
        images = plan.images
        checkers = plan.checkers
        check_values = self._check_values
        for key, value in inputs.items():
            if value is None:
                continue  # null means "not set": a job can cancel a default this way
            if check_values:
                wrong = _unstorable_input(key, value)
                if wrong is not None:
                    ok = False
                    field, message = wrong
                    self._problem(_at(lines, field, line), field, message)
                    continue
            if key in images:
                uri, token, error = self._images.resolve(value)
                if error is not None:
                    ok = False
                    self._problem(_at(lines, f"inputs.{key}", line), f"inputs.{key}", error)
                    continue
                out[key] = uri
                if token is not uri:
                    if tokens is None:
                        tokens = {}
                    tokens[key] = token
                continue
            checker = checkers.get(key, _MISSING)
            if checker is _MISSING:
                if plan.spec is None:
                    out[key] = value  # unknown model: the API decides
                    continue
                ok = False
                self._problem(
                    _at(lines, f"inputs.{key}", line),
                    f"inputs.{key}",
                    f"unknown input {key!r} for model {model_name!r}"
                    f"{_did_you_mean(str(key), plan.accepted)}; it accepts: "
                    f"{', '.join(plan.accepted)}",
                )
                continue
            error = checker(value)
            if error is not None:
                ok = False
                self._problem(_at(lines, f"inputs.{key}", line), f"inputs.{key}", error)
                continue
            out[key] = value
        if plan.spec is not None:
            for name in plan.spec.required:
                # Present but invalid was reported above; null counts as missing.
                if name not in out and inputs.get(name) is None:
                    ok = False
                    self._problem(
                        _at(lines, "inputs", line),
                        f"inputs.{name}",
                        f"missing required input {name!r} for model {model_name!r}; "
                        f"it needs: {', '.join(plan.spec.required)}",
                    )
        return out, tokens, ok

    def _unknown_keys(
        self,
        mapping: Mapping[Any, Any],
        allowed: tuple[str, ...],
        line: int,
        prefix: str,
        lines: Mapping[Any, int] | None,
        what: str,
        hints: Mapping[str, str] | None = None,
    ) -> bool:
        """Report keys not in `allowed`; True when there were none."""
        ok = True
        for key in mapping:
            if key not in allowed:
                ok = False
                hint = (hints or {}).get(key) or _did_you_mean(str(key), allowed)
                self._problem(
                    _at(lines, key, line),
                    f"{prefix}{key}",
                    f"unknown key {key!r}{hint}; {what} has only: {', '.join(allowed)}",
                )
        return ok

    # -- YAML ---------------------------------------------------------------------

    def _load_yaml(self) -> None:
        """Parse the whole file, check its outline and remember jobs and defaults."""
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self._problem(None, None, _unreadable(exc))
        else:
            self._parse_yaml(text)
        self._load_problems = list(self.problems)
        self._load_unlisted = self.problems.unlisted
        self._load_warnings = list(self.warnings)

    def _parse_yaml(self, text: str) -> None:
        # The C parser is ~10x faster; both give the node marks we need for lines.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            node = yaml.compose(text, Loader=loader)
        except RecursionError:  # PyYAML's own composer recurses once per level
            self._problem(_deep_line(text, loader), None, _TOO_DEEP)
            return
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            what = getattr(exc, "problem", None) or str(exc)
            context = getattr(exc, "context", None)
            self._problem(
                mark.line + 1 if mark is not None else None,
                None,
                f"YAML syntax error: {what}{f' ({context})' if context else ''}; "
                "fix the YAML here (check indentation, colons and quotes)",
            )
            return
        if node is None:
            self._problem(None, None, "the file is empty; add a 'jobs:' list")
            return
        try:
            root = _YamlReader(self._problem).convert(node, "")
        except _Refused as refused:
            self._problem(refused.line, refused.path or None, refused.message)
            return
        if not isinstance(root, _YMap):
            self._problem(
                node.start_mark.line + 1,
                None,
                f"the top level must be a mapping with a 'jobs:' list; got {_show(root)}",
            )
            return
        self._unknown_keys(root, TOP_KEYS, root.line, "", root.key_lines, "the top level")

        batch = root.get("batch")
        if batch is not None:
            if type(batch) is str and _SAFE_NAME.fullmatch(batch):
                self.batch_name = batch
            else:
                self._problem(
                    root.key_lines["batch"],
                    "batch",
                    f"invalid batch name {_show(batch)}; use {_ID_RULE.split(' (')[0]}",
                )

        defaults = root.get("defaults")
        if isinstance(defaults, _YMap):
            self._check_defaults(defaults)
        elif defaults is not None:
            self._problem(
                root.key_lines["defaults"],
                "defaults",
                f"defaults must be a mapping (model_name, priority, inputs); got {_show(defaults)}",
            )

        jobs = root.get("jobs", _MISSING)
        if jobs is _MISSING:
            self._problem(
                root.line,
                "jobs",
                "no 'jobs:' list; add 'jobs:' with one '- model_name: ...' entry per job",
            )
        elif not isinstance(jobs, _YList):
            self._problem(
                root.key_lines["jobs"],
                "jobs",
                f"jobs must be a list with one '- model_name: ...' entry per job; "
                f"got {_show(jobs)}",
            )
        else:
            self._yaml_jobs_list = jobs

    def _check_defaults(self, defaults: _YMap) -> None:
        self._unknown_keys(
            defaults,
            DEFAULT_KEYS,
            defaults.line,
            "defaults.",
            defaults.key_lines,
            "defaults",
            {"id": " (ids must differ per job: set id on each job)"},
        )
        inputs = defaults.get("inputs")
        if inputs is not None and not isinstance(inputs, _YMap):
            self._problem(
                defaults.key_lines["inputs"],
                "defaults.inputs",
                f"defaults.inputs must be a mapping of input name to value; got {_show(inputs)}",
            )
            return
        if isinstance(inputs, _YMap):
            for key in inputs:
                if key not in _ALL_INPUTS:
                    # Only unknown models would receive it: likely a typo, but not fatal.
                    self._warning(
                        inputs.key_lines[key],
                        f"defaults.inputs.{key}",
                        f"no known model takes input {key!r}{_did_you_mean(key, _ALL_INPUTS)};"
                        " it only reaches jobs of unknown models",
                    )
        self._yaml_defaults = defaults

    def _yaml_jobs(self) -> Iterator[JobSpec]:
        jobs = self._yaml_jobs_list
        if jobs is None:
            return
        defaults = self._yaml_defaults
        for item, item_line in zip(jobs, jobs.item_lines, strict=True):
            if not isinstance(item, _YMap):
                self._jobs_seen += 1
                self._problem(
                    item_line,
                    None,
                    f"each job must be a mapping with model_name and inputs; got {_show(item)}",
                )
                continue
            spec = self._yaml_job(item, defaults)
            if spec is not None:
                yield spec

    def _yaml_job(self, item: _YMap, defaults: _YMap | None) -> JobSpec | None:
        """Merge `defaults` into one job and validate it, keeping each field's line."""
        lines: dict[str, int] = dict(item.key_lines)
        keys_ok = self._unknown_keys(item, JOB_KEYS, item.line, "", item.key_lines, "a job")
        model_name = item.get("model_name", _MISSING)
        priority = item.get("priority", _MISSING)
        inputs = item.get("inputs", _MISSING)
        d_inputs: _YMap | None = None
        if defaults is not None:
            if model_name is _MISSING and "model_name" in defaults:
                model_name = defaults["model_name"]
                lines["model_name"] = defaults.key_lines["model_name"]
            if priority is _MISSING and "priority" in defaults:
                priority = defaults["priority"]
                lines["priority"] = defaults.key_lines["priority"]
            candidate = defaults.get("inputs")
            d_inputs = candidate if isinstance(candidate, _YMap) else None
        if d_inputs and (inputs is _MISSING or isinstance(inputs, Mapping)):
            plan = self._plans.get(model_name) if type(model_name) is str else None
            merged: dict[str, Any] = {}
            for key, value in d_inputs.items():
                if plan is None or key in plan.checkers or key in plan.images:
                    merged[key] = value
                    lines[f"inputs.{key}"] = d_inputs.key_lines[key]
            if inputs is not _MISSING:
                merged.update(inputs)
            inputs = merged
        if isinstance(item.get("inputs"), _YMap):
            for key, key_line in item["inputs"].key_lines.items():
                lines[f"inputs.{key}"] = key_line
        job_id = item.get("id", _MISSING)
        return self._job(item.line, model_name, inputs, job_id, priority, lines, keys_ok)

    # -- CSV ----------------------------------------------------------------------

    def _csv_jobs(self) -> Iterator[JobSpec]:
        try:
            # utf-8-sig: spreadsheets often start the file with a byte-order mark.
            handle = open(self.path, newline="", encoding="utf-8-sig")  # noqa: SIM115
        except OSError as exc:
            self._problem(None, None, _unreadable(exc))
            return
        _allow_large_csv_cells()
        with handle:
            # strict: an unclosed quote is an error, not a cell that swallows the file.
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader, None)
            except (csv.Error, UnicodeDecodeError) as exc:
                self._problem(1, None, _csv_broken(exc))
                return
            if header is None:
                self._problem(
                    None,
                    None,
                    "the file is empty; the first row must be a header such as "
                    "id,model_name,inputs.image",
                )
                return
            columns = self._csv_header(header)
            if columns is None:
                return
            yield from self._csv_rows(reader, columns)

    def _csv_header(self, header: list[str]) -> _CsvColumns | None:
        """Map header cells to fields; None (after reporting) when rows cannot be read."""
        cols = _CsvColumns(len(header))
        seen: dict[str, int] = {}
        for index, raw in enumerate(header):
            name = raw.strip()
            if name in seen:
                self._problem(
                    1,
                    name,
                    f"column {name!r} appears twice (columns {seen[name] + 1} and {index + 1}); "
                    "keep one",
                )
                continue
            seen[name] = index
            if name == "id":
                cols.id = index
            elif name == "model_name":
                cols.model_name = index
            elif name == "priority":
                cols.priority = index
            elif name.startswith("inputs.") and len(name) > len("inputs."):
                key = name[len("inputs.") :]
                convert = _to_int if key in INT_INPUTS else _to_bool if key in BOOL_INPUTS else None
                cols.inputs.append((index, key, convert))
            else:
                hint = (
                    f" (did you mean 'inputs.{name}'?)"
                    if name in _ALL_INPUTS
                    else _did_you_mean(
                        name, [*JOB_KEYS[:2], "priority", *(f"inputs.{n}" for n in _ALL_INPUTS)]
                    )
                )
                shown = repr(name) if name else f"number {index + 1} (no name)"
                self._problem(
                    1,
                    name or None,
                    f"unknown column {shown}{hint}; columns are id, model_name, priority "
                    "and one inputs.<name> per input: rename or delete it",
                )
        if cols.model_name is None:
            self._problem(
                1,
                "model_name",
                "no model_name column; add a column named model_name (e.g. tryon-max per row)",
            )
            return None
        return cols

    def _csv_rows(self, reader: Any, cols: _CsvColumns) -> Iterator[JobSpec]:
        """The hot loop of a million-row import: keep per-row work flat and small."""
        width = cols.width
        id_col, priority_col = cols.id, cols.priority
        model_col = cols.model_name
        assert model_col is not None  # _csv_header returns None without it
        input_cols = cols.inputs
        problem = self._problem
        job = self._job
        previous = reader.line_num
        while True:
            try:
                row: list[str] = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                problem(previous + 1, None, _csv_broken(exc))
                return
            # A quoted cell may span lines: the row starts right after the last one.
            line = previous + 1
            previous = reader.line_num
            size = len(row)
            if size <= model_col:
                if not any(row):
                    continue  # blank line
                model_name = _MISSING
            else:
                model_name = row[model_col].strip() or _MISSING
                if model_name is _MISSING and not any(row):
                    continue  # a row of empty cells, as spreadsheets export
            ok = True
            if size > width and any(row[width:]):
                ok = False
                problem(
                    line,
                    None,
                    f"this row has {size} cells but the header names {width} columns; "
                    "quote cells that contain commas or add a header for the extra cells",
                )
            job_id: Any = _MISSING
            if id_col is not None and id_col < size:
                job_id = row[id_col].strip() or _MISSING
            priority: Any = _MISSING
            if priority_col is not None and priority_col < size:
                cell = row[priority_col].strip()
                if cell:
                    try:
                        priority = int(cell)
                    except ValueError:
                        ok = False
                        problem(
                            line,
                            "priority",
                            f"priority {cell!r} is not a whole number; write e.g. 0, 5 or -1 "
                            "(higher runs first)",
                        )
            inputs: dict[str, Any] = {}
            for index, key, convert in input_cols:
                if index >= size:
                    break
                value: Any = row[index].strip()
                if not value:
                    continue  # empty cell: input not set
                if convert is not None:
                    try:
                        value = convert(value)
                    except ValueError as exc:
                        ok = False
                        problem(line, f"inputs.{key}", f"{value!r} {exc}")
                        continue
                inputs[key] = value
            spec = job(line, model_name, inputs, job_id, priority, None, ok)
            if spec is not None:
                yield spec

    # -- JSON Lines ---------------------------------------------------------------

    def _jsonl_jobs(self) -> Iterator[JobSpec]:
        try:
            # Bytes, decoded line by line: a bad byte is then reported at its own line.
            handle = open(self.path, "rb")  # noqa: SIM115
        except OSError as exc:
            self._problem(None, None, _unreadable(exc))
            return
        with handle:
            for number, raw in enumerate(handle, 1):
                try:
                    text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError:
                    self._jobs_seen += 1
                    self._problem(number, None, "this line is not valid UTF-8; save as UTF-8")
                    continue
                spec = self._jsonl_line(number, text)
                if spec is not None:
                    yield spec

    def _jsonl_line(self, number: int, text: str) -> JobSpec | None:
        if not text or text.isspace():
            return None
        try:
            obj = json.loads(text)
        except RecursionError:
            self._jobs_seen += 1
            self._problem(
                number,
                None,
                "this line is nested too deeply (lists or objects inside each other, past "
                "what can be read); a job needs only a few levels: flatten it",
            )
            return None
        except ValueError as exc:
            where = ""
            if isinstance(exc, json.JSONDecodeError):
                where = f" ({exc.msg} at column {exc.pos + 1})"
            self._jobs_seen += 1
            self._problem(
                number,
                None,
                f"not valid JSON{where}; write one job per line as a JSON object, e.g. "
                '{"model_name": "background-remove", "inputs": {"image": "a.jpg"}}',
            )
            return None
        if not isinstance(obj, dict):
            self._jobs_seen += 1
            self._problem(
                number,
                None,
                f"each line must be a JSON object with model_name and inputs; got {_show(obj)}",
            )
            return None
        keys_ok = self._unknown_keys(obj, JOB_KEYS, number, "", None, "a job")
        return self._job(
            number,
            obj.get("model_name", _MISSING),
            obj.get("inputs", _MISSING),
            obj.get("id", _MISSING),
            obj.get("priority", _MISSING),
            None,
            keys_ok,
        )


# -- per-model validation plans ----------------------------------------------------


class _Plan:
    """What one model accepts, precomputed so that each row costs dict lookups only."""

    __slots__ = ("accepted", "checkers", "images", "spec")

    def __init__(
        self,
        spec: ModelSpec | None,
        images: frozenset[str],
        checkers: dict[str, Checker],
    ):
        self.spec = spec
        self.images = images
        self.checkers = checkers
        self.accepted: tuple[str, ...] = spec.inputs if spec else ()

    @classmethod
    def known(cls, spec: ModelSpec) -> _Plan:
        checkers: dict[str, Checker] = {}
        for name in spec.inputs:
            if name in spec.image_inputs:
                continue
            if name in spec.choices:
                checkers[name] = _choice_checker(spec.choices[name])
            elif name in _COUNT_INPUTS:
                checkers[name] = _check_count
            elif name in INT_INPUTS:
                checkers[name] = _check_int
            elif name in BOOL_INPUTS:
                checkers[name] = _check_bool
            else:
                checkers[name] = _check_text
        return cls(spec, frozenset(spec.image_inputs), checkers)

    @classmethod
    def generic(cls) -> _Plan:
        # Unknown model: only resolve what looks like an image, pass the rest through.
        return cls(None, frozenset(GENERIC_IMAGE_INPUTS), {})


def _check_count(value: Any) -> str | None:
    if type(value) is int and 1 <= value <= MAX_OUTPUTS:
        return None
    return f"must be a whole number from 1 to {MAX_OUTPUTS}; got {_show(value)}"


def _check_int(value: Any) -> str | None:
    if type(value) is int:
        return None
    return f"must be a whole number, e.g. 42; got {_show(value)}"


def _check_bool(value: Any) -> str | None:
    if type(value) is bool:
        return None
    return f"must be true or false; got {_show(value)}"


def _check_text(value: Any) -> str | None:
    if type(value) is str:
        return None
    return f"must be text; got {_show(value)} (in YAML, put it in quotes)"


def _choice_checker(allowed: tuple[object, ...]) -> Checker:
    # (type, value) pairs: 5.0 == 5 and True == 1 in Python, but not for the API.
    accepted = frozenset((type(a), a) for a in allowed)
    listed = ", ".join(str(a) for a in allowed)

    def check(value: Any) -> str | None:
        try:
            if (type(value), value) in accepted:
                return None
        except TypeError:  # unhashable: a list or mapping is never a choice
            pass
        return f"must be one of: {listed}; got {_show(value)}"

    return check


def _image_limit_from_environment() -> tuple[int, str | None]:
    """The image size cap in bytes, and what is wrong with the setting if anything."""
    default = MAX_IMAGE_MB * _MIB
    text = os.environ.get(IMAGE_LIMIT_ENV, "").strip()
    if not text:
        return default, None
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not 0 < megabytes < math.inf:  # also refuses nan
        return default, (
            f"{IMAGE_LIMIT_ENV} must be a size in MB such as {MAX_IMAGE_MB} (the largest "
            f"local image file to send); got {text!r}: fix it or unset it"
        )
    return max(1, int(megabytes * _MIB)), None


# -- CSV helpers --------------------------------------------------------------------


class _CsvColumns:
    __slots__ = ("id", "inputs", "model_name", "priority", "width")

    def __init__(self, width: int):
        self.width = width
        self.id: int | None = None
        self.model_name: int | None = None
        self.priority: int | None = None
        # (cell index, input name, text → value converter or None)
        self.inputs: list[tuple[int, str, Callable[[str], Any] | None]] = []


def _to_int(cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise ValueError("is not a whole number; write digits, e.g. 2") from None


def _to_bool(cell: str) -> bool:
    value = _BOOL_WORDS.get(cell.lower())
    if value is None:
        raise ValueError("is not true or false; write true/false, yes/no or 1/0")
    return value


def _allow_large_csv_cells() -> None:
    # An inline data URI easily exceeds csv's default 128 KiB cell limit. The limit
    # is process-wide; raising it only ever accepts more.
    if csv.field_size_limit() < 64 * 1024 * 1024:
        csv.field_size_limit(64 * 1024 * 1024)


def _csv_broken(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        # Decoding runs ahead in chunks: the bad byte is at or after this row.
        return "the file is not valid UTF-8 from here on; save it as CSV UTF-8"
    return f"cannot read this CSV row ({exc}); check quotes: a quoted cell must be closed"


# -- images -------------------------------------------------------------------------

# Magic bytes → MIME type. FASHN takes PNG, JPEG, WEBP and GIF.
_IMAGE_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
# Formats recognised only to say precisely what to convert.
_OTHER_MAGIC: Final = (
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
)

_Resolved = tuple[str, str, "str | None"]  # (value to send, id token, error)


def _bad(message: str) -> _Resolved:
    return "", "", message


def _sniff(data: bytes) -> str | None:
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class _LRU:
    """Least-recently-used results, bounded by entries and by total characters."""

    __slots__ = ("_chars", "_items", "max_chars", "max_items")

    def __init__(self, max_items: int, max_chars: int):
        self.max_items = max_items
        self.max_chars = max_chars
        self._items: OrderedDict[str, _Resolved] = OrderedDict()
        self._chars = 0

    def get(self, key: str) -> _Resolved | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, value: _Resolved) -> None:
        size = len(value[0]) + len(key)
        if size > self.max_chars:
            return  # larger than the whole budget: read again when needed
        old = self._items.pop(key, None)
        if old is not None:
            self._chars -= len(old[0]) + len(key)
        self._items[key] = value
        self._chars += size
        while len(self._items) > self.max_items or self._chars > self.max_chars:
            gone_key, gone = self._items.popitem(last=False)
            self._chars -= len(gone[0]) + len(gone_key)


class _Images:
    """Turns an image input into what the API takes: URL as is, local file → data URI."""

    def __init__(self, base: str, max_bytes: int):
        self.base = base
        self.max_bytes = max_bytes
        self._by_text = _LRU(IMAGE_CACHE_FILES, IMAGE_CACHE_CHARS)  # as written
        self._by_path = _LRU(IMAGE_CACHE_FILES, IMAGE_CACHE_CHARS)  # "a.png" = "./a.png"

    def resolve(self, value: Any) -> _Resolved:
        if type(value) is not str:
            return _bad(
                "must be an image: an https:// URL, a data:image/...;base64, URI or a file "
                f"path; got {_show(value)}"
            )
        head = value if value.startswith(("https://", "http://")) else value[:8].lower()
        if head.startswith(("https://", "http://")):
            start = 8 if head[4] == "s" else 7
            if len(value) == start or value[start] in "/?#":
                return _bad(
                    f"URL {value!r} has no host; give a full URL such as "
                    "https://shop.example/images/shirt.jpg"
                )
            # The API would reject or misread these; both tests run at C speed.
            if " " in value or not value.isprintable():
                return _bad(_url_not_encoded(value))
            return value, value, None
        cached = self._by_text.get(value)
        if cached is None:
            cached = _data_uri(value) if head.startswith("data:") else self._other(value)
            self._by_text.put(value, cached)
        return cached

    def _other(self, value: str) -> _Resolved:
        if not value.strip():
            return _bad(
                "is empty; give an https:// URL, a data:image/...;base64, URI or a file path"
            )
        scheme_end = value.find(":")
        scheme = value[:scheme_end]
        # "ftp://host/x", "file:///x", "s3://b/k" (a drive letter "C:" is one char long)
        if (
            scheme_end > 1
            and scheme.isascii()
            and scheme.replace("+", "").isalnum()
            and (value.startswith("://", scheme_end) or scheme.lower() == "file")
        ):
            return _bad(
                f"unsupported URL scheme '{scheme}:'; FASHN fetches only http(s) URLs. Use an "
                "https:// URL, or a local file path (sent as a data URI)"
            )
        path = os.path.normpath(os.path.join(self.base, os.path.expanduser(value)))
        cached = self._by_path.get(path)
        if cached is None:
            cached = self._read(value, path)
            self._by_path.put(path, cached)
        return cached

    def _read(self, value: str, path: str) -> _Resolved:
        try:
            # O_NONBLOCK: opening a FIFO that has no writer would otherwise wait for ever.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return _bad(
                f"{value!r} is not an http(s) URL, a data:image URI or an existing file "
                f"(looked for {path}; paths are relative to the manifest's folder)"
            )
        except IsADirectoryError:
            return _bad(f"{path} is a folder; give an image file")
        except OSError as exc:
            kind = _special_file(path)  # a socket cannot be opened at all
            if kind is not None:
                return _bad(f"{path} is {kind}, not an image file; {_IMAGE_KINDS}")
            reason = exc.strerror or exc
            return _bad(f"cannot read image file {path}: {reason}; check its permissions")
        except ValueError:  # a NUL character, or text the file system cannot encode
            return _bad(f"{value!r} cannot be a file name; give an image file's path or a URL")
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                return _bad(f"{path} is a folder; give an image file")
            if not stat.S_ISREG(info.st_mode):
                kind = _KIND_OF_MODE.get(stat.S_IFMT(info.st_mode), "not a regular file")
                return _bad(f"{path} is {kind}, not an image file; {_IMAGE_KINDS}")
            if info.st_size > self.max_bytes:
                return _bad(_too_large(path, info.st_size, self.max_bytes))
            data = _read_at_most(fd, self.max_bytes + 1)
        except OSError as exc:
            return _bad(f"cannot read image file {path}: {exc.strerror or exc}")
        finally:
            os.close(fd)
        if len(data) > self.max_bytes:  # it grew, or its size was not told (/proc)
            return _bad(_too_large(path, len(data), self.max_bytes))
        mime = _sniff(data)
        if mime is None:
            if not data:
                return _bad(f"image file {path} is empty; {_IMAGE_KINDS}")
            kind = next((k for magic, k in _OTHER_MAGIC if data.startswith(magic)), None)
            found = kind or f"not an image (it starts with {data[:8]!r})"
            return _bad(f"file {path} is {found}; FASHN takes PNG, JPEG, WEBP or GIF: convert it")
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        return uri, _token(uri), None


_IMAGE_KINDS: Final = "give a PNG, JPEG, WEBP or GIF file"
_KIND_OF_MODE: Final = {
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


def _special_file(path: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return _KIND_OF_MODE.get(stat.S_IFMT(mode))


def _read_at_most(fd: int, limit: int) -> bytes:
    # In bounded chunks: one read(limit) would allocate the whole limit up front.
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 4 * _MIB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_large(path: str, size: int, limit: int) -> str:
    return (
        f"image file {path} is {_size(size, up=True)}; the limit is {_size(limit)} "
        f"({IMAGE_LIMIT_ENV}): resize or compress it, or send it as an https:// URL"
    )


def _size(count: int, *, up: bool = False) -> str:
    if count < _MIB // 10:
        return f"{count:,} bytes"
    # Rounded up for a file, so one just over the limit never reads as equal to it.
    tenths = math.ceil(count * 10 / _MIB) if up else round(count * 10 / _MIB)
    return f"{tenths / 10:g} MB"


def _url_not_encoded(url: str) -> str:
    char = next(c for c in url if c == " " or not c.isprintable())
    what = {" ": "a space", "\n": "a line break", "\r": "a line break", "\t": "a tab"}
    return (
        f"URL {_show(url)} contains {what.get(char, f'the character {char!r}')}; "
        "percent-encode it (a space is %20, a line break %0A) or remove it"
    )


def _data_uri(value: str) -> _Resolved:
    comma = value.find(",")
    header = value[5:comma] if comma > 0 else ""
    if not header.startswith("image/") or not header.endswith(";base64"):
        return _bad(
            "data URI must look like data:image/png;base64,<data>; got "
            f"{value[:40]!r}…; or give an https:// URL or a file path instead"
        )
    try:
        data = binascii.a2b_base64(value[comma + 1 :], strict_mode=True)
    except binascii.Error as exc:
        return _bad(f"data URI is not valid base64 ({exc}); re-encode the image")
    if not data:
        return _bad("data URI holds no data; re-encode the image")
    return value, _token(value), None


def _token(uri: str) -> str:
    return "sha256:" + hashlib.sha256(uri.encode()).hexdigest()


# -- YAML with line numbers ---------------------------------------------------------

_INT_TAG: Final = "tag:yaml.org,2002:int"
_FLOAT_TAG: Final = "tag:yaml.org,2002:float"
_MAP_TAG: Final = "tag:yaml.org,2002:map"
_SEQ_TAG: Final = "tag:yaml.org,2002:seq"
_MERGE_TAG: Final = "tag:yaml.org,2002:merge"
_VALUE_TAG: Final = "tag:yaml.org,2002:value"
_STR_TAG: Final = "tag:yaml.org,2002:str"
_TIMESTAMP_TAG: Final = "tag:yaml.org,2002:timestamp"


class _YMap(dict[str, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    __slots__ = ("key_lines", "line")

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.key_lines: dict[str, int] = {}


class _YList(list[Any]):
    """A YAML sequence that remembers the line of each item."""

    __slots__ = ("item_lines", "line")

    def __init__(self, line: int):
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


_Pair = tuple[yaml.Node, yaml.Node]
_PLAIN_SCALARS: Final = (str, int, float, bool, type(None))
# Past this depth a manifest is refused: the root, `jobs`, a job and its `inputs` sit
# above an input's own MAX_NESTING levels. It also keeps the recursion below shallow.
_MAX_YAML_DEPTH: Final = MAX_NESTING + 8


class _Refused(Exception):
    """The YAML document cannot be read safely; one problem says where and why."""

    def __init__(self, line: int | None, path: str, message: str):
        super().__init__(message)
        self.line = line
        self.path = path
        self.message = message


class _YamlReader:
    """Builds plain values from a composed node tree, keeping each node's line.

    Aliases make the tree a graph: `*a` is the node `&a` itself. Each list and mapping
    is built once and shared by its aliases, but the values they stand for are counted
    (`_expanded`, as if written out) against a budget relative to the values the file
    really writes (`_written`): a few hundred bytes of nested aliases would otherwise
    expand to gigabytes, here or when the jobs are stored.
    """

    def __init__(self, report: Callable[[int | None, str | None, str], None]):
        self._constructor = yaml.constructor.SafeConstructor()
        self._report = report
        self._open: set[int] = set()  # nodes being built: catches recursive aliases
        self._built: dict[int, tuple[Any, int]] = {}  # id(node) → (value, values in it)
        self._merged: dict[int, list[_Pair]] = {}  # id(mapping) → pairs after `<<`
        self._merging: set[int] = set()  # mappings whose merges are being applied
        self._written = 0  # values the file writes (an alias counts as one)
        self._expanded = 0  # values built or stood for by aliases
        self._limit = YAML_EXPANSION_FLOOR  # for _expanded, as _written grows
        self._depth = 0

    def convert(self, node: yaml.Node, path: str, at: int | None = None) -> Any:
        """The value of `node`; `at` is the line that refers to it (where an alias is)."""
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            self._charge(1, line, path)
            if node.tag == _STR_TAG:  # most values: what SafeConstructor returns, directly
                return node.value
            return self._scalar(node, path, line)
        built = self._built.get(id(node))
        if built is not None:  # an alias of a list or mapping built before
            self._charge(built[1], at or line, path)
            return built[0]
        if id(node) in self._open:
            self._report(line, path or None, "a YAML alias refers to itself; remove the loop")
            return None
        if self._depth >= _MAX_YAML_DEPTH:
            raise _Refused(line, path, _TOO_DEEP)
        self._written += 1 + len(node.value) * (2 if isinstance(node, yaml.MappingNode) else 1)
        self._limit = self._written * YAML_EXPANSION_FACTOR + YAML_EXPANSION_FLOOR
        before = self._expanded
        self._charge(1, line, path)
        self._open.add(id(node))
        self._depth += 1
        try:
            value = self._container(node, path, line)
        finally:
            self._open.discard(id(node))
            self._depth -= 1
        self._built[id(node)] = (value, self._expanded - before)
        return value

    def _container(self, node: yaml.Node, path: str, line: int) -> Any:
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, path, line)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
            items = _YList(line)
            # Each list item is a job (or a plain value): fields restart there.
            for child in node.value:
                try:
                    items.append(self.convert(child, "", line))
                except _Refused as refused:
                    refused.path = refused.path or path  # name the list, not ""
                    raise
                items.item_lines.append(child.start_mark.line + 1)
            return items
        # !!set, !!omap, !!pairs or an application's tag: not JSON, never a job's.
        self._report(line, path or None, f"cannot read this value (tag {node.tag}); {_PLAIN}")
        return None

    def _charge(self, values: int, line: int, path: str) -> None:
        self._expanded += values
        if self._expanded > self._limit:
            raise _Refused(
                line,
                path,
                "YAML aliases expand too far here (to more than "
                f"{YAML_EXPANSION_FACTOR} times the values the file writes); write the "
                "values out, or put what jobs share under `defaults:`",
            )

    def _scalar(self, node: yaml.ScalarNode, path: str, line: int) -> Any:
        # YAML 1.1 reads a plain 3:4 as the base-60 number 184: an aspect ratio
        # was meant, never sexagesimal, so keep the text.
        if node.tag in (_INT_TAG, _FLOAT_TAG) and ":" in node.value:
            return node.value
        if node.tag == _VALUE_TAG:  # a plain `=`, which PyYAML reads as text in a key
            return node.value
        value = self._construct(node, path, line)
        if isinstance(value, _PLAIN_SCALARS):
            return value
        if node.tag == _TIMESTAMP_TAG:
            return node.value  # 2025-03-01 names something here; JSON has no dates
        self._report(line, path or None, f"cannot read this value (tag {node.tag}); {_PLAIN}")
        return None

    def _mapping(self, node: yaml.MappingNode, path: str, line: int) -> _YMap:
        own: dict[str, int] = {}
        merges = False
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                merges = True
            elif isinstance(key_node, yaml.ScalarNode):
                key_line = key_node.start_mark.line + 1
                if key_node.value in own:
                    self._report(
                        key_line,
                        _join(path, key_node.value),
                        f"duplicate key {key_node.value!r} (first on line "
                        f"{own[key_node.value]}); keep one: YAML silently keeps the last",
                    )
                own[key_node.value] = key_line
        pairs = self._flatten(node, path, line) if merges else node.value
        out = _YMap(line)
        for key_node, value_node in pairs:
            key = self.convert(key_node, path)
            key = key if type(key) is str else str(key)
            key_line = key_node.start_mark.line + 1
            out.key_lines[key] = key_line
            out[key] = self.convert(value_node, _join(path, key), key_line)
        return out

    def _flatten(self, node: yaml.MappingNode, path: str, line: int) -> list[_Pair]:
        """The pairs of a mapping with its `<<` merges applied as PyYAML applies them
        (its own keys win, then the earlier source), but each key once: PyYAML copies
        every merged pair, so chained merges of merges grow exponentially."""
        done = self._merged.get(id(node))
        if done is not None:
            return done
        if id(node) in self._merging or self._depth >= _MAX_YAML_DEPTH:
            raise _Refused(
                line,
                path,
                "YAML merges (<<) here refer back to themselves or nest too deep; "
                "write the keys out, or put what jobs share under `defaults:`",
            )
        self._merging.add(id(node))
        self._depth += 1
        try:
            merged: list[_Pair] = []
            own: list[_Pair] = []
            for key_node, value_node in node.value:
                if key_node.tag != _MERGE_TAG:
                    own.append((key_node, value_node))
                    continue
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for source in reversed(sources):
                    if not isinstance(source, yaml.MappingNode):
                        self._report(
                            key_node.start_mark.line + 1,
                            path or None,
                            "cannot merge here: '<<' takes a mapping or a list of mappings "
                            "(e.g. <<: *defaults)",
                        )
                        continue
                    pairs = self._flatten(source, path, line) if source.value else []
                    self._charge(len(pairs), line, path)
                    merged.extend(pairs)
            pairs = _last_of_each_key(merged + own)
        finally:
            self._merging.discard(id(node))
            self._depth -= 1
        self._merged[id(node)] = pairs
        return pairs

    def _construct(self, node: yaml.Node, path: str, line: int) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._report(
                line,
                path or None,
                f"cannot read this value ({getattr(exc, 'problem', None) or exc}); {_PLAIN}",
            )
            return None


_PLAIN: Final = "write plain text, numbers, lists or mappings"
_TOO_DEEP: Final = (
    f"lists or mappings are nested more than {_MAX_YAML_DEPTH} levels deep here; "
    "a manifest needs only a few: flatten this value"
)


def _last_of_each_key(pairs: list[_Pair]) -> list[_Pair]:
    """Keep the last pair of each key (the one a mapping would keep), in order."""
    seen: set[Any] = set()
    kept: list[_Pair] = []
    for pair in reversed(pairs):
        key_node = pair[0]
        key = (
            (key_node.tag, key_node.value)
            if isinstance(key_node, yaml.ScalarNode)
            else id(key_node)
        )
        if key not in seen:
            seen.add(key)
            kept.append(pair)
    kept.reverse()
    return kept


def _deep_line(text: str, loader: Any) -> int | None:
    """The line where nesting passes _MAX_YAML_DEPTH: the parser's events, unlike its
    recursive composer, run in constant stack."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > _MAX_YAML_DEPTH:
                    mark = event.start_mark
                    return None if mark is None else mark.line + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        pass
    return None


# -- small helpers ------------------------------------------------------------------


# models.canonical_json builds a new encoder per call; a million rows notice. Same
# settings, so the same text (tests compare against models.fingerprint).
_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _short_fingerprint(model_name: str, inputs: Mapping[str, Any]) -> str:
    """`models.fingerprint(model_name, inputs)[:ID_HEX_DIGITS]`, faster."""
    text = _canonical([model_name, inputs])
    return hashlib.sha256(text.encode()).hexdigest()[:ID_HEX_DIGITS]


_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NOT_UNICODE: Final = (
    "is not valid Unicode text: it holds half of a surrogate pair (an escape such as "
    "\\ud800), which cannot be stored or sent; write the character itself"
)


def _is_unicode(text: str) -> bool:
    """False when `text` holds a lone surrogate (only a JSON or YAML escape makes one)."""
    return text.isascii() or _SURROGATE.search(text) is None


def _unstorable_input(key: Any, value: Any) -> tuple[str, str] | None:
    """(field, message) when an input's name or value cannot be stored or sent as JSON."""
    if type(key) is str and not _is_unicode(key):
        return "inputs", f"input name {_show(key)} {_NOT_UNICODE}"
    if type(value) is str:  # the common case first
        return None if _is_unicode(value) else (f"inputs.{key}", f"{_show(value)} {_NOT_UNICODE}")
    if type(value) is float and not math.isfinite(value):
        return f"inputs.{key}", f"{value} is not a number JSON can carry; write a number"
    if isinstance(value, dict | list):
        error = _nested_error(value, MAX_NESTING)
        if error is not None:
            return f"inputs.{key}", error
    return None


def _nested_error(value: Any, depth: int) -> str | None:
    """What makes a list or mapping unstorable: text or a number inside it, or depth."""
    if type(value) is str:
        return None if _is_unicode(value) else f"holds {_show(value)}, which {_NOT_UNICODE}"
    if type(value) is float and not math.isfinite(value):
        return f"holds {value}, which is not a number JSON can carry; write a number"
    if not isinstance(value, dict | list):
        return None
    if depth == 0:
        return f"nests lists or mappings more than {MAX_NESTING} levels deep; flatten it"
    if isinstance(value, dict):
        for key in value:
            if type(key) is str and not _is_unicode(key):
                return f"holds the key {_show(key)}, which {_NOT_UNICODE}"
        value = value.values()
    for item in value:
        error = _nested_error(item, depth - 1)
        if error is not None:
            return error
    return None


def _at(lines: Mapping[Any, int] | None, field: Any, default: int) -> int:
    return lines.get(field, default) if lines else default


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A short, typed description of a bad value for a message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "…'"
    kind = {dict: "a mapping", list: "a list", int: "a number", float: "a number"}
    for cls, name in kind.items():
        if isinstance(value, cls):
            text = repr(value) if not isinstance(value, dict | list) else ""
            return f"{name} {text}".strip() if text else name
    return f"{type(value).__name__} {value!r}"[:60]


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "cannot read the manifest: it is not valid UTF-8; save it as UTF-8"
    if isinstance(exc, FileNotFoundError):
        return "cannot read the manifest: no such file; check the path"
    if isinstance(exc, IsADirectoryError):
        return "cannot read the manifest: it is a folder; give a .yaml, .csv or .jsonl file"
    if isinstance(exc, OSError):
        return f"cannot read the manifest: {exc.strerror or exc}; check the path and permissions"
    return f"cannot read the manifest: {exc}"

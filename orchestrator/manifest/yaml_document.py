"""A YAML manifest: its outline (batch name, defaults, the jobs list), checked when it
is opened, and its jobs with the defaults merged in, each field keeping its line.

`defaults` give model_name, priority and inputs; a job's own values win.
`defaults.inputs` go only into jobs whose model accepts them (all inputs go to
unknown models), so one defaults block can serve several models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from orchestrator.models import JobSpec

from .describe import did_you_mean, show
from .findings import Entry, Findings
from .ids import BATCH_RULE, SAFE_NAME
from .plans import ALL_INPUTS, PLANS
from .validation import JOB_KEYS, MISSING, JobValidator, unknown_keys
from .yaml_reader import YList, YMap, read_yaml

TOP_KEYS: Final = ("batch", "defaults", "jobs")
DEFAULT_KEYS: Final = ("model_name", "inputs", "priority", "meta", "account")


class YamlOutline:
    """What opening a YAML manifest found: its batch name, defaults and jobs, each
    None when absent or reported as wrong."""

    __slots__ = ("batch", "defaults", "jobs")

    def __init__(self) -> None:
        self.batch: str | None = None
        self.defaults: YMap | None = None
        self.jobs: YList | None = None


def open_yaml(text: str, findings: Findings) -> YamlOutline:
    """Parse a YAML manifest and check its outline, reporting to `findings`."""
    outline = YamlOutline()
    root = read_yaml(text, findings.problem)
    if root is None:
        return outline
    unknown_keys(findings, root, TOP_KEYS, root.line, "", root.key_lines, "the top level")
    batch = root.get("batch")
    if batch is not None:
        if type(batch) is str and SAFE_NAME.fullmatch(batch):
            outline.batch = batch
        else:
            findings.problem(
                root.key_lines["batch"],
                "batch",
                f"invalid batch name {show(batch)}; use {BATCH_RULE}",
            )
    defaults = root.get("defaults")
    if isinstance(defaults, YMap):
        outline.defaults = _checked_defaults(defaults, findings)
    elif defaults is not None:
        findings.problem(
            root.key_lines["defaults"],
            "defaults",
            "defaults must be a mapping (model_name, priority, inputs, meta); "
            f"got {show(defaults)}",
        )
    outline.jobs = _jobs_list(root, findings)
    return outline


def _jobs_list(root: YMap, findings: Findings) -> YList | None:
    jobs = root.get("jobs", MISSING)
    if jobs is MISSING:
        findings.problem(
            root.line,
            "jobs",
            "no 'jobs:' list; add 'jobs:' with one '- model_name: ...' entry per job",
        )
        return None
    if not isinstance(jobs, YList):
        findings.problem(
            root.key_lines["jobs"],
            "jobs",
            f"jobs must be a list with one '- model_name: ...' entry per job; got {show(jobs)}",
        )
        return None
    return jobs


def _checked_defaults(defaults: YMap, findings: Findings) -> YMap | None:
    """The defaults to merge into jobs, or None when their inputs are not a mapping."""
    unknown_keys(
        findings,
        defaults,
        DEFAULT_KEYS,
        defaults.line,
        "defaults.",
        defaults.key_lines,
        "defaults",
        {"id": " (ids must differ per job: set id on each job)"},
    )
    inputs = defaults.get("inputs")
    if inputs is not None and not isinstance(inputs, YMap):
        findings.problem(
            defaults.key_lines["inputs"],
            "defaults.inputs",
            f"defaults.inputs must be a mapping of input name to value; got {show(inputs)}",
        )
        return None
    if isinstance(inputs, YMap):
        for key in inputs:
            if key not in ALL_INPUTS:
                # Only unknown models would receive it: likely a typo, but not fatal.
                findings.warning(
                    inputs.key_lines[key],
                    f"defaults.inputs.{key}",
                    f"no known model takes input {key!r}{did_you_mean(key, ALL_INPUTS)};"
                    " it only reaches jobs of unknown models",
                )
    return defaults


def yaml_entries(outline: YamlOutline, validator: JobValidator) -> Iterator[Entry]:
    """Each job of an opened YAML manifest, validated, with what was found on the way."""
    jobs = outline.jobs
    if jobs is None:
        return
    findings = validator.findings
    for item, item_line in zip(jobs, jobs.item_lines, strict=True):
        spec = None
        if isinstance(item, YMap):
            spec = _job(item, outline.defaults, validator)
        else:
            validator.jobs_seen += 1
            findings.problem(
                item_line,
                None,
                f"each job must be a mapping with model_name and inputs; got {show(item)}",
            )
        if findings.pending:
            yield from findings.drain()
        if spec is not None:
            yield spec


def _job(item: YMap, defaults: YMap | None, validator: JobValidator) -> JobSpec | None:
    """Merge `defaults` into one job and validate it, keeping each field's line."""
    lines: dict[str, int] = dict(item.key_lines)
    keys_ok = unknown_keys(
        validator.findings, item, JOB_KEYS, item.line, "", item.key_lines, "a job"
    )
    model_name = item.get("model_name", MISSING)
    priority = item.get("priority", MISSING)
    account = item.get("account", MISSING)
    inputs = item.get("inputs", MISSING)
    d_inputs: YMap | None = None
    if defaults is not None:
        if model_name is MISSING and "model_name" in defaults:
            model_name = defaults["model_name"]
            lines["model_name"] = defaults.key_lines["model_name"]
        if priority is MISSING and "priority" in defaults:
            priority = defaults["priority"]
            lines["priority"] = defaults.key_lines["priority"]
        if account is MISSING and "account" in defaults:
            account = defaults["account"]
            lines["account"] = defaults.key_lines["account"]
        candidate = defaults.get("inputs")
        d_inputs = candidate if isinstance(candidate, YMap) else None
    if d_inputs and (inputs is MISSING or isinstance(inputs, Mapping)):
        inputs = _merged_inputs(d_inputs, inputs, model_name, lines)
    if isinstance(item.get("inputs"), YMap):
        for key, key_line in item["inputs"].key_lines.items():
            lines[f"inputs.{key}"] = key_line
    meta = _merged_meta(item, defaults, lines)
    job_id = item.get("id", MISSING)
    return validator.job(
        item.line, model_name, inputs, job_id, priority, lines, keys_ok, meta, account
    )


def _merged_meta(item: YMap, defaults: YMap | None, lines: dict[str, int]) -> Any:
    """The job's meta over `defaults.meta` (a job's own names win), each name's line kept."""
    meta = item.get("meta")
    d_meta = defaults.get("meta") if defaults is not None else None
    for source in (d_meta, meta):
        if isinstance(source, YMap):
            for key, key_line in source.key_lines.items():
                lines[f"meta.{key}"] = key_line
    if isinstance(d_meta, YMap) and (meta is None or isinstance(meta, Mapping)):
        return {**d_meta, **(meta or {})}
    return d_meta if meta is None else meta


def _merged_inputs(
    d_inputs: YMap, inputs: Any, model_name: Any, lines: dict[str, int]
) -> dict[str, Any]:
    """Default inputs the job's model takes (all, for an unknown model), then its own."""
    plan = PLANS.get(model_name) if type(model_name) is str else None
    merged: dict[str, Any] = {}
    for key, value in d_inputs.items():
        if plan is None or plan.takes(key):
            merged[key] = value
            lines[f"inputs.{key}"] = d_inputs.key_lines[key]
    if inputs is not MISSING:
        merged.update(inputs)
    return merged

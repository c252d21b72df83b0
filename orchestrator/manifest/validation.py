"""One job's fields, whatever the format: model_name, inputs, id, priority, account.

- An unknown model name is a warning: FASHN adds models, and the API has the last word.
- `null` (YAML/JSON) means "not set", so a job can cancel an input from `defaults`.
- Each input goes through its model's plan (plans.py); image inputs are resolved
  (images.py), and a job without an id gets one derived from what it asks (ids.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Final

from orchestrator.accounts import ACCOUNT_NAME, DEFAULT_ACCOUNT, bad_account
from orchestrator.catalog import MODELS
from orchestrator.models import JobSpec, Location

from .describe import did_you_mean, show
from .findings import Findings
from .ids import ID_RULE, SAFE_NAME, derived_id
from .images import ImageResolver
from .meta import checked_meta
from .plans import GENERIC, PLANS, Plan
from .values import NOT_UNICODE, is_unicode, unstorable_input

JOB_KEYS: Final = ("id", "model_name", "inputs", "priority", "meta", "account")
MISSING: Final[Any] = object()  # "the field is absent", distinct from null
_INT64: Final = 2**63 - 1  # SQLite INTEGER range, where priority ends up

Lines = Mapping[str, int]  # field ("model_name", "inputs.image") → its own line (YAML)


def line_of(lines: Mapping[Any, int] | None, field: Any, default: int) -> int:
    return lines.get(field, default) if lines else default


def unknown_keys(
    findings: Findings,
    mapping: Mapping[Any, Any],
    allowed: tuple[str, ...],
    line: int,
    prefix: str,
    lines: Mapping[Any, int] | None,
    what: str,
    hints: Mapping[str, str] | None = None,
) -> bool:
    """Report keys of `mapping` not in `allowed`; True when there were none."""
    ok = True
    for key in mapping:
        if key not in allowed:
            ok = False
            hint = (hints or {}).get(key) or did_you_mean(str(key), allowed)
            findings.problem(
                line_of(lines, key, line),
                f"{prefix}{key}",
                f"unknown key {key!r}{hint}; {what} has only: {', '.join(allowed)}",
            )
    return ok


class JobValidator:
    """Checks jobs one at a time and reports to `findings`; one per reading, as it
    holds that reading's image cache and the unknown models already warned about."""

    __slots__ = ("_unknown_models", "check_values", "file", "findings", "images", "jobs_seen")

    def __init__(self, file: str, findings: Findings, images: ImageResolver, *, check_values: bool):
        self.file = file
        self.findings = findings
        self.images = images
        # CSV is decoded from UTF-8 into flat cells: it can hold neither half a
        # surrogate pair nor nested values, so its hot loop skips those checks.
        self.check_values = check_values
        self.jobs_seen = 0  # entries that were meant as jobs, valid or not
        self._unknown_models: set[str] = set()

    def job(
        self,
        line: int,
        model_name: Any,
        inputs: Any,
        job_id: Any,
        priority: Any,
        lines: Lines | None = None,
        valid: bool = True,
        meta: Any = None,
        account: Any = MISSING,
    ) -> JobSpec | None:
        """Validate one job's fields; return its spec, or None after reporting why not.

        `lines` maps a field ("model_name", "inputs.image") to its own line (YAML);
        without it every problem is reported at the job's line. `valid` is False when
        the caller has already reported a problem with this job (an unknown key).
        `meta` (its own data, meta.py) and `account` (whose key runs it) may be unset.
        """
        self.jobs_seen += 1
        ok = valid
        plan = PLANS.get(model_name) if type(model_name) is str else None
        if plan is None:  # known names are valid text: only others need checking
            plan, model_ok = self._other_model(line, model_name, lines)
            ok = ok and model_ok
        resolved: dict[str, Any] = {}
        tokens: dict[str, str] | None = None
        if type(inputs) is dict or isinstance(inputs, Mapping):
            resolved, tokens, inputs_ok = self._inputs(plan, model_name, inputs, line, lines)
            ok = ok and inputs_ok
        else:
            ok = False
            self._bad_inputs(line, inputs, lines)
        id_ok = True
        if job_id is MISSING or job_id is None:
            job_id = None
        elif type(job_id) is not str or not SAFE_NAME.fullmatch(job_id):
            ok = id_ok = False
            self._bad_id(line, job_id, lines)
        if priority is MISSING or priority is None:
            priority = 0
        elif type(priority) is not int or not -_INT64 <= priority <= _INT64:
            ok = False
            self._bad_priority(line, priority, lines)
        account, account_ok = self._account(line, account, lines)
        ok = ok and account_ok
        kept_meta = None
        if meta is not MISSING and meta is not None:
            kept_meta, meta_ok = checked_meta(self.findings, meta, line, lines)
            ok = ok and meta_ok
        if not ok:
            if job_id is not None and id_ok:
                self.findings.refused(job_id, line)
            return None
        tokens = tokens or {}  # known: no other input is a data URI
        if job_id is None:
            job_id = derived_id(model_name, resolved, tokens)
        location = Location(self.file, line)
        spec = JobSpec(job_id, model_name, resolved, priority, location, tokens, kept_meta)
        return spec if account == DEFAULT_ACCOUNT else replace(spec, account=account)

    def _account(self, line: int, account: Any, lines: Lines | None) -> tuple[str, bool]:
        """The job's account (default when unset), and whether it is a valid name."""
        if account is MISSING or account is None:
            return DEFAULT_ACCOUNT, True
        if type(account) is str and ACCOUNT_NAME.fullmatch(account):
            return account, True
        self.findings.problem(line_of(lines, "account", line), "account", bad_account(account))
        return DEFAULT_ACCOUNT, False

    def _inputs(
        self,
        plan: Plan,
        model_name: Any,
        inputs: Mapping[Any, Any],
        line: int,
        lines: Lines | None,
    ) -> tuple[dict[str, Any], dict[str, str] | None, bool]:
        """Check and resolve a job's inputs: (inputs to send, id tokens, ok)."""
        ok = True
        out: dict[str, Any] = {}
        tokens: dict[str, str] | None = None
        images = plan.images
        checkers = plan.checkers
        check_values = self.check_values
        for key, value in inputs.items():
            if value is None:
                continue  # null means "not set": a job can cancel a default this way
            if check_values:
                wrong = unstorable_input(key, value)
                if wrong is not None:
                    ok = False
                    self._input_problem(wrong[0], wrong[1], line, lines)
                    continue
            if key in images:
                uri, token, error = self.images.resolve(value)
                if error is not None:
                    ok = False
                    self._input_problem(f"inputs.{key}", error, line, lines)
                    continue
                out[key] = uri
                if token is not uri:
                    if tokens is None:
                        tokens = {}
                    tokens[key] = token
                continue
            checker = checkers.get(key, MISSING)
            if checker is MISSING:
                if plan.spec is None:
                    out[key] = value  # unknown model: the API decides
                    continue
                ok = False
                self._unknown_input(plan, model_name, key, line, lines)
                continue
            error = checker(value)
            if error is not None:
                ok = False
                self._input_problem(f"inputs.{key}", error, line, lines)
                continue
            out[key] = value
        if plan.spec is not None:
            for name in plan.spec.required:
                # Present but invalid was reported above; null counts as missing.
                if name not in out and inputs.get(name) is None:
                    ok = False
                    self._missing_input(plan.spec.required, model_name, name, line, lines)
        return out, tokens, ok

    def _input_problem(self, field: str, message: str, line: int, lines: Lines | None) -> None:
        self.findings.problem(line_of(lines, field, line), field, message)

    def _missing_input(
        self, required: tuple[str, ...], model_name: Any, name: str, line: int, lines: Lines | None
    ) -> None:
        self.findings.problem(
            line_of(lines, "inputs", line),
            f"inputs.{name}",
            f"missing required input {name!r} for model {model_name!r}; "
            f"it needs: {', '.join(required)}",
        )

    def _other_model(self, line: int, model_name: Any, lines: Lines | None) -> tuple[Plan, bool]:
        """A model name that is not a known model's: (the generic plan, name ok)."""
        if model_name is MISSING:
            self.findings.problem(
                line,
                "model_name",
                "missing model_name; add one such as 'model_name: tryon-max' "
                f"(known models: {', '.join(MODELS)})",
            )
            return GENERIC, False
        at = line_of(lines, "model_name", line)
        if type(model_name) is not str or not model_name:
            self.findings.problem(
                at,
                "model_name",
                f"model_name must be a model's name as text, e.g. tryon-max; "
                f"got {show(model_name)}",
            )
            return GENERIC, False
        if self.check_values and not is_unicode(model_name):
            self.findings.problem(at, "model_name", f"{show(model_name)} {NOT_UNICODE}")
            return GENERIC, False
        if model_name not in self._unknown_models:
            self._unknown_models.add(model_name)
            self.findings.warning(
                at,
                "model_name",
                f"unknown model {model_name!r}{did_you_mean(model_name, MODELS)}; "
                "its jobs are sent to the API unchanged. Ignore this if it is a new "
                f"FASHN model (known: {', '.join(MODELS)})",
            )
        return GENERIC, True

    def _unknown_input(
        self, plan: Plan, model_name: str, key: Any, line: int, lines: Lines | None
    ) -> None:
        self.findings.problem(
            line_of(lines, f"inputs.{key}", line),
            f"inputs.{key}",
            f"unknown input {key!r} for model {model_name!r}"
            f"{did_you_mean(str(key), plan.accepted)}; it accepts: "
            f"{', '.join(plan.accepted)}",
        )

    def _bad_inputs(self, line: int, inputs: Any, lines: Lines | None) -> None:
        if inputs is MISSING:
            self.findings.problem(
                line,
                "inputs",
                "missing inputs; add a mapping of the model's inputs, e.g. "
                "inputs: {image: photos/shirt.jpg}",
            )
            return
        self.findings.problem(
            line_of(lines, "inputs", line),
            "inputs",
            f"inputs must be a mapping of input name to value; got {show(inputs)}",
        )

    def _bad_id(self, line: int, job_id: Any, lines: Lines | None) -> None:
        hint = ' (in YAML, quote it: id: "42")' if isinstance(job_id, int | float) else ""
        self.findings.problem(
            line_of(lines, "id", line),
            "id",
            f"invalid id {show(job_id)}{hint}; use {ID_RULE}, or leave id out "
            "to get one derived from the model and inputs",
        )

    def _bad_priority(self, line: int, priority: Any, lines: Lines | None) -> None:
        self.findings.problem(
            line_of(lines, "priority", line),
            "priority",
            f"priority must be a whole number (higher runs first, default 0); got {show(priority)}",
        )

"""Name templates and the jobs they name: stored with each batch, and checked against
every job they will name inside the transaction that queues the jobs or sets the
template, so that a template that fails changes nothing (see naming.py for the rules).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from sqlalchemy import Connection, String, bindparam, select, update

from .. import schema as t
from ..naming import JobNaming, NameCheck, NameTemplate, NameTemplateError, most_outputs
from .connection import Database
from .statements import Prepared

_j, _b = t.jobs, t.batches
_BATCH = bindparam("batch", type_=String)
_TEMPLATES = Prepared(select(_b.c.id, _b.c.manifest, _b.c.name_template).order_by(_b.c.created_at))
_SET = Prepared(update(_b).where(_b.c.id == _BATCH).values(name_template=bindparam("template")))
_JOBS = Prepared(
    select(_j.c.job_id, _j.c.model_name, _j.c.inputs, _j.c.meta, _j.c.line)
    .where(_j.c.batch_id == _BATCH)
    .order_by(_j.c.pk)
)
_NAMING = Prepared(
    select(_b.c.name_template, _j.c.batch_id, _j.c.job_id, _j.c.model_name, _j.c.meta)
    .join(_b, _b.c.id == _j.c.batch_id)
    .where(_j.c.pk == bindparam("job"))
)


def set_template(conn: Connection, batch_id: str, template: NameTemplate) -> None:
    """Store `template` as the batch's own (the default is stored as NULL)."""
    _SET(conn, batch=batch_id, template=None if template.is_default else template.text)


def check(conn: Connection, batch_ids: Sequence[str]) -> None:
    """NameTemplateError (the caller's transaction then rolls back) if some output of
    the jobs of `batch_ids` cannot be named by its batch's template, or would share a
    name with another output of any batch of this database."""
    batches = {b: (NameTemplate.parse(text), manifest) for b, manifest, text in _TEMPLATES(conn)}
    apart = all(template.keeps_jobs_apart for template, _ in batches.values())
    names = NameCheck(shared=not apart)
    if not apart:
        # Outputs of other batches first: a clash is then reported at the new job.
        for other in batches.keys() - set(batch_ids):
            for job in _jobs(conn, other, batches[other][1]):
                names.add(batches[other][0], job, report=False)
    for batch_id in batch_ids:
        template, manifest = batches[batch_id]
        if apart and "n" in template.fields and not template.needs_values:
            continue  # nothing any job holds can break it (the default template)
        for job in _jobs(conn, batch_id, manifest):
            names.add(template, job)
    if names.total:
        text = batches[batch_ids[0]][0].text
        raise NameTemplateError(text, names.problems, names.total)


def _jobs(conn: Connection, batch_id: str, manifest: str) -> Iterator[JobNaming]:
    for job_id, model, inputs, meta, line in _JOBS(conn, batch=batch_id):
        yield JobNaming(
            batch=batch_id,
            id=job_id,
            model=model,
            meta=json.loads(meta) if meta else None,
            outputs=most_outputs(model, json.loads(inputs)),
            file=manifest,
            line=line,
        )


def naming(conn: Connection, job_pk: int) -> tuple[NameTemplate, JobNaming]:
    """The template of the job's batch and what it may use of the job."""
    text, batch_id, job_id, model, meta = _NAMING(conn, job=job_pk).one()
    job = JobNaming(batch_id, job_id, model, json.loads(meta) if meta else None)
    return NameTemplate.parse(text), job


def set_for(db: Database, batches: Sequence[str] | None, template: NameTemplate) -> None:
    """Make `template` the template of `batches` (None: every batch), checked against
    their jobs first: on any problem nothing changes (NameTemplateError)."""
    with db.tx() as conn:
        ids = list(batches) if batches is not None else [b for b, _, _ in _TEMPLATES(conn)]
        for batch_id in ids:
            set_template(conn, batch_id, template)
        if ids:
            check(conn, ids)


class Naming:
    """Where outputs go, as `store.naming`: each batch's name template."""

    def __init__(self, db: Database):
        self._db = db

    def set(self, batches: Sequence[str] | None, template: NameTemplate) -> None:
        """Where the outputs of `batches` (None: all) go from now on, checked first."""
        set_for(self._db, batches, template)

    def of_job(self, job_pk: int) -> tuple[NameTemplate, JobNaming]:
        """The template of the job's batch, and what it may use of the job."""
        with self._db.tx() as conn:
            return naming(conn, job_pk)

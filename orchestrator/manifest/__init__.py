"""Manifest → validated job specs.

A manifest is a YAML, CSV or JSON Lines file of jobs. `read_manifest()` picks the
reader by suffix; `Manifest.entries()` yields, in file order, each valid job as a
`JobSpec`, each problem (file, line, field, what to do) as a `Problem`, and a
`RefusedJob` for an invalid job whose id is valid, so that a caller can list every
problem at once and queue nothing. `Manifest.jobs()` and `Manifest.problems` are
the same reading split in two, for callers that take them apart.

CSV and JSON Lines are streamed row by row: memory does not grow with the number of
rows. Duplicate ids (and ids that differ only in letter case) are left to the store,
which can check a million ids with SQL without holding them here; the reader only
names the ids of the jobs it refused for other reasons (RefusedJob), so that the
store reports their duplicates in the same run.

Where each rule lives:
- reading.py: the Manifest, formats by suffix, the problem listing (MAX_PROBLEMS).
- yaml_reader.py: YAML with lines and an alias budget; yaml_document.py: its outline
  and `defaults`; csv_reader.py and jsonl_reader.py: the streamed formats.
- validation.py: one job's fields; plans.py: what each model accepts; values.py:
  what JSON can carry (Unicode, nesting); ids.py: id rules and derived ids;
  images.py: image inputs → URLs or data URIs; findings.py: what a reading yields.
"""

from .findings import Entry, RefusedJob
from .reading import FORMATS, Manifest, read_manifest

__all__ = ["FORMATS", "Entry", "Manifest", "RefusedJob", "read_manifest"]

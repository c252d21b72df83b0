"""Name templates: what a template may say, the paths it gives, and the jobs it cannot
name (missing meta, separators, two outputs on one name)."""

from __future__ import annotations

import pytest

from orchestrator.naming import (
    DEFAULT_TEMPLATE,
    JobNaming,
    NameCheck,
    NameTemplate,
    NamingProblem,
    TemplateError,
    most_outputs,
)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/abs/{id}/{n}.{ext}", "relative to --out"),
        ("~/{id}/{n}.{ext}", "relative to --out"),
        ("C:{id}/{n}.{ext}", "relative to --out"),
        ("{batch}\\{id}/{n}.{ext}", "relative to --out"),
        ("{batch}/../{id}/{n}.{ext}", "'..' part"),
        ("{batch}//{id}/{n}.{ext}", "'..' part"),
        ("{batch}/{id}/", "'..' part"),
        ("{sku}/{n}.{ext}", "unknown field {sku}"),
        ("{meta.}/{n}.{ext}", "unknown field {meta.}"),
        ("{meta.a b}/{n}.{ext}", "unknown field"),
        ("{n:03}.{ext}", "without ':' or '!'"),
        ("{id!r}.{ext}", "without ':' or '!'"),
        ("{id", "literal brace"),
        ("", "empty"),
        ("{id}\n{n}", "control characters"),
    ],
)
def test_unusable_templates_are_refused_whatever_the_jobs(text: str, says: str) -> None:
    """Absolute paths, `..`, empty parts, unknown fields and format specs are refused."""
    with pytest.raises(TemplateError, match=says.replace("{", r"\{").replace("(", r"\(")):
        NameTemplate.parse(text)


@pytest.mark.parametrize(
    ("text", "apart", "values"),
    [
        (DEFAULT_TEMPLATE, True, False),
        ("{batch}/{meta.sku}/{id}-{n}.{ext}", False, True),
        ("{batch}/x/{id}/{n}.{ext}", True, False),
        ("{meta.sku}/{n}.{ext}", False, True),
        ("{batch}/{model}/{id}/{n}.{ext}", True, True),
    ],
)
def test_what_a_template_guarantees_by_its_shape(text: str, apart: bool, values: bool) -> None:
    """Jobs are apart by shape only with a {batch} first folder and an {id} part."""
    template = NameTemplate.parse(text)
    assert (template.keeps_jobs_apart, template.needs_values) == (apart, values)


def test_rendering_fills_every_field() -> None:
    """batch, id, model, n, ext and meta values land where the template puts them."""
    template = NameTemplate.parse("{batch}/{model}/{meta.season}/{meta.sku}_{id}_{n}.{ext}")
    job = JobNaming("spring", "j1", "tryon-max", {"sku": "A-1", "season": 2026})
    assert template.render(job, 3, "jpg") == "spring/tryon-max/2026/A-1_j1_3.jpg"
    assert NameTemplate.parse(None).render(job, 0, "png") == "spring/j1/0.png"


@pytest.mark.parametrize(
    ("meta", "field", "says"),
    [
        ({}, "meta.sku", "has no meta.sku"),
        ({"sku": "a/b"}, "meta.sku", "may not hold '/'"),
        ({"sku": "a\\b"}, "meta.sku", "may not hold '/'"),
        ({"sku": ".."}, "name-template", "'..' part"),
        ({"sku": ""}, "meta.sku", "empty"),
        ({"sku": {"a": 1}}, "meta.sku", "is a mapping"),
        ({"sku": "a\x00b"}, "meta.sku", "control characters"),
        ({"sku": "x" * 300}, "name-template", "longer than 255 bytes"),
    ],
)
def test_a_value_that_cannot_name_a_file_is_a_problem(
    meta: dict[str, object], field: str, says: str
) -> None:
    """Missing meta, separators, `..`, mappings, control characters, overlong names."""
    template = NameTemplate.parse("{batch}/{meta.sku}/{n}.{ext}")
    with pytest.raises(NamingProblem, match=says) as err:
        template.render(JobNaming("b", "j", "m", meta), 0, "png")
    assert err.value.field == field


def test_two_jobs_on_one_name_are_found_case_insensitively() -> None:
    """`Shoe` and `shoe` are one file on macOS: the second job is reported, with the
    first one's line."""
    check = NameCheck()
    template = NameTemplate.parse("{meta.sku}_{n}.{ext}")
    check.add(template, JobNaming("b", "a", "m", {"sku": "Shoe"}, file="m.csv", line=2))
    check.add(template, JobNaming("b", "c", "m", {"sku": "other"}, file="m.csv", line=3))
    check.add(template, JobNaming("b", "d", "m", {"sku": "shoe"}, file="m.csv", line=4))
    assert check.total == 1
    (problem,) = check.problems
    assert (problem.file, problem.line, problem.field) == ("m.csv", 4, "name-template")
    assert "as job 'a' (m.csv:2)" in problem.message


def test_two_outputs_of_one_job_need_n() -> None:
    """A job that yields two outputs cannot use a template without {n}; one output can."""
    check = NameCheck()
    template = NameTemplate.parse("{batch}/{id}.{ext}")
    check.add(template, JobNaming("b", "one", "background-remove", outputs=1, line=2))
    check.add(template, JobNaming("b", "two", "tryon-max", outputs=2, line=3))
    assert [(p.line, p.field) for p in check.problems] == [(3, "name-template")]
    assert "add {n}" in check.problems[0].message


def test_jobs_kept_apart_by_shape_are_not_compared() -> None:
    """NameCheck(shared=False) checks values only: the template keeps jobs apart."""
    check = NameCheck(shared=False)
    template = NameTemplate.parse("{batch}/{id}/{meta.sku}_{n}.{ext}")
    check.add(template, JobNaming("b", "a", "m", {"sku": "x"}))
    check.add(template, JobNaming("b", "c", "m", {"sku": "x"}))
    check.add(template, JobNaming("b", "d", "m", {}, line=9))
    assert [(p.line, p.field) for p in check.problems] == [(9, "meta.sku")]


@pytest.mark.parametrize(
    ("model", "inputs", "most"),
    [
        ("tryon-max", {"num_images": 3}, 3),
        ("tryon-max", {}, 1),
        ("tryon-v1.6", {"num_samples": 2}, 2),
        ("background-remove", {}, 1),
        ("a-new-model", {}, 2),
    ],
)
def test_how_many_outputs_a_job_may_yield(model: str, inputs: dict[str, int], most: int) -> None:
    """The count input says; a model this release does not know may yield several."""
    assert most_outputs(model, inputs) == most

"""Personal data never lands in MLflow: the scanner, the job's use of it, and the reports.

The synthetic generator writes fake names, phone numbers and national ids into the
`data.pii` columns, so a leak is a concrete string that can be searched for. A clean job
scans clean; two realistic leaks — a renamed copy of the name column used as a feature,
and a real applicant's name typed into a reason text — are caught, end the run FAILED
and leave no model version.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import run
from datasets import make_credit
from registry.governance import read_chain
from registry.pii_scan import MIN_CHARS, MIN_DIGITS, PiiIndex, PiiLeak, readable_text, scan_run
from tests.robustness.jobs import Job, artifact_files, cli, make_job, runs_of, versions_of

PII = ("full_name", "phone", "national_id")
ID = "application_id"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_credit(4000, seed=17).frame


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> tuple[Job, object]:
    """One job with two tuning trials (their child runs are scanned too)."""
    job = make_job(
        tmp_path_factory.mktemp("pii-clean"),
        frame,
        updates={"tuning": {"n_trials": 2, "pruner": "none"}},
    )
    return job, run(load_config(job.config))


# ----------------------------------------------------------------------------- matching


def test_whole_values_match_in_any_spelling_and_fragments_do_not() -> None:
    index = PiiIndex(
        {
            "full_name": ["Mark N. Phillips", "Zoë A. O'Brien"],
            "phone": ["+44 7779 090102"],
            "national_id": ["EC802462B"],
        }
    )
    found = {
        "MARK N PHILLIPS,42": {"full_name": 1},
        "applicant: mark n. phillips": {"full_name": 1},
        "Mark Phillips": {},  # not the value: the initial is missing
        "Marks N Phillips": {},  # a different word
        "Mark": {},  # a first name alone is not a person
        "call 447779090102": {"phone": 1},
        "+44 7779 090102 or 447779090102": {"phone": 1},  # one value, two spellings
        "call +44 (7779) 090102": {"phone": 1},
        "44 7779": {},
        "id=EC802462B;": {"national_id": 1},
        "XEC802462B": {},  # inside another token
    }
    for text, expected in found.items():
        assert index.find(text) == expected, text
    # The encodings files use: JSON's \u escapes, HTML entities.
    as_json = json.dumps({"name": "Zoë A. O'Brien"}).encode()
    as_html = html.escape("<td>Zoë A. O'Brien</td>").encode()
    assert b"\\u00eb" in as_json and b"&#x27;" in as_html
    assert index.find(readable_text(as_json, ".json")) == {"full_name": 1}
    assert index.find(readable_text(as_html, ".html")) == {"full_name": 1}


def test_values_too_short_to_tell_apart_are_counted_not_searched() -> None:
    index = PiiIndex({"name": ["Li", "Bo Xu", "Alexandra"], "number": [1234567.0, 12345678.0]})
    # "Li" (2), "Bo Xu" (4) and 1234567 (7 digits) are under MIN_CHARS / MIN_DIGITS.
    assert (MIN_CHARS, MIN_DIGITS) == (6, 8)
    assert (index.count, index.too_short) == (2, 3)
    assert index.find("li bo xu 1234567 seed") == {}
    assert index.find("alexandra 12345678") == {"name": 1, "number": 1}


def _one_value_at_a_time(values: dict[str, list[object]]) -> tuple[int, int, dict[str, str]]:
    """The index's definition written as a plain loop over the values, with `re` alone.

    (count, too_short, searched form -> column), to check the vectorised build against.
    """
    column_of: dict[str, str] = {}
    short: set[str] = set()
    count = 0
    for column, items in values.items():
        for item in items:
            if isinstance(item, float) and item.is_integer():
                item = int(item)
            tokens = re.findall(r"[^\W_]+", str(item).lower())
            key, run_together = " ".join(tokens), "".join(tokens)
            too_short = len(run_together) < (MIN_DIGITS if run_together.isdigit() else MIN_CHARS)
            if not tokens or too_short:
                short.add(key)
                continue
            count += key not in column_of
            column_of.setdefault(key, column)
            if len(tokens) > 1:
                column_of.setdefault(run_together, column)
    return count, len(short), column_of


def test_the_vectorised_index_agrees_with_a_loop_over_the_values() -> None:
    """Synthetic PII plus values that take the non-ASCII path, numbers read as floats,
    a value repeated in a second column and a value whose tokens run together equal an
    id: every searched form is found, in the column the loop gives it."""
    synthetic = make_credit(3000, seed=23).frame
    values: dict[str, list[object]] = {c: synthetic[c].dropna().unique().tolist() for c in PII}
    values["full_name"] += ["Zoë A. O'Brien", "ŁUKASZ Ż. NOWAK", "José_María Núñez", "Ab"]
    values["national_id"] += ["ZOEAOBRIEN", "MARKNPHILLIPS", "Mark N. Phillips"]
    values["full_name"] += ["Mark N. Phillips"]
    values["account"] = [12345678.0, 1234567.0, 98765432101, "  ", "--"]
    index = PiiIndex(values)
    count, too_short, column_of = _one_value_at_a_time(values)
    assert (index.count, index.too_short) == (count, too_short)
    assert len(column_of) > 3 * len(synthetic) // 2  # the synthetic values really are in
    for form, column in column_of.items():
        assert index.find(f"… {form} …") == {column: 1}, form
    assert index.find("zoe a o brien 1234567") == {}  # ë is a letter of its own


# ----------------------------------------------------------------------------- a clean job


def test_a_clean_job_scans_clean_and_reads_every_place(clean, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    job, result = clean
    client = job.client()
    tags = client.get_run(result.run_id).data.tags
    assert tags["creditgov.pii_scan"].startswith("no personal data: ")

    scan = scan_run(
        client,
        result.run_id,
        source=job.folder / "data" / "table.parquet",
        pii=PII,
        model_name=result.model_name,
        version=result.model_version,
    )
    assert scan.clean, scan.describe()
    # Every distinct value is long enough to search: 4000 names, phones and ids each.
    distinct = sum(frame[c].nunique() for c in PII)
    assert scan.values == distinct and scan.too_short == 0
    assert scan.values > 3 * 3900
    # Everything the run logged was read: each artifact, listed independently of the scanner.
    places = set(scan.places)
    for path in artifact_files(client, result.run_id):
        assert f"run artifact {path}" in places, path
    model_id = client.get_model_version(result.model_name, result.model_version).source
    local = Path(
        mlflow.artifacts.download_artifacts(
            model_id, dst_path=str(job.folder / "m"), tracking_uri=job.uri
        )
    )
    model_files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"MLmodel", "input_example.json", "artifacts/state.json", "artifacts/model.txt"} <= (
        model_files
    )
    for name in model_files:
        assert f"logged model 'model' file {name}" in places, name
    for expected in (
        "run param 'data.pii'",
        "run metric names",
        f"run dataset input '{Path('table.parquet')}'",
        "trial run trial-000 param 'num_leaves'",
        f"model version {result.model_name}/{result.model_version} tag 'run_id'",
        f"model version {result.model_name}/{result.model_version} description",
        "registered model tag 'audit.000001'",
    ):
        assert expected in places, expected
    assert scan.skipped == ()  # the report's plots are inline, not PNG files


def test_reports_show_ids_and_aggregates_never_raw_rows(clean, frame: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    job, result = clean
    client = job.client()
    folder = Path(client.download_artifacts(result.run_id, "reports", str(job.folder / "r")))
    page = (folder / "report.html").read_text(encoding="utf-8")
    evidence = json.loads((folder / "evidence.json").read_text(encoding="utf-8"))
    card = (folder / "model_card.md").read_text(encoding="utf-8")
    features = set(evidence["model"]["features"])

    examples = evidence["explainability"]["reason_examples"]
    assert 0 < len(examples) <= 12
    assert list(examples[0]) == ["id", "probability", "score", "decision"] + [
        f"reason_{i}" for i in range(1, 5)
    ]
    test_ids = set(frame.loc[frame["application_date"] >= "2024-07-01", ID])
    shown = {e["id"] for e in examples}
    assert shown <= test_ids
    # The only applicant ids anywhere in the report are the examples'.
    assert set(re.findall(r"A\d{7}", page)) == shown
    assert not re.findall(r"A\d{7}", card)

    # A raw row would be a table with feature names as its columns; no table has one.
    headers = [
        set(re.findall(r"<th[^>]*>([^<]*)</th>", table))
        for table in re.findall(r"<thead>.*?</thead>", page)
    ]
    assert headers and all(not (h & features) for h in headers), headers
    md_headers = [
        {c.strip() for c in line.strip("|").split("|")}
        for line, rule in zip(card.splitlines(), card.splitlines()[1:], strict=False)
        if line.startswith("|") and rule.startswith("| ---")
    ]
    assert md_headers and all(not (h & features) for h in md_headers)

    def record_keys(value: object) -> set[str]:
        if isinstance(value, dict):
            return set(value).union(*(record_keys(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(record_keys(v) for v in value))
        return set()

    # In the JSON, features are named as values ("feature": "bureau_score") or as keys of
    # per-feature maps (PSI by feature), never as the keys of a list of row records.
    for part in ("score_bands", "calibration", "fairness"):
        assert not (record_keys(evidence[part]) & features), part
    assert not (record_keys(examples) & features)


# ----------------------------------------------------------------------------- leaks


def test_a_renamed_copy_of_a_pii_column_is_caught_and_nothing_is_registered(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """A CRM export carries the name twice; only `full_name` is declared as PII."""
    leaky = frame.copy()
    leaky.insert(3, "contact_name", leaky["full_name"])
    job = make_job(tmp_path, leaky)
    done = cli(job.uri, "train", str(job.config))

    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert message.startswith("error: personal data found in run "), message
    assert "data.pii column 'full_name'" in message
    for file in ("artifacts/state.json", "input_example.json", "artifacts/reference_profile.json"):
        assert f"logged model 'model' file {file}" in message, file
    assert "marked FAILED" in message and "data.pii or data.exclude" in message
    # The message names places, never a value.
    assert not any(name in done.stderr + done.stdout for name in frame["full_name"])

    client = job.client()
    runs = runs_of(client)
    assert [r.info.status for r in runs] == ["FAILED"]
    assert runs[0].data.tags["creditgov.pii_scan"].startswith("personal data found")
    # Version 1 had been registered before the scan ran; it is gone again.
    first = read_chain(client, "credit-pd")[0]
    assert (first.event, first.version) == ("registered", "1")
    assert versions_of(client) == []


def test_an_applicants_name_in_a_reason_text_fails_the_run(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    name = str(frame["full_name"].iloc[10])
    job = make_job(
        tmp_path,
        frame,
        updates={"evaluation": {"reason_texts": {"debt_to_income": f"As discussed with {name}"}}},
    )
    with pytest.raises(PiiLeak) as caught:
        run(load_config(job.config))
    places = {hit.place for hit in caught.value.scan.hits}
    assert {
        "run param 'evaluation.reason_texts.debt_to_income'",
        "run artifact config/resolved_config.json",
        "run artifact reports/report.html",
        "run artifact reports/evidence.json",
        "logged model 'model' file artifacts/state.json",
    } <= places, places
    assert {hit.column for hit in caught.value.scan.hits} == {"full_name"}
    assert name not in str(caught.value)

    client = job.client()
    assert [r.info.status for r in runs_of(client)] == ["FAILED"]
    assert versions_of(client) == []

"""Personal data never lands in MLflow: the scanner, the job's use of it, and the reports.

The synthetic generator writes fake names, phone numbers and national ids into the
`data.pii` columns, so a leak is a concrete string that can be searched for. A clean job
scans clean. A renamed copy of the name column, or the phone number kept as an integer
feature, looks like an identifier and is refused at load (or, with
`data.identifier_like: drop`, dropped, and then no digit of it reaches MLflow). A real
applicant's name typed into a reason text is caught at the end: the run is purged — no
file, param or row holds the name afterwards — and no model version is left. A name that
is also a level of a feature is a collision, not a leak: the job trains, with a warning.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import prepare, run
from datasets import make_credit
from registry.governance import read_chain
from registry.pii_index import MIN_CHARS, MIN_DIGITS, PiiCollision, PiiIndex
from registry.pii_scan import readable_text, scan_run
from tests.robustness.jobs import Job, artifact_files, make_job, runs_of, versions_of
from tests.support import assert_bad_input, creditgov_in_process, error_lines, tracked

PII = ("full_name", "phone", "national_id")
ID = "application_id"
#: A name that is also a level of the `purpose` feature ("debt_consolidation").
COLLIDING_NAME = "Debt Consolidation"


def national_digits(phone: pd.Series) -> pd.Series:
    """Each phone as its national number's digits: +44 7193 108997 is 7193108997."""
    return phone.str.replace(r"^\+\d+", "", regex=True).str.replace(r"\D", "", regex=True)


def with_contact_no(frame: pd.DataFrame) -> pd.DataFrame:
    """The phone column's digits again, kept as an integer feature (a CRM's `contact_no`)."""
    out = frame.copy()
    out.insert(5, "contact_no", national_digits(out["phone"]).astype("int64"))
    return out


def _sqlite_rows(db: Path) -> Iterator[str]:
    """Every row of every table of a SQLite file, as text."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in con.execute(f'SELECT * FROM "{table}"'):
                yield " ".join(
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row
                )


def _artifact_texts(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        yield path, path.read_bytes().decode("utf-8", "replace")


def _spelled(text: str) -> str:
    """Lower-case, runs of letters and digits joined by one space: how a name is compared."""
    return " ".join(re.findall(r"[^\W_]+", html.unescape(text).lower()))


def _numbers_in(texts: Iterable[str]) -> set[str]:
    """Every whole run of digits in the texts (exponent notation written out)."""
    found: set[str] = set()
    for text in texts:
        found.update(re.findall(r"\d+", text))
        for m in re.finditer(r"\d+(?:\.\d+)?[eE][-+]?\d+", text):
            value = float(m[0])
            if value.is_integer():
                found.add(str(int(value)))
    return found


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
        # Digits alone: the national number (no +44), as an integer, a float, in exponent
        # notation (LightGBM's feature_infos, JSON) or with a trunk zero.
        "feature_infos=[7779090102:7999965668]": {"phone": 1},
        '"contact_no": 7779090102.0': {"phone": 1},
        "7.779090102e+09": {"phone": 1},
        "7.779090102E9": {"phone": 1},
        "call 07779 090102": {},  # two tokens: not a spelling of the value
        "call 07779090102": {"phone": 1},
        "7.77909e+09": {},  # rounded: not the number
        "77790901020": {},
        "802462": {},  # a national id's digits: too few to search
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
            digits = re.sub(r"[^0-9]", "", run_together)
            forms = [digits, digits.lstrip("0")]
            if re.match(r"\s*\+\s*[0-9]", str(item)) and len(tokens) > 1:
                national = re.sub(r"[^0-9]", "", "".join(tokens[1:]))
                forms += [national, national.lstrip("0")]
            for form in forms:
                if len(form) >= MIN_DIGITS:
                    column_of.setdefault(form, column)
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
    values["account"] = [12345678.0, 1234567.0, 98765432101, "  ", "--", "ACC-0012345679-X"]
    values["phone"] += ["+1 0212 5550199", "+7 9161234567"]
    index = PiiIndex(values)
    count, too_short, column_of = _one_value_at_a_time(values)
    assert (index.count, index.too_short) == (count, too_short)
    assert len(column_of) > 3 * len(synthetic) // 2  # the synthetic values really are in
    for form, column in column_of.items():
        assert index.find(f"… {form} …") == {column: 1}, form
    assert index.find("zoe a o brien 1234567") == {}  # ë is a letter of its own


def test_a_value_equal_to_a_features_level_is_a_collision_not_a_leak() -> None:
    """ "Debt Consolidation" the person is not searched where `debt_consolidation` the
    purpose is a level; a feature whose levels are mostly names is a copy and stays a leak."""
    names = ["Debt Consolidation", "Mark N. Phillips", "Zoe A. Obrien", "Carl B. Bond", "Dana Fox"]
    levels = {
        "purpose": ["debt_consolidation", "car", "credit_card"],
        "referred_by": ["Zoe A. Obrien", "Carl B. Bond", "Dana Fox", "walk-in"],
    }
    index = PiiIndex({"full_name": names}, levels)
    assert index.collisions == (PiiCollision("full_name", "purpose", 1),)
    assert index.count == len(names) - 1
    assert index.find("purpose: debt_consolidation") == {}
    assert index.find("referred_by: Zoe A. Obrien") == {"full_name": 1}
    assert "equals a level of feature 'purpose'" in index.collisions[0].describe()
    assert "Debt" not in index.collisions[0].describe()


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


def test_the_drift_reference_holds_no_columns_exact_smallest_or_largest_value(clean) -> None:  # type: ignore[no-untyped-def]
    """The reference profile travels with the model; a column's extreme is one applicant's
    value, unless a percent of the rows share it (a mass point such as 0 delinquencies)."""
    job, result = clean
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{result.model_name}/{result.model_version}",
            dst_path=str(job.folder / "ref"),
            tracking_uri=job.uri,
        )
    )
    reference = json.loads(next(local.rglob("reference_profile.json")).read_text())
    train = prepare(load_config(job.config)).train.features
    checked = 0
    for feature in reference["features"]:
        if feature["kind"] != "numeric":
            continue
        stored = set(feature["edges"]) | set(feature["quantiles"])
        column = train[feature["name"]].dropna()
        for extreme in (column.min(), column.max()):
            if (column == extreme).mean() >= 0.01:
                continue  # shared by a percent of the applicants: nobody's own
            assert float(extreme) not in stored, (feature["name"], "an exact extreme is stored")
            checked += 1
        q = feature["quantiles"]
        assert q[0] <= column.min() and q[-1] >= column.max()  # still the CDF's 0 and 1
    assert checked >= 8  # incomes, amounts, ratios, the bureau score: both ends each


# ----------------------------------------------------------------------------- identifiers


def test_a_phone_number_kept_as_an_integer_feature_is_refused_at_load(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """National format, no country code: the scan's old spellings could not see it, and
    LightGBM's model.txt, the drift reference and the input example all held the numbers."""
    job = make_job(tmp_path, with_contact_no(frame))
    done = creditgov_in_process("train", str(job.config), cwd=tmp_path)
    line = assert_bad_input(
        done,
        names=tmp_path / "data" / "table.parquet",
        pieces=[
            "feature 'contact_no' looks like an identifier",
            "4,000 distinct whole numbers of 8+ digits in 4,000 rows",
            "data.pii",
            "data.exclude",
            "data.identifier_like: drop",
        ],
        db=tmp_path / "mlflow.db",
    )
    assert not re.search(r"\d{8}", line)  # counts, never a value


def test_a_renamed_copy_of_a_pii_column_is_refused_at_load(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """A CRM export carries the name twice; only `full_name` is declared as PII."""
    leaky = frame.copy()
    leaky.insert(3, "contact_name", leaky["full_name"])
    job = make_job(tmp_path, leaky)
    done = creditgov_in_process("train", str(job.config), cwd=tmp_path)
    line = assert_bad_input(
        done,
        names=tmp_path / "data" / "table.parquet",
        pieces=["feature 'contact_name' looks like an identifier", "distinct text values"],
        db=tmp_path / "mlflow.db",
    )
    assert not any(name in line for name in frame["full_name"])


@pytest.fixture(scope="module")
def messy(
    tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame
) -> tuple[Job, subprocess.CompletedProcess[str], pd.DataFrame]:
    """The phone kept as `contact_no` with data.identifier_like: drop, and one applicant
    whose name is a level of `purpose`."""
    data = with_contact_no(frame)
    data.loc[25, "full_name"] = COLLIDING_NAME
    folder = tmp_path_factory.mktemp("pii-messy")
    job = make_job(folder, data, updates={"data": {"identifier_like": "drop"}})
    return job, creditgov_in_process("train", str(job.config), cwd=folder), data


def test_a_dropped_identifier_leaves_no_digit_of_it_in_mlflow(messy) -> None:  # type: ignore[no-untyped-def]
    job, done, data = messy
    assert done.returncode == 0, done.stderr
    warned = error_lines(done.stderr)
    assert any(
        line.startswith("warning: dropped feature 'contact_no': looks like an identifier")
        for line in warned
    ), done.stderr
    numbers = set(data["contact_no"].astype(str)) | set(national_digits(data["phone"]))
    assert len(numbers) == len(data)
    files = list(_artifact_texts(job.folder / "artifacts"))
    assert any(path.name == "model.txt" for path, _ in files)
    assert not numbers & _numbers_in(text for _, text in files)
    db = job.folder / "mlflow.db"
    assert not numbers & _numbers_in(_sqlite_rows(db))
    assert not numbers & _numbers_in([db.read_bytes().decode("latin-1")])  # free pages too


def test_a_name_that_is_a_level_of_a_feature_trains_with_a_warning(messy) -> None:  # type: ignore[no-untyped-def]
    job, done, _ = messy
    assert done.returncode == 0, done.stderr
    collisions = [line for line in error_lines(done.stderr) if "PiiCollisionWarning" in line]
    assert len(collisions) == 1, done.stderr
    assert (
        "data.pii column 'full_name': 1 value equals a level of feature 'purpose'" in collisions[0]
    )
    assert COLLIDING_NAME not in done.stderr + done.stdout
    client = job.client()
    (only,) = runs_of(client)
    assert only.info.status == "FINISHED"
    scan_tag = only.data.tags["creditgov.pii_scan"]
    assert scan_tag.startswith("no personal data: ") and "'full_name' with 'purpose'" in scan_tag
    assert [str(v.version) for v in versions_of(client)] == ["1"]


# ----------------------------------------------------------------------------- leaks


def test_an_applicants_name_in_a_reason_text_fails_the_run_and_is_purged(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """Found in a param, the config artifact, the reports and the model's state: the run,
    its files and its rows are removed at once, not left for `mlflow gc`."""
    name = str(frame["full_name"].iloc[10])
    job = make_job(
        tmp_path,
        frame,
        updates={"evaluation": {"reason_texts": {"debt_to_income": f"As discussed with {name}"}}},
    )
    done = creditgov_in_process("train", str(job.config), cwd=tmp_path)

    assert done.returncode == 1, done.stderr
    lines = [line for line in error_lines(done.stderr) if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    message = lines[0]
    assert message.startswith("error: personal data found in run "), message
    for place in (
        "run param 'evaluation.reason_texts.debt_to_income'",
        "run artifact config/resolved_config.json",
        "run artifact reports/report.html",
        "run artifact reports/evidence.json",
        "logged model 'model' file artifacts/state.json",
    ):
        assert place in message, place
    assert "data.pii column 'full_name'" in message and "marked FAILED" in message
    # What was purged, counted: the run's files and the model's, its params and tags.
    purged = re.search(
        r"purged (\d+) artifact files, 1 logged model and 1 run with its (\d+) params and "
        r"(\d+) tags",
        message,
    )
    assert purged is not None, message
    files, params, tags = (int(n) for n in purged.groups())
    assert files >= 14 and params >= 40 and tags >= 5
    assert "not purged" not in message
    assert name not in done.stderr + done.stdout

    client = job.client()
    db = tmp_path / "mlflow.db"
    assert tracked(db).runs == ()  # no run, not even a deleted one
    assert versions_of(client) == []
    first = read_chain(client, "credit-pd")[0]  # the audit chain keeps the registration
    assert (first.event, first.version) == ("registered", "1")
    spelled = _spelled(name)
    assert not [
        p for p, text in _artifact_texts(tmp_path / "artifacts") if spelled in _spelled(text)
    ]
    assert not [row for row in _sqlite_rows(db) if spelled in _spelled(row)]
    raw = db.read_bytes().decode("latin-1")
    assert name not in raw and name.lower() not in raw.lower()  # nor in the file's free pages

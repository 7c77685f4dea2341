"""The bad-batch catalogue: `creditgov score` and `creditgov drift` on broken new data.

One small model is trained once for the module (4,000 synthetic applications, tuning
off) and registered in a SQLite store; every case then hands the CLI a batch of 300 of
those applications with one defect. What each command does, and why:

- a column the model needs is absent, holds text where the model was trained on
  numbers, or (score only) is empty in every row although training never saw it
  missing: exit 2, one line naming file and column with the fix, and no output file.
  A cell that does not convert is named by column and data row (1-based), never by its
  value: text in a numeric column is often a name or a phone number typed in the wrong
  place, so the cases below plant one (`SECRET`) and look for it in everything printed.
  Such an empty column is a broken extract: scored, every row would silently get the
  "unknown" answer. A feature that training did see missing (months since the last
  missed payment) may be empty throughout a small batch, and is scored.
- an empty batch (header only, or a 0-byte file): exit 2; there is nothing to score
  or compare, and an empty output would look like a successful run of nothing.
- unseen levels: not an error. `score` scores them as missing, exactly as the model
  was built to, and warns once per column on stderr; `drift --json` counts them for a
  column data.categorical does not declare (this config declares none: `region` is text,
  taken as categorical), so a name typed into a free-text column is never copied out.
- all values missing, for `drift`: not an error either: drift exists to report it
  (missing share 0% -> 100%, the feature drifted; exit 4 with --fail-on-drift).

Bad-input cases check the whole contract with `assert_bad_input`, against the store as
it was after training: same runs (none RUNNING), same registered versions.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tests.conftest import CREDIT_CONFIG, merge, write_frame
from tests.support import (
    Tracked,
    assert_bad_input,
    creditgov,
    creditgov_in_process,
    error_lines,
    tracked,
)

TARGET = "default_12m"
ID = "application_id"
MODEL = "models:/credit-pd/1"
#: A cell value that must never be printed or written: a name and a phone number.
SECRET = "Zhang Wei 13812345678"
OTHER = "Li Na 13900000000"


def leaks(text: str) -> bool:
    """Whether `text` holds a piece of SECRET or OTHER (word by word: a console may wrap)."""
    return any(word in text for word in ("Zhang", "13812345678", "Li Na", "13900000000"))


@dataclass(frozen=True)
class Trained:
    folder: Path
    uri: str
    db: Path
    batch: pd.DataFrame  # 300 applications the model can score, without the target
    store: Tracked  # the tracking store right after training


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, credit_frame: pd.DataFrame) -> Trained:
    folder = tmp_path_factory.mktemp("batches")
    write_frame(credit_frame, folder / "data" / "credit.parquet")
    db = folder / "mlflow.db"
    uri = f"sqlite:///{db}"
    config = yaml.safe_load(CREDIT_CONFIG.read_text(encoding="utf-8"))
    merge(
        config,
        {
            "data": {"source": "data/credit.parquet"},
            "tuning": {"n_trials": 0},
            "evaluation": {"shap_sample": 300},
            "tracking": {"uri": uri},
        },
    )
    (folder / "job.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    # Artifacts beside the store, whichever folder a command later runs from.
    MlflowClient(tracking_uri=uri).create_experiment(
        config["name"], artifact_location=(folder / "artifacts").as_uri()
    )
    done = creditgov_in_process("train", "job.yaml", cwd=folder)
    assert done.returncode == 0, done.stderr
    store = tracked(db)
    assert store.versions == (("credit-pd", "1"),) and store.running == []
    batch = credit_frame.drop(columns=[TARGET]).tail(300).reset_index(drop=True)
    return Trained(folder, uri, db, batch, store)


Edit = Callable[[pd.DataFrame], pd.DataFrame]


def cli(trained: Trained, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`creditgov ARGS` in-process against the trained model's store."""
    return creditgov_in_process(*args, cwd=cwd, tracking_uri=trained.uri)


def write_batch(trained: Trained, folder: Path, name: str, edit: Edit | None = None) -> Path:
    frame = trained.batch.copy() if edit is None else edit(trained.batch.copy())
    path = folder / name
    write_frame(frame, path)
    return path


# ----------------------------------------------------------------------------- bad batches


@dataclass(frozen=True)
class Case:
    command: str  # "score" or "drift"
    name: str  # the batch file's name (its suffix picks the format)
    pieces: tuple[str, ...]
    edit: Edit | None = None
    raw: bytes | None = None  # replaces the file's bytes
    absent: bool = False  # the path names no file
    subprocess: bool = False
    extra: tuple[str, ...] = ()  # more options for the command


def _text_in(column: str) -> Edit:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        values = frame[column].astype(str)  # numbers as text, as an export might write them
        values[frame.index % 7 == 0] = "unknown"
        return frame.assign(**{column: values})

    return edit


def _secret_in(column: str, rows: tuple[int, ...]) -> Edit:
    """SECRET in `column` at these data rows (1-based), the rest of the column unchanged."""

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        # The numbers as text (a Parquet column holds one type), missing cells kept missing.
        values = pd.Series(
            [None if pd.isna(v) else str(v) for v in frame[column]], index=frame.index, dtype=object
        )
        values[[r - 1 for r in rows]] = SECRET
        return frame.assign(**{column: values})

    return edit


NOT_A_NUMBER = "not a number; fix or blank those cells"

CASES: dict[str, Case] = {
    "score-missing-column": Case(
        "score",
        "batch.csv",
        edit=lambda f: f.drop(columns=["bureau_score"]),
        pieces=("column(s) 'bureau_score' missing", "add them to the file"),
        subprocess=True,
    ),
    "score-all-values-missing": Case(
        "score",
        "batch.parquet",
        edit=lambda f: f.assign(annual_income=np.nan),  # never missing in training
        pieces=("column 'annual_income' is empty in all 300 rows", "fix the extract"),
    ),
    "score-text-in-a-numeric-column": Case(
        "score",
        "batch.csv",
        edit=_text_in("annual_income"),
        pieces=(f"column 'annual_income', row 1: {NOT_A_NUMBER}",),
    ),
    "score-a-name-in-a-numeric-column-csv": Case(
        "score",
        "batch.csv",
        edit=_secret_in("annual_income", (58, 200)),
        pieces=(f"column 'annual_income', row 58: {NOT_A_NUMBER}",),
        subprocess=True,
    ),
    "score-a-name-in-a-numeric-column-parquet": Case(
        "score",
        "batch.parquet",
        edit=_secret_in("bureau_score", (58, 200)),
        pieces=(f"column 'bureau_score', row 58: {NOT_A_NUMBER}",),
    ),
    "score-a-name-in-a-numeric-column-second-chunk": Case(
        "score",
        "batch.csv",
        edit=_secret_in("debt_to_income", (250,)),
        pieces=(f"column 'debt_to_income', row 250: {NOT_A_NUMBER}",),
        extra=("--chunk-rows", "100"),
    ),
    "score-a-name-in-a-whole-number-column": Case(
        "score",
        "batch.parquet",
        edit=_secret_in("n_inquiries_6m", (7,)),
        pieces=(f"column 'n_inquiries_6m', row 7: {NOT_A_NUMBER}",),
    ),
    "score-fractions-in-a-whole-number-column": Case(
        "score",
        "batch.parquet",
        edit=lambda f: f.assign(n_inquiries_6m=f["n_inquiries_6m"] + 0.5),
        pieces=("column 'n_inquiries_6m', row 1: not a whole number", "fix or blank"),
    ),
    "score-gaps-in-a-whole-number-column": Case(
        "score",
        "batch.parquet",
        edit=lambda f: f.assign(n_inquiries_6m=f["n_inquiries_6m"].where(f.index != 3)),
        pieces=("column 'n_inquiries_6m' has 1 missing values", "fill them in"),
    ),
    "score-infinite-values": Case(
        "score",
        "batch.parquet",
        edit=lambda f: f.assign(
            debt_to_income=f["debt_to_income"].where(f.index % 50 != 0, np.inf)
        ),
        pieces=("column 'debt_to_income' has 6 infinite values", "replace ±inf with a number"),
    ),
    "score-header-only": Case(
        "score",
        "batch.parquet",
        edit=lambda f: f.iloc[:0],
        pieces=("the file has no rows to score", "pass a file with data rows"),
    ),
    "score-header-only-csv": Case(
        "score",
        "batch.csv",
        edit=lambda f: f.iloc[:0],
        pieces=("the file has no rows to score", "pass a file with data rows"),
    ),
    "score-empty-file": Case(
        "score",
        "batch.csv",
        raw=b"",
        pieces=("the file is empty", "it needs a header row and data rows"),
    ),
    "score-no-such-file": Case(
        "score",
        "batch.parquet",
        absent=True,
        pieces=("no such file", "check the path given to --input"),
    ),
    "score-not-a-table": Case("score", "batch.txt", pieces=("use a .csv or .parquet file name",)),
    "drift-missing-column": Case(
        "drift",
        "batch.parquet",
        edit=lambda f: f.drop(columns=["bureau_score"]),
        pieces=("column 'bureau_score' is missing from the batch", "add it to the file"),
        subprocess=True,
    ),
    "drift-text-in-a-numeric-column": Case(
        "drift",
        "batch.parquet",
        edit=_text_in("annual_income"),
        pieces=(f"column 'annual_income', row 1: {NOT_A_NUMBER}",),
    ),
    "drift-text-in-a-numeric-column-csv": Case(
        "drift",
        "batch.csv",
        edit=_text_in("debt_to_income"),
        pieces=(f"column 'debt_to_income', row 1: {NOT_A_NUMBER}",),
    ),
    "drift-a-name-in-a-numeric-column-csv": Case(
        "drift",
        "batch.csv",
        edit=_secret_in("annual_income", (58, 200)),
        pieces=(f"column 'annual_income', row 58: {NOT_A_NUMBER}",),
        subprocess=True,
    ),
    "drift-a-name-in-a-numeric-column-parquet": Case(
        "drift",
        "batch.parquet",
        edit=_secret_in("bureau_score", (58, 200)),
        pieces=(f"column 'bureau_score', row 58: {NOT_A_NUMBER}",),
        extra=("--json", "drift.json"),
    ),
    "drift-no-such-file": Case(
        "drift", "batch.csv", absent=True, pieces=("no such file", "check the path given to --data")
    ),
    "drift-header-only": Case(
        "drift",
        "batch.csv",
        edit=lambda f: f.iloc[:0],
        pieces=("the batch has no rows", "pass a file with data rows"),
    ),
    "drift-empty-file": Case(
        "drift",
        "batch.csv",
        raw=b"",
        pieces=("the file is empty", "it needs a header row and data rows"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_batch(name: str, trained: Trained, tmp_path: Path) -> None:
    case = CASES[name]
    batch = write_batch(trained, tmp_path, case.name, case.edit)
    if case.raw is not None:
        batch.write_bytes(case.raw)
    if case.absent:
        batch.unlink()
    output = tmp_path / "scores.parquet"
    run = creditgov if case.subprocess else creditgov_in_process
    args = (
        ("score", "--model", MODEL, "--input", str(batch), "--output", str(output))
        if case.command == "score"
        else ("drift", "--model", MODEL, "--data", str(batch))
    )

    result = run(*args, *case.extra, cwd=tmp_path, tracking_uri=trained.uri)

    assert_bad_input(result, names=batch, pieces=case.pieces, db=trained.db, before=trained.store)
    left = [] if case.absent else [batch.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == left  # no output, no partial
    assert not leaks(result.stdout + result.stderr)


def test_an_unknown_model_is_bad_input(trained: Trained, tmp_path: Path) -> None:
    batch = write_batch(trained, tmp_path, "batch.parquet")
    for args in (
        ("score", "--model", "models:/nope/1", "--input", str(batch), "--output", "out.csv"),
        ("drift", "--model", "models:/credit-pd/7", "--data", str(batch)),
    ):
        result = cli(trained, *args, cwd=tmp_path)
        assert_bad_input(
            result,
            names=args[2],
            pieces=("no such model version", "`creditgov models list` shows what is registered"),
            db=trained.db,
            before=trained.store,
        )


# ----------------------------------------------------------------------------- soft cases


def test_unseen_levels_are_scored_as_missing_with_one_warning(
    trained: Trained, tmp_path: Path
) -> None:
    def region(value: str | None) -> Edit:
        return lambda f: f.assign(region=f["region"].astype(object).where(f.index >= 120, value))

    unseen = write_batch(trained, tmp_path, "unseen.csv", region("Atlantis"))
    blank = write_batch(trained, tmp_path, "blank.csv", region(None))
    known = write_batch(trained, tmp_path, "known.csv")

    results = {
        name: cli(
            trained,
            "score",
            "--model",
            MODEL,
            "--input",
            str(path),
            "--output",
            f"{name}.out.parquet",
            cwd=tmp_path,
        )
        for name, path in (("unseen", unseen), ("blank", blank), ("known", known))
    }

    for result in results.values():
        assert result.returncode == 0, result.stderr
    assert error_lines(results["unseen"].stderr) == [
        f"warning: {unseen}: column 'region': 120 rows hold a level the model never saw in "
        f"training and were scored as missing; `creditgov drift` reports the new levels"
    ]
    assert error_lines(results["blank"].stderr) == []  # missing is not unseen
    assert error_lines(results["known"].stderr) == []
    scores = {name: pd.read_parquet(tmp_path / f"{name}.out.parquet") for name in results}
    assert scores["unseen"][ID].tolist() == trained.batch[ID].tolist()
    np.testing.assert_array_equal(scores["unseen"]["probability"], scores["blank"]["probability"])
    # The region matters to the model, so "scored as missing" is not "scored as before".
    assert (scores["unseen"]["probability"] != scores["known"]["probability"]).any()
    assert tracked(trained.db) == trained.store


def test_an_empty_column_training_saw_missing_is_scored(trained: Trained, tmp_path: Path) -> None:
    blank = write_batch(
        trained, tmp_path, "clean.parquet", lambda f: f.assign(months_since_last_delinquency=np.nan)
    )
    result = cli(trained, "score", "--model", MODEL, "--input", str(blank),
                 "--output", "scores.parquet", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert error_lines(result.stderr) == []
    assert len(pd.read_parquet(tmp_path / "scores.parquet")) == 300


def test_drift_counts_unseen_levels_and_reports_an_empty_column(
    trained: Trained, tmp_path: Path
) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        region = frame["region"].astype(object)
        region[:120] = "Atlantis"
        return frame.assign(region=region, bureau_score=np.nan)

    batch = write_batch(trained, tmp_path, "batch.parquet", edit)

    args = ("drift", "--model", MODEL, "--data", str(batch))
    calm = cli(trained, *args, "--json", "drift.json", cwd=tmp_path)
    strict = cli(trained, *args, "--fail-on-drift", cwd=tmp_path)

    assert calm.returncode == 0, calm.stderr
    assert error_lines(calm.stderr) == []
    assert strict.returncode == 4, strict.stderr
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["new_levels"] == {"region": 1}  # region is not declared categorical
    assert report["missing"]["bureau_score"][1] == 1.0
    assert report["missing"]["bureau_score"][0] < 0.5
    assert {"bureau_score", "region"} <= set(report["drifted"])
    assert report["n_rows"] == 300
    assert tracked(trained.db) == trained.store


def test_names_typed_into_a_text_column_are_counted_never_copied(
    trained: Trained, tmp_path: Path
) -> None:
    """A free-text column the model takes as categorical: its new "levels" are what people
    typed. `drift` counts them in --json, in the report and on screen; `score` warns with a
    count; none of them prints or writes a single typed value."""
    typed = (SECRET, OTHER, SECRET)

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        region = frame["region"].astype(object)
        region[[4, 57, 199]] = typed
        return frame.assign(region=region)

    batch = write_batch(trained, tmp_path, "batch.csv", edit)
    drift = cli(
        trained, "drift", "--model", MODEL, "--data", str(batch),
        "--json", "drift.json", "--report", "report", cwd=tmp_path,
    )  # fmt: skip
    scored = cli(
        trained, "score", "--model", MODEL, "--input", str(batch),
        "--output", "scores.csv", cwd=tmp_path,
    )  # fmt: skip

    assert drift.returncode == 0, drift.stderr
    assert scored.returncode == 0, scored.stderr
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["new_levels"] == {"region": 2}  # two distinct typed texts
    assert error_lines(scored.stderr) == [
        f"warning: {batch}: column 'region': 3 rows hold a level the model never saw in "
        f"training and were scored as missing; `creditgov drift` reports the new levels"
    ]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != batch]
    assert {p.name for p in written} >= {"drift.json", "drift.html", "scores.csv"}
    for text in (drift.stdout, drift.stderr, scored.stdout, scored.stderr):
        assert not leaks(text), text
    for path in written:
        assert not leaks(path.read_text(encoding="utf-8", errors="replace")), path
    assert tracked(trained.db) == trained.store

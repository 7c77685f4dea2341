"""`purge_run` against a real SQLite MLflow store, on a run written by hand (no training).

The run leaks a phone number in the ways a model's files do — LightGBM's `feature_infos`
range, a float in JSON, exponent notation — and in a param, a trial run, a logged
model, a version tag and a registered model's tag. The scan finds each; the purge
deletes the files and the rows, and names what it must leave (the registered model's tags
are its audit chain), by place and count, never by value.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from registry.pii_purge import purge_run
from registry.pii_scan import PiiScan, scan_run

PHONE = "+44 7193 108997"
NATIONAL = "7193108997"  # what an integer column of national numbers holds


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[MlflowClient, str, PiiScan, Path]]:
    """A leaking run with one trial, a logged model and a version; scanned."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)  # as the job's use_tracking does: the scan reads through it
    mlflow.set_registry_uri(uri)
    try:
        yield _leaky_run(tmp_path, uri)
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])


def _leaky_run(tmp_path: Path, uri: str) -> tuple[MlflowClient, str, PiiScan, Path]:
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.create_experiment("leaky", artifact_location=(tmp_path / "a").as_uri())
    source = tmp_path / "table.parquet"
    pd.DataFrame({"phone": [PHONE, "+44 7000 421457"], "y": [0, 1]}).to_parquet(source)

    files = tmp_path / "files"
    files.mkdir()
    (files / "model.txt").write_text(f"feature_infos=[{NATIONAL}:7999965668] [0:5]\n")
    (files / "reference.json").write_text(json.dumps({"quantiles": [float(NATIONAL), 1.5]}))
    (files / "notes.txt").write_text("exported 7.193108997e+09 rows\n")

    parent = client.create_run(experiment, run_name="train-lightgbm").info.run_id
    client.log_param(parent, "note", f"call {NATIONAL}")
    client.log_artifacts(parent, str(files))
    trial = client.create_run(
        experiment, run_name="trial-000", tags={"mlflow.parentRunId": parent}
    ).info.run_id
    client.log_param(trial, "num_leaves", "31")
    client.log_artifact(trial, str(files / "notes.txt"))
    client.set_terminated(trial)

    model = client.create_logged_model(experiment, name="model", source_run_id=parent)
    client.log_model_artifacts(model.model_id, str(files))
    client.create_registered_model("credit-pd", tags={"note": f"owner {NATIONAL}"})
    version = client.create_model_version(
        "credit-pd",
        f"models:/{model.model_id}",
        run_id=parent,
        tags={"contact": NATIONAL, "trainer": "alice"},
        model_id=model.model_id,
    ).version
    scan = scan_run(
        client,
        parent,
        source=source,
        pii=["phone"],
        model_name="credit-pd",
        version=str(version),
        categorical=[],
    )
    client.set_terminated(parent, "FAILED")
    return client, uri, scan, tmp_path


def _rows(db: Path) -> list[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            f"{table} {row}" for table in tables for row in con.execute(f'SELECT * FROM "{table}"')
        ]


def test_the_scan_finds_the_national_number_in_every_spelling(store) -> None:  # type: ignore[no-untyped-def]
    _, _, scan, _ = store
    places = {hit.place for hit in scan.hits}
    assert {
        "run param 'note'",
        "run artifact model.txt",
        "run artifact reference.json",
        "run artifact notes.txt",
        "trial run trial-000 artifact notes.txt",
        "logged model 'model' file model.txt",
        "model version credit-pd/1 tag 'contact'",
        "registered model tag 'note'",
    } <= places, places
    assert {hit.column for hit in scan.hits} == {"phone"}
    assert len(scan.run_ids) == 2 and len(scan.model_ids) == 1


def test_the_purge_removes_files_runs_and_version_tags_and_names_what_it_left(store) -> None:  # type: ignore[no-untyped-def]
    client, _, scan, folder = store
    purge = purge_run(client, scan)

    assert purge.hard
    assert (purge.runs, purge.logged_models, purge.version_tags) == (2, 1, 1)
    assert purge.files == 3 + 1 + 3  # the run's, the trial's and the model's
    assert purge.params == 2
    assert purge.left == ("registered model tag 'note'",)  # the model's own, not the run's
    line = purge.describe()
    assert line.startswith(
        "purged 7 artifact files, 1 logged model, 1 version tag and 2 runs with their 2 params"
    ), line
    assert "not purged: registered model tag 'note'" in line and NATIONAL not in line

    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], run_view_type=ViewType.ALL
    )
    assert runs == []
    assert not [p for p in (folder / "a").rglob("*") if p.is_file()]
    assert set(client.get_model_version("credit-pd", "1").tags) == {"trainer"}
    leftover = [row for row in _rows(folder / "mlflow.db") if NATIONAL in row]
    assert len(leftover) == 1 and leftover[0].startswith("registered_model_tags "), leftover
    assert (folder / "mlflow.db").read_bytes().count(NATIONAL.encode()) == 1  # vacuumed


def test_a_store_that_cannot_delete_rows_gets_the_runs_marked_and_the_gc_command(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """A tracking server offers no hard delete: the files still go, the runs are marked
    deleted, and the line says which `mlflow gc` removes their params."""
    from registry import pii_purge as pii_scan

    client, _, scan, folder = store
    monkeypatch.setattr(pii_scan, "_tracking_store", lambda client: object())
    purge = purge_run(client, scan)

    assert not purge.hard and purge.runs == 2
    line = purge.describe()
    assert (
        f"marked 2 runs deleted (their 2 params and {purge.tags} tags stay until "
        f"`mlflow gc --run-ids {','.join(scan.run_ids)}` runs against the tracking database)"
    ) in line, line
    stages = {client.get_run(r).info.lifecycle_stage for r in scan.run_ids}
    assert stages == {"deleted"}
    assert not [p for p in (folder / "a").rglob("*") if p.is_file()]

"""A tampered state.json fails the served model's loading with one line naming the key.

The served model (`registry/scoring_model.py`) applies its state as it is, wherever it is
deployed; `check_state` refuses what creditgov could not have written. Real states come
from the project's own fit path (`creditgov.stages.fit_final`) with each shipped config's
model, calibration and decision rule, on 1,500 synthetic applications, plus the reasons
section the job adds (`creditgov.stages.register_model`). A crafted mutation of one of
them must fail `check_state`, and a model folder whose state.json was edited must fail
`mlflow.pyfunc.load_model`.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pytest

from creditgov import stages
from creditgov.config import load_config
from datasets import make_credit
from evaluation.reasons import build_catalogue
from registry.register import MODEL_FILE, scoring_requirements, signature_for
from registry.scoring_model import LABELS, MAX_REASONS, check_state
from tests.training.helpers import credit_splits
from training.models.policy import decision_labels

REPO = Path(__file__).resolve().parents[2]
#: The folder's signature is explicit; no input example is needed to load it.
pytestmark = pytest.mark.filterwarnings("ignore:.*input example was not provided:UserWarning")
#: (config, overrides, rows): every shipped config, the logistic kind and sigmoid calibration
#: that no shipped config uses, and isotonic on enough rows that valid holds over 1,000 bads.
CASES = {
    "credit_scoring": ("credit_scoring.yaml", [], 1500),
    "credit_scorecard": ("credit_scorecard.yaml", [], 1500),
    "fraud_detection": ("fraud_detection.yaml", [], 1500),
    "logistic_sigmoid": (
        "credit_scoring.yaml",
        ["model.type=logistic", "model.calibration=sigmoid"],
        1500,
    ),
    "lightgbm_isotonic": (
        "credit_scoring.yaml",
        ["model.calibration=isotonic", "model.params.num_boost_round=20"],
        70_000,
    ),
}
State = dict[str, Any]
Files = dict[str, tuple[str, str]]


def _real_state(config_name: str, overrides: list[str], rows: int) -> tuple[State, Files]:
    """The state the job would log for the config: fit on `rows` rows, no tuning."""
    config = load_config(REPO / "configs" / config_name, ["tuning.n_trials=0", *overrides])
    splits = credit_splits(rows, seed=1)  # make_credit(rows, seed=1) through load_dataset
    spec = stages.fit_final(config, stages.model_inputs(config, splits), {}).spec
    sample = splits.test.features.head(200)
    catalogue = build_catalogue(
        sample,
        spec.contributions(sample),
        k=config.evaluation.reason_codes,
        categorical={f.name: f.levels for f in spec.features if f.kind == "categorical"},
        custom=stages.explain_settings(config).reason_texts,
        monotone=config.model.monotone,
    )
    state = {**spec.state(), "reasons": catalogue.to_state()}
    # Through JSON, as the served model reads it.
    return json.loads(json.dumps(state)), spec.files()


@pytest.fixture(scope="module")
def states() -> dict[str, tuple[State, Files]]:
    return {name: _real_state(*case) for name, case in CASES.items()}


@pytest.fixture(scope="module")
def model_folder(
    states: dict[str, tuple[State, Files]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The credit LightGBM model saved as `registry.register.log_scoring_model` logs it."""
    state, files = states["credit_scoring"]
    source = tmp_path_factory.mktemp("source")
    (source / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True), "utf-8")
    artifacts = {"state": str(source / "state.json")}
    for key, (file_name, text) in files.items():
        (source / file_name).write_text(text, encoding="utf-8")
        artifacts[key] = str(source / file_name)
    folder = tmp_path_factory.mktemp("saved") / "model"
    mlflow.pyfunc.save_model(
        str(folder),
        python_model=str(MODEL_FILE),
        artifacts=artifacts,
        signature=signature_for(state["features"], state["reasons"]["k"]),
        pip_requirements=scoring_requirements(),
    )
    return folder


@pytest.mark.parametrize("name", list(CASES))
def test_every_real_state_passes(states: dict[str, tuple[State, Files]], name: str) -> None:
    check_state(states[name][0])


def test_the_real_states_cover_every_form_calibration_and_chosen_rule(
    states: dict[str, tuple[State, Files]],
) -> None:
    seen = [
        (s["model"]["form"], s["calibration"]["method"], s["decision"]["rule"])
        for s, _ in states.values()
    ]
    assert {form for form, _, _ in seen} == {"booster", "additive"}
    assert {method for _, method, _ in seen} == {"none", "isotonic", "sigmoid"}
    assert {rule for _, _, rule in seen} >= {"approval_rate", "cost"}


def test_the_served_labels_are_the_trainers() -> None:
    for task in ("credit_scoring", "fraud_detection"):
        below, above = decision_labels(task)
        assert LABELS[below] == above
    assert len(LABELS) == 2


def _first_bins(state: State) -> dict[str, Any]:
    return next(t for t in state["model"]["terms"] if t["kind"] == "bins")


def _first_entry(s: State, kind: str) -> dict[str, Any]:
    return next(e for e in s["reasons"]["catalogue"].values() if e["kind"] == kind)


def _first_categorical(state: State) -> dict[str, Any]:
    return next(f for f in state["features"] if f["kind"] == "categorical")


def _put(target: dict[str, Any], **values: Any) -> None:
    target.update(values)


Mutation = Callable[[State], None]
#: (id, real state, mutation, the JSON path the message must name)
# fmt: off
MUTATIONS: list[tuple[str, str, Mutation, str]] = [
    ("threshold 0", "credit_scoring", lambda s: _put(s["decision"], threshold=0), "decision.threshold"),
    ("threshold 1.5", "credit_scoring", lambda s: _put(s["decision"], threshold=1.5), "decision.threshold"),
    ("threshold NaN", "fraud_detection", lambda s: _put(s["decision"], threshold=math.nan), "decision.threshold"),
    ("threshold as text", "credit_scoring", lambda s: _put(s["decision"], threshold="0.5"), "decision.threshold"),
    ("threshold a huge int", "credit_scoring", lambda s: _put(s["decision"], threshold=10**400), "decision.threshold"),
    ("threshold a long text", "credit_scoring", lambda s: _put(s["decision"], threshold="9" * 50_000), "decision.threshold"),
    ("k = 10**12", "credit_scoring", lambda s: _put(s["reasons"], k=10**12), "reasons.k"),
    ("k negative", "credit_scorecard", lambda s: _put(s["reasons"], k=-1), "reasons.k"),
    ("k a bool", "credit_scoring", lambda s: _put(s["reasons"], k=True), "reasons.k"),
    ("k a float", "credit_scoring", lambda s: _put(s["reasons"], k=2.5), "reasons.k"),
    ("unknown rule", "credit_scoring", lambda s: _put(s["decision"], rule="everyone"), "decision.rule"),
    ("k above the max", "credit_scoring", lambda s: _put(s["reasons"], k=MAX_REASONS + 1), "reasons.k"),
    ("catalogue not a map", "credit_scoring", lambda s: _put(s["reasons"], catalogue=["a"]), "reasons.catalogue"),
    ("entry of an unknown feature", "logistic_sigmoid", lambda s: s["reasons"]["catalogue"].update(x={"kind": "numeric"}), "reasons.catalogue entry.kind"),
    ("entry of the wrong kind", "credit_scoring", lambda s: _put(_first_entry(s, "numeric"), kind="categorical"), "reasons.catalogue entry.kind"),
    ("entry without a code", "credit_scorecard", lambda s: _put(_first_entry(s, "numeric"), code=""), "reasons.catalogue entry.code"),
    ("high text a number", "credit_scoring", lambda s: _put(_first_entry(s, "numeric"), high=3), "reasons.catalogue entry.high"),
    ("categorical text missing", "credit_scoring", lambda s: _first_entry(s, "categorical").pop("text"), "reasons.catalogue entry.text"),
    ("fixed side 2", "credit_scoring", lambda s: _put(_first_entry(s, "numeric"), fixed=2), "reasons.catalogue entry.fixed"),
    ("interval lower above upper", "fraud_detection", lambda s: _put(_first_entry(s, "numeric"), lower=2.0, upper=1.0), "reasons.catalogue entry.upper"),
    ("interval end NaN", "credit_scoring", lambda s: _put(_first_entry(s, "numeric"), lower=math.nan), "reasons.catalogue entry.lower"),
    ("labels swapped", "credit_scoring", lambda s: _put(s["decision"], below="decline", at_or_above="approve"), "decision.below"),
    ("labels equal", "credit_scoring", lambda s: _put(s["decision"], at_or_above="approve"), "decision.at_or_above"),
    ("labels of two tasks", "fraud_detection", lambda s: _put(s["decision"], at_or_above="decline"), "decision.at_or_above"),
    ("empty label", "credit_scorecard", lambda s: _put(s["decision"], below=""), "decision.below"),
    ("no features", "credit_scoring", lambda s: _put(s, features=[]), "features"),
    ("features a map", "credit_scoring", lambda s: _put(s, features={"a": 1}), "features"),
    ("label a list", "credit_scoring", lambda s: _put(s["decision"], below=["approve"]), "decision.below"),
    ("duplicate feature names", "credit_scoring", lambda s: _put(s["features"][1], name=s["features"][0]["name"]), "features[1].name"),
    ("feature without a name", "credit_scorecard", lambda s: s["features"][2].pop("name"), "features[2].name"),
    ("unknown feature kind", "credit_scoring", lambda s: _put(s["features"][0], kind="image"), "features[0].kind"),
    ("unknown dtype", "credit_scoring", lambda s: _put(s["features"][0], dtype="int128"), "features[0].dtype"),
    ("duplicate levels", "credit_scoring", lambda s: _put(_first_categorical(s), levels=["a", "a"]), ".levels"),
    ("a level not text", "credit_scoring", lambda s: _put(_first_categorical(s), levels=[1]), ".levels"),
    ("additive with no terms", "credit_scorecard", lambda s: _put(s["model"], terms=[]), "model.terms"),
    ("two terms of one feature", "credit_scorecard", lambda s: s["model"]["terms"].append(s["model"]["terms"][0]), "model.terms["),
    ("term of no feature", "logistic_sigmoid", lambda s: _put(s["model"]["terms"][0], name="nobody"), "model.terms[0].name"),
    ("unknown term kind", "credit_scorecard", lambda s: _put(s["model"]["terms"][0], kind="spline"), "model.terms[0].kind"),
    ("NaN coefficient", "credit_scorecard", lambda s: _put(s["model"]["terms"][1], coefficient=math.nan), "model.terms[1].coefficient"),
    ("empty table", "credit_scorecard", lambda s: _put(_first_bins(s), table=[]), ".table"),
    ("table longer than the edges allow", "credit_scorecard", lambda s: _first_bins(s)["table"].append(0.0), "model.terms[0]."),
    ("linear low above high", "logistic_sigmoid", lambda s: _put(s["model"]["terms"][0], low=1.0, high=0.0), "model.terms[0].high"),
    ("infinite intercept", "logistic_sigmoid", lambda s: _put(s["model"], intercept=math.inf), "model.intercept"),
    ("unknown form", "credit_scoring", lambda s: _put(s["model"], form="neural"), "model.form"),
    ("booster file unnamed", "credit_scoring", lambda s: s["model"]["files"].pop("booster"), "model.files.booster"),
    ("NaN pdo", "credit_scoring", lambda s: _put(s["score"], pdo=math.nan), "score.pdo"),
    ("infinite base score", "credit_scorecard", lambda s: _put(s["score"], base_score=-math.inf), "score.base_score"),
    ("zero base odds", "credit_scoring", lambda s: _put(s["score"], base_odds=0), "score.base_odds"),
    ("score a list", "credit_scoring", lambda s: _put(s, score=[600, 50, 20]), "score"),
    ("unknown calibration", "credit_scoring", lambda s: _put(s["calibration"], method="magic"), "calibration.method"),
    ("isotonic y above 1", "lightgbm_isotonic", lambda s: s["calibration"]["y"].__setitem__(-1, 1.5), "calibration.y["),
    ("isotonic x unsorted", "lightgbm_isotonic", lambda s: s["calibration"]["x"].reverse(), "calibration.x"),
    ("isotonic lengths differ", "lightgbm_isotonic", lambda s: s["calibration"]["y"].pop(), "calibration.y"),
    ("sigmoid NaN slope", "logistic_sigmoid", lambda s: _put(s["calibration"], slope=math.nan), "calibration.slope"),
    ("points scale zero", "credit_scorecard", lambda s: _put(s["model"], scale=0.0), "model.scale"),
    ("unknown score basis", "credit_scorecard", lambda s: _put(s["model"], score_basis="cooked"), "model.score_basis"),
    ("other format", "credit_scoring", lambda s: _put(s, format="creditgov-scoring/1"), "format"),
]
# fmt: on


@pytest.mark.parametrize(
    ("base", "mutate", "path"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_a_crafted_state_fails_with_one_line_naming_the_key(
    states: dict[str, tuple[State, Files]], base: str, mutate: Mutation, path: str
) -> None:
    state = copy.deepcopy(states[base][0])
    mutate(state)
    with pytest.raises(ValueError) as caught:
        check_state(state)
    message = str(caught.value)
    assert message.startswith("state.json: ") and path in message, message
    assert "\n" not in message and len(message) < 200, message
    assert message.endswith("retrain"), message


def test_a_state_that_is_not_an_object_fails() -> None:
    with pytest.raises(ValueError, match=r"^state\.json: the top level must be an object"):
        check_state(["not", "a", "state"])


def _copy_with(folder: Path, tmp_path: Path, mutate: Mutation | None) -> Path:
    copied = tmp_path / "model"
    shutil.copytree(folder, copied)
    state_file = copied / "artifacts" / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    if mutate is not None:
        mutate(state)
    state_file.write_text(json.dumps(state, indent=1), encoding="utf-8")
    return copied


def test_the_unedited_folder_loads_and_predicts(model_folder: Path, tmp_path: Path) -> None:
    model = mlflow.pyfunc.load_model(str(_copy_with(model_folder, tmp_path, None)))
    rows = make_credit(1500, seed=1).frame.drop(columns=["default_12m"]).tail(20)
    scored = model.predict(rows)  # as the file holds them: whole numbers stay integers
    assert len(scored) == 20 and set(scored["decision"]) <= {"approve", "decline"}


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda s: _put(s["decision"], threshold=0), "decision.threshold"),
        (lambda s: _put(s["decision"], below="decline", at_or_above="approve"), "decision.below"),
        (lambda s: _put(s["reasons"], k=10**12), "reasons.k"),
        (
            lambda s: _put(s["model"], files={"booster": "model.txt", "extra": "x.txt"}),
            "model.files",
        ),
    ],
    ids=["threshold 0", "labels swapped", "k = 10**12", "a file the folder lacks"],
)
def test_loading_a_folder_whose_state_was_edited_fails(
    model_folder: Path, tmp_path: Path, mutate: Mutation, path: str
) -> None:
    copied = _copy_with(model_folder, tmp_path, mutate)
    with pytest.raises(ValueError) as caught:
        mlflow.pyfunc.load_model(str(copied))
    message = str(caught.value)
    assert message.startswith(f"state.json: {path} must be") and "\n" not in message, message

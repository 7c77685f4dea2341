"""The bad-config catalogue: one case per way a job file can be wrong, through `creditgov train`.

Each case writes a job with the `credit_job` fixture, breaks its YAML (or passes a bad
`--set`), runs the CLI and checks the whole bad-input contract with `assert_bad_input`:
exit 2, one stderr line naming the config file and the dotted key with what to do, and
no run or model in the tracking store. Most run `creditgov.cli.main` in this process;
the cases marked `subprocess` run `python -m creditgov`, as a scheduler would.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from creditgov.config import ConfigError, load_config
from creditgov.job import prepare
from tests.conftest import DELETE, CreditJob
from tests.support import assert_bad_input, creditgov, creditgov_in_process

TARGET = "default_12m"


@dataclass(frozen=True)
class Case:
    """A broken job file and the pieces its one error line must hold."""

    pieces: tuple[str, ...]
    updates: Mapping[str, Any] = field(default_factory=dict)
    text: str | None = None  # replaces the YAML file's text
    overrides: tuple[str, ...] = ()
    subprocess: bool = False


SPACE = "tuning.search_space"
CASES: dict[str, Case] = {
    "malformed-yaml": Case(
        text="name: job\ndata:\n  source: [data/credit.parquet\n  target: y\n",
        pieces=("job.yaml:4:9: malformed YAML", "fix the syntax at that line and column"),
    ),
    "yaml-python-tag": Case(
        text='name: !!python/object/apply:os.system ["touch ran"]\n',
        pieces=("job.yaml:1:7: YAML tag", "python/object/apply:os.system", "safe loading only"),
        subprocess=True,
    ),
    "not-utf8": Case(
        text="name: caf\udce9\n",  # written with surrogateescape: a lone Latin-1 byte
        pieces=("not UTF-8 text", "save the config as UTF-8"),
    ),
    "not-a-mapping": Case(
        text="- name\n- data\n", pieces=("the top level must be a mapping of keys",)
    ),
    "unknown-key-did-you-mean": Case(
        updates={"split": {"test_fracton": 0.2}},
        pieces=("unknown key split.test_fracton", "(did you mean 'test_fraction'?)"),
    ),
    "unknown-key-in-a-list": Case(
        updates={"gates": [{"metric": "auc", "min": 0.7, "spilt": "test"}]},
        pieces=("unknown key gates.0.spilt", "(did you mean 'split'?)"),
    ),
    "unknown-key-no-close-match": Case(
        updates={"split": {"zzz": 1}},
        pieces=("unknown key split.zzz", "allowed: method, test_fraction, valid_fraction"),
    ),
    "missing-required-key": Case(
        updates={"registry": {"model_name": DELETE}}, pieces=("registry.model_name is required",)
    ),
    "wrong-type-int": Case(
        updates={"tuning": {"n_trials": "many"}},
        pieces=("tuning.n_trials: Input should be a valid integer", "(got 'many')"),
    ),
    "wrong-type-list": Case(
        updates={"data": {"protected": "sex"}},
        pieces=("data.protected: Input should be a valid list",),
    ),
    "wrong-choice": Case(
        updates={"split": {"method": "out-of-time"}},
        pieces=("split.method: Input should be 'random', 'out_of_time' or 'group'",),
    ),
    "out-of-range-fraction": Case(
        updates={"split": {"test_fraction": 1.5}},
        pieces=("split.test_fraction: Input should be less than 1 (got 1.5)",),
    ),
    "data-source-not-a-table": Case(
        updates={"data": {"source": "data/credit.txt"}},
        pieces=("data.source: must end in .csv or .parquet (got 'credit.txt')",),
    ),
    "gate-on-unknown-metric": Case(
        updates={"gates": [{"metric": "acu", "min": 0.7}]},
        pieces=("gates.0.metric: unknown metric 'acu'", "Did you mean 'auc'?", "Valid names:"),
    ),
    "gate-with-two-bounds": Case(
        updates={"gates": [{"metric": "auc", "min": 0.7, "max": 0.9}]},
        pieces=("gates.0: a gate takes exactly one of 'min' or 'max'",),
    ),
    "untunable-metric": Case(
        updates={"tuning": {"metric": "approval_rate"}},
        pieces=("tuning.metric: 'approval_rate' cannot be tuned on; choose one of",),
    ),
    "out-of-time-without-time-column": Case(
        updates={"data": {"time_column": DELETE}},
        pieces=("split.method out_of_time needs data.time_column", "or use split.method random"),
    ),
    "out-of-time-without-start": Case(
        updates={"split": {"oot_start": DELETE}},
        pieces=("split: method out_of_time needs split.oot_start", "e.g. 2024-07-01"),
    ),
    "two-decision-rules": Case(
        updates={"decision": {"threshold": 0.3}},  # the base config sets approval_rate
        pieces=("decision: set exactly one decision rule, got 2: threshold, approval_rate",),
    ),
    "half-a-cost-rule": Case(
        updates={"decision": {"approval_rate": DELETE, "cost_false_negative": 5}},
        pieces=("decision: cost_false_negative and cost_false_positive go together",),
    ),
    "search-low-above-high": Case(
        updates={"tuning": {"search_space": {"num_leaves": {"type": "int", "low": 64, "high": 8}}}},
        pieces=(f"{SPACE}.num_leaves: low (64) is greater than high (8); swap them",),
    ),
    "search-log-from-zero": Case(
        updates={
            "tuning": {
                "search_space": {"lambda_l2": {"type": "float", "low": 0, "high": 1, "log": True}}
            }
        },
        pieces=(f"{SPACE}.lambda_l2: log: true needs low > 0 (got 0)",),
    ),
    "search-categorical-without-choices": Case(
        updates={"tuning": {"search_space": {"boosting": {"type": "categorical"}}}},
        pieces=(f"{SPACE}.boosting: a categorical search parameter needs a non-empty 'choices'",),
    ),
    "impossible-date": Case(
        updates={"split": {"oot_start": "PLACEHOLDER"}},
        pieces=("malformed YAML: 2024-02-30 is not a valid date (day is out of range for month)",),
    ),
    "gate-bound-not-a-number": Case(
        updates={"gates": [{"metric": "auc", "min": float("nan")}]},
        pieces=("gates.0.min: Input should be a finite number (got nan)",),
    ),
    "search-bound-infinite": Case(
        updates={
            "tuning": {
                "search_space": {"num_leaves": {"type": "int", "low": 8, "high": float("inf")}}
            }
        },
        pieces=(f"{SPACE}.num_leaves.high: Input should be a finite number (got inf)",),
    ),
    "lightgbm-refuses-a-param": Case(
        updates={"model": {"params": {"max_bin": 1}}},
        pieces=(
            "model.params: LightGBM refuses them (Check failed: (max_bin) > (1))",
            "fix or remove it",
        ),
        subprocess=True,  # LightGBM's C++ core writes to stderr itself: a real process
    ),
    "lightgbm-refuses-a-search-range-end": Case(
        updates={"tuning": {"n_trials": 2, "search_space": {"num_leaves": {"low": 1}}}},
        pieces=(
            f"{SPACE}.num_leaves.low: LightGBM refuses that value "
            "(Check failed: (num_leaves) > (1))",
        ),
    ),
    # configs that would reach outside the job (files, sockets, memory)
    "lightgbm-param-reads-a-file": Case(
        updates={"model": {"params": {"forcedsplits_filename": "/etc/passwd"}}},
        pieces=(
            "model.params.forcedsplits_filename: not a LightGBM parameter a job may set",
            "remove it",
        ),
    ),
    "lightgbm-param-loads-a-model": Case(
        updates={"model": {"params": {"input_model": "/etc/hostname"}}},
        pieces=("model.params.input_model: not a LightGBM parameter a job may set",),
    ),
    "lightgbm-param-opens-a-socket": Case(
        updates={"model": {"params": {"machines": "0.0.0.0:12400", "num_machines": 2}}},
        pieces=("model.params.machines: not a LightGBM parameter a job may set",),
        subprocess=True,
    ),
    "lightgbm-param-writes-a-file": Case(
        updates={"model": {"params": {"output_model": "/tmp/x.txt", "save_binary": True}}},
        pieces=("model.params.output_model: not a LightGBM parameter a job may set",),
    ),
    "lightgbm-param-in-the-search-space": Case(
        updates={
            "tuning": {
                "n_trials": 2,
                "search_space": {
                    "machine_list_filename": {"type": "categorical", "choices": ["/etc/hosts"]}
                },
            }
        },
        pieces=(f"{SPACE}.machine_list_filename.choices: not a LightGBM parameter",),
    ),
    "rounds-overflow": Case(
        updates={"model": {"params": {"num_boost_round": float("inf")}}},
        pieces=("model.params.num_boost_round: must be a finite number",),
    ),
    "rounds-too-many": Case(
        updates={"model": {"params": {"num_boost_round": 10**9}}},
        pieces=("model.params.num_boost_round: must be between 1 and 100,000",),
    ),
    "n-trials-absurd": Case(
        updates={"tuning": {"n_trials": 10**9}},
        pieces=("tuning.n_trials: Input should be less than or equal to 100000",),
    ),
    "seed-absurd": Case(
        updates={"seed": 10**30},
        pieces=("seed: Input should be less than or equal to 2147483647",),
    ),
    "yaml-alias-bomb": Case(
        text=(
            "name: job\nmodel:\n  params:\n    a: &a [x, x, x, x, x, x, x, x, x]\n"
            "    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        ),
        pieces=("job.yaml:5:12: YAML aliases (*name) are not allowed in a config",),
    ),
    "protected-listed-as-feature": Case(
        updates={"data": {"features": ["annual_income", "sex"]}},
        pieces=("features lists protected column(s) ['sex']", "remove them from data.features"),
    ),
    "pii-listed-as-feature": Case(
        updates={"data": {"features": ["phone", "annual_income"]}},
        pieces=("features lists pii column(s) ['phone']", "remove them from data.features"),
    ),
    "set-missing-key": Case(
        overrides=("tuning.n_trails=5",),
        pieces=("--set tuning.n_trails: tuning.n_trails is not a config key", "'n_trials'?"),
    ),
    "set-without-value": Case(
        overrides=("tuning.n_trials",), pieces=("--set 'tuning.n_trials': write KEY=VALUE",)
    ),
    "set-list-index-out-of-range": Case(
        overrides=("gates.9.min=0.8",),
        pieces=("--set gates.9.min: gates has 4 item(s)", "use a position from 0 to 3"),
        subprocess=True,
    ),
    "set-list-by-name": Case(
        overrides=("gates.auc.min=0.8",),
        pieces=("--set gates.auc.min: gates is a list", "e.g. --set gates.0.<key>=VALUE"),
    ),
    "set-value-of-the-wrong-type": Case(
        overrides=("gates.0.min=high",),
        pieces=("gates.0.min: Input should be a valid number", "(got 'high')"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config(name: str, credit_job: CreditJob, tmp_path: Path) -> None:
    case = CASES[name]
    config = credit_job(config_updates=case.updates)
    if case.text is not None:
        config.write_bytes(case.text.encode("utf-8", "surrogateescape"))
    else:  # a bare YAML date that is no date (yaml.safe_dump would quote it)
        config.write_text(config.read_text().replace("PLACEHOLDER", "2024-02-30"))
    args = ["train", config.name, *(a for o in case.overrides for a in ("--set", o))]
    run = creditgov if case.subprocess else creditgov_in_process

    result = run(*args, cwd=tmp_path)

    assert_bad_input(result, names=config.name, pieces=case.pieces, db=tmp_path / "mlflow.db")
    assert not (tmp_path / "ran").exists()  # no YAML tag ever ran


def test_the_catalogue_is_at_least_as_big_as_the_issue_asks() -> None:
    assert len(CASES) >= 20


# ----------------------------------------------------------------------------- fixed defects


def test_positive_label_yes_is_the_text_yes_not_true(credit_job: CreditJob, tmp_path: Path) -> None:
    """YAML 1.1 reads `yes` as True, which no "yes"/"no" target holds; configs use YAML 1.2."""
    answers = {1: "yes", 0: "no"}
    path = credit_job(
        lambda f: f.assign(**{TARGET: f[TARGET].map(answers)}),
        {"data": {"positive_label": "PLACEHOLDER"}},
    )
    path.write_text(path.read_text().replace("PLACEHOLDER", "yes"), encoding="utf-8")
    assert "positive_label: yes\n" in path.read_text()

    config = load_config(path)
    assert config.data.positive_label == "yes"
    splits = prepare(config)
    frame = pd.read_parquet(path.parent / "data" / "credit.parquet")
    assert sum(int(p.target.sum()) for p in splits.parts().values()) == int(
        (frame[TARGET] == "yes").sum()
    )
    # Booleans the schema types as bool still read yes/no as the user meant.
    assert (
        load_config(path, ["tuning.search_space.num_leaves.log=no"])
        .tuning.search_space["num_leaves"]
        .log
        is False
    )

    result = creditgov_in_process("validate", path.name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "positive_label: 'yes'" in result.stdout


def test_positive_label_true_still_means_the_boolean(credit_job: CreditJob) -> None:
    path = credit_job(lambda f: f.assign(**{TARGET: f[TARGET].astype(bool)}))
    path.write_text(
        path.read_text().replace("positive_label: 1", "positive_label: true"), encoding="utf-8"
    )
    config = load_config(path)
    assert config.data.positive_label is True
    assert prepare(config).train.target.sum() > 0


def test_positive_label_yes_on_a_numeric_target_names_the_key(
    credit_job: CreditJob, tmp_path: Path
) -> None:
    path = credit_job()
    result = creditgov_in_process(
        "train", path.name, "--set", "data.positive_label=yes", cwd=tmp_path
    )
    assert_bad_input(
        result,
        names=tmp_path / "data" / "credit.parquet",
        pieces=(
            f"data.positive_label 'yes' does not occur in target '{TARGET}' (values: 0, 1)",
            "set data.positive_label",
        ),
        db=tmp_path / "mlflow.db",
    )


def test_set_on_a_list_item_changes_that_item_only(credit_job: CreditJob) -> None:
    path = credit_job()
    before = load_config(path)
    after = load_config(path, ["gates.0.min=0.9", "gates.2.max=0.3"])
    assert [g.metric for g in after.gates] == [g.metric for g in before.gates]
    assert after.gates[0].min == 0.9 and after.gates[2].max == 0.3
    assert after.gates[1] == before.gates[1] and after.gates[3] == before.gates[3]
    # A mapping entry below a list-free path still works as before.
    space = load_config(path, ["tuning.search_space.num_leaves.high=99"]).tuning.search_space
    assert space["num_leaves"].high == 99 and space["num_leaves"].low == 8


PROBE = """
import sys
from creditgov.cli import main
sys.argv = ["creditgov", "train", sys.argv[1]]
try:
    main()
except SystemExit as done:
    print("EXIT", done.code)
print("LOADED:" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_a_config_error_answers_without_loading_the_ml_libraries(tmp_path: Path) -> None:
    """A typo is reported before sklearn, mlflow or optuna load (seconds each on 2 cores)."""
    heavy = ("pandas", "sklearn", "mlflow", "optuna", "lightgbm", "shap")
    (tmp_path / "job.yaml").write_text("name: x\nsplit: {zzz: 1}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), "job.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "EXIT 2" in done.stdout, done.stderr
    assert done.stderr.strip().startswith("error: job.yaml: "), done.stderr
    assert done.stdout.rsplit("LOADED:", 1)[1].strip() == ""


def test_a_search_range_is_not_checked_when_nothing_is_tuned(credit_job: CreditJob) -> None:
    """With tuning off the search space is never sampled, so it cannot be wrong yet."""
    path = credit_job()
    bad_range = "tuning.search_space.num_leaves.low=1"
    assert prepare(load_config(path, ["tuning.n_trials=0", bad_range])).train.n_rows > 0
    with pytest.raises(ConfigError, match=r"num_leaves\.low: LightGBM refuses that value"):
        prepare(load_config(path, ["tuning.n_trials=3", bad_range]))

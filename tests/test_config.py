"""Bad job configs fail at load with one line naming the file, the dotted key and the fix.

Each case goes through `load_config`, the one boundary every command passes, so these
pin what a user sees whichever command they ran.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from creditgov.config import ConfigError, load_config
from tests.conftest import DELETE, CreditJob


def config_error(path: Path, overrides: tuple[str, ...] = ()) -> str:
    """The message of the ConfigError that loading `path` raises; checks it is one line."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}"), message
    return message


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fixture_config_loads(credit_job: CreditJob) -> None:
    config = load_config(credit_job())
    assert config.tuning.n_trials == 0
    assert config.split.method == "out_of_time"


# ----------------------------------------------------------------------------- YAML itself


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write_config(tmp_path, "name: job\ndata:\n  source: [data.csv\n  target: default_12m\n")
    message = config_error(path)
    assert message.startswith(f"{path}:4:9: malformed YAML"), message


def test_yaml_python_tags_are_refused_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_config(
        tmp_path,
        'name: !!python/object/apply:os.system ["echo hi"]\n'
        f'seed: !!python/object/apply:os.system ["touch {marker}"]\n',
    )
    message = config_error(path)
    assert f"{path}:1:7: YAML tag" in message
    assert "python/object/apply:os.system" in message
    assert "safe loading only" in message
    assert not marker.exists()


def test_a_config_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    message = config_error(write_config(tmp_path, "- name\n- data\n"))
    assert "top level must be a mapping" in message


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file") as caught:
        load_config(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(caught.value)


# ----------------------------------------------------------------------------- keys and values


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        ({"tunning": {"n_trials": 3}}, "unknown key tunning (did you mean 'tuning'?)"),
        (
            {"split": {"test_fracton": 0.2}},
            "unknown key split.test_fracton (did you mean 'test_fraction'?)",
        ),
        (
            {"gates": [{"metric": "auc", "min": 0.7, "spilt": "test"}]},
            "unknown key gates.0.spilt (did you mean 'split'?)",
        ),
        ({"split": {"zzz": 1}}, "unknown key split.zzz; allowed: method, test_fraction,"),
    ],
    ids=["top-level", "nested", "inside-a-list", "no-close-match"],
)
def test_unknown_keys_get_a_did_you_mean(
    credit_job: CreditJob, updates: Mapping[str, Any], expected: str
) -> None:
    assert expected in config_error(credit_job(config_updates=updates))


@pytest.mark.parametrize(
    ("updates", "expected"),
    [
        (
            {"tuning": {"n_trials": "many"}},
            "tuning.n_trials: Input should be a valid integer, unable to parse string as an "
            "integer (got 'many')",
        ),
        ({"data": {"protected": "sex"}}, "data.protected: Input should be a valid list"),
        (
            {"split": {"method": "out-of-time"}},
            "split.method: Input should be 'random', 'out_of_time' or 'group' (got 'out-of-time')",
        ),
    ],
    ids=["int", "list", "choice"],
)
def test_wrong_types_name_the_key_and_the_value(
    credit_job: CreditJob, updates: Mapping[str, Any], expected: str
) -> None:
    assert expected in config_error(credit_job(config_updates=updates))


def test_out_of_range_fraction_names_the_bound(credit_job: CreditJob) -> None:
    message = config_error(credit_job(config_updates={"split": {"test_fraction": 1.5}}))
    assert "split.test_fraction: Input should be less than 1 (got 1.5)" in message


def test_a_gate_on_an_unknown_metric_lists_the_valid_names(credit_job: CreditJob) -> None:
    path = credit_job(config_updates={"gates": [{"metric": "acu", "split": "test", "min": 0.7}]})
    message = config_error(path)
    assert "gates.0.metric: unknown metric 'acu'" in message
    assert "Did you mean 'auc'?" in message
    assert "Valid names:" in message
    assert "ks" in message.split("Valid names:")[1]


def test_a_gate_with_no_close_metric_still_lists_the_valid_names(credit_job: CreditJob) -> None:
    path = credit_job(config_updates={"gates": [{"metric": "zzzz", "min": 0.7}]})
    message = config_error(path)
    assert "Did you mean" not in message
    assert "Valid names: " in message and "psi_max" in message


def test_out_of_time_needs_a_time_column(credit_job: CreditJob) -> None:
    message = config_error(credit_job(config_updates={"data": {"time_column": DELETE}}))
    assert ": split.method out_of_time needs data.time_column; name the date column" in message
    assert "(top level)" not in message


def test_out_of_time_needs_a_start_date(credit_job: CreditJob) -> None:
    message = config_error(credit_job(config_updates={"split": {"oot_start": DELETE}}))
    assert "split: method out_of_time needs split.oot_start" in message
    assert "e.g. 2024-07-01" in message


def test_two_decision_rules_at_once_are_refused(credit_job: CreditJob) -> None:
    # The base config sets decision.approval_rate.
    message = config_error(credit_job(config_updates={"decision": {"threshold": 0.3}}))
    assert "decision: set exactly one decision rule, got 2: threshold, approval_rate" in message


def test_half_a_cost_rule_is_refused(credit_job: CreditJob) -> None:
    updates = {"decision": {"approval_rate": DELETE, "cost_false_negative": 5}}
    message = config_error(credit_job(config_updates=updates))
    assert "decision: cost_false_negative and cost_false_positive go together" in message


def test_a_search_range_with_low_above_high_says_swap(credit_job: CreditJob) -> None:
    space = {"num_leaves": {"type": "int", "low": 64, "high": 8}}
    message = config_error(credit_job(config_updates={"tuning": {"search_space": space}}))
    assert "tuning.search_space.num_leaves: low (64) is greater than high (8); swap them" in message


def test_a_protected_column_listed_as_a_feature_is_refused_at_load(credit_job: CreditJob) -> None:
    path = credit_job(config_updates={"data": {"features": ["annual_income", "sex"]}})
    message = config_error(path)
    assert "features lists protected column(s) ['sex']" in message
    assert "remove them from data.features" in message


def test_a_pii_column_listed_as_a_feature_is_refused_at_load(credit_job: CreditJob) -> None:
    path = credit_job(config_updates={"data": {"features": ["phone", "annual_income"]}})
    assert "features lists pii column(s) ['phone']" in config_error(path)


def test_a_txt_data_source_is_refused_at_load(credit_job: CreditJob) -> None:
    message = config_error(credit_job(suffix=".txt"))
    assert "data.source: must end in .csv or .parquet (got 'credit.txt')" in message


@pytest.mark.parametrize(
    ("updates", "key"),
    [
        ({"name": DELETE}, "name"),
        ({"data": {"source": DELETE}}, "data.source"),
        ({"registry": {"model_name": DELETE}}, "registry.model_name"),
    ],
    ids=["name", "data.source", "registry.model_name"],
)
def test_required_keys_are_named_when_missing(
    credit_job: CreditJob, updates: Mapping[str, Any], key: str
) -> None:
    message = config_error(credit_job(config_updates=updates))
    assert message.endswith(f": {key} is required"), message


# ----------------------------------------------------------------------------- --set overrides


def test_set_on_a_missing_key_names_it_with_a_did_you_mean(credit_job: CreditJob) -> None:
    path = credit_job()
    message = config_error(path, ("tuning.n_trails=5",))
    assert "--set tuning.n_trails: tuning.n_trails is not a config key" in message
    assert "(did you mean 'n_trials'?)" in message


def test_set_without_a_value_shows_the_form(credit_job: CreditJob) -> None:
    message = config_error(credit_job(), ("tuning.n_trials",))
    assert "write KEY=VALUE" in message


def test_set_values_are_typed_by_the_schema(credit_job: CreditJob) -> None:
    config = load_config(
        credit_job(),
        ["tuning.n_trials=5", "data.protected=[sex]", "split.oot_start=2024-03-01"],
    )
    assert config.tuning.n_trials == 5
    assert type(config.tuning.n_trials) is int
    assert config.data.protected == ["sex"]
    assert config.split.oot_start == datetime.date(2024, 3, 1)


def test_set_values_are_validated_like_the_file(credit_job: CreditJob) -> None:
    message = config_error(credit_job(), ("tuning.n_trials=abc",))
    assert "tuning.n_trials: Input should be a valid integer" in message


# ----------------------------------------------------------------------------- paths


def test_relative_data_source_resolves_against_the_config_folder(
    credit_job: CreditJob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = credit_job()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("..") / path.name)  # the config from another folder
    assert config.data.source == (tmp_path / "data" / "credit.parquet").resolve()
    assert config.data.source.is_file()


# ----------------------------------------------------------------------------- reason catalogue


def _reasons(credit_job: CreditJob, texts: Mapping[str, Any], monotone: Mapping[str, int]) -> Path:
    return credit_job(
        config_updates={"evaluation": {"reason_texts": texts}, "model": {"monotone": monotone}}
    )


def test_a_catalogue_entry_loads_beside_plain_sentences(credit_job: CreditJob) -> None:
    texts = {
        "debt_to_income": {"code": "R01", "high": "Debt is high relative to income"},
        "home_ownership": {"code": "R07", "text": "Housing: {value}"},
        "n_inquiries_6m": "Many recent credit applications",
    }
    config = load_config(_reasons(credit_job, texts, {"debt_to_income": 1}))
    entry = config.evaluation.reason_texts["debt_to_income"]
    assert not isinstance(entry, str)
    assert (
        entry.plain().items() >= {"code": "R01", "high": "Debt is high relative to income"}.items()
    )
    assert config.evaluation.reason_texts["n_inquiries_6m"] == "Many recent credit applications"


@pytest.mark.parametrize(
    ("texts", "monotone", "expected"),
    [
        ({"bureau_score": {"code": "R02", "high": "Bureau score is high"}}, {"bureau_score": -1},
         "evaluation.reason_texts.bureau_score.high: model.monotone declares 'bureau_score' -1"),
        ({"debt_to_income": "Debt is too low"}, {"debt_to_income": 1},
         "evaluation.reason_texts.debt_to_income: the text says low, but model.monotone declares"),
        ({"annual_income": {"low": "Income is short", "missing": "Income not given"}},
         {"annual_income": 1}, "evaluation.reason_texts.annual_income.low"),
    ],
)  # fmt: skip
def test_a_text_against_the_declared_direction_is_refused_at_load(
    credit_job: CreditJob, texts: Mapping[str, Any], monotone: Mapping[str, int], expected: str
) -> None:
    assert expected in config_error(_reasons(credit_job, texts, monotone))


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"code": "R1"}, "give at least one of high, low, missing"),
        ({"high": "Too high: {feature.__class__}"}, "evaluation.reason_texts.debt_to_income"),
        ({"high": "Amount {value}"}, "only a categorical text may quote the level"),
        ({"text": "a", "high": "b"}, "not both"),
        ({"code": "R 1", "high": "x"}, "evaluation.reason_texts.debt_to_income"),
    ],
)
def test_malformed_catalogue_entries_name_the_key(
    credit_job: CreditJob, entry: Mapping[str, Any], expected: str
) -> None:
    # bill_amount: a name the shipped catalogue does not hold, so nothing is merged in.
    message = config_error(_reasons(credit_job, {"bill_amount": entry}, {}))
    assert expected.replace("debt_to_income", "bill_amount") in message

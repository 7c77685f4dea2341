"""Generated configs, YAML, `--set` overrides and tables around the edges of validation.

The catalogue pins the cases we thought of; these let hypothesis look for the ones we
did not. The invariant is the CLI.md contract in one sentence: validation either passes
or raises the project's bad-input error (`ConfigError` / `DataError`, exit 2 in the
CLI) with a one-line message that starts with the file it is about — never another
exception, which the CLI would report as "unexpected" with exit 1. Where validation
passes, what it promised holds (fractions inside (0, 1), low <= high, one bound per gate).
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from creditgov.config import ConfigError, JobConfig, load_config, validate_config
from evaluation.metrics import METRICS
from tests.conftest import CREDIT_CONFIG
from training.data import load_dataset, numeric_batch
from training.reading import DataError
from training.split import split_dataset

FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BASE: dict[str, Any] = yaml.safe_load(CREDIT_CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="creditgov-properties-") as name:
        yield Path(name)


def one_line_about(error: BaseException, path: Path | str) -> str:
    message = str(error)
    event("refused")  # --hypothesis-show-statistics: how often each side was reached
    assert "\n" not in message, message
    assert message.startswith(f"{path}"), message
    assert len(message) > len(str(path)) + 10, message  # says something beyond the file
    return message


# ----------------------------------------------------------------------------- configs


def mostly(valid: st.SearchStrategy[Any], edge: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Valid three times in four: the edge cases then meet configs that are otherwise fine."""
    # (one_of would pick each branch about equally, however often it is listed)
    return st.sampled_from([True, True, True, False]).flatmap(lambda ok: valid if ok else edge)


edges = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, 0, -1, 1.5, "x", None]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
)
fractions = mostly(st.floats(0.01, 0.9), edges)
bounds = mostly(st.floats(-100, 100), edges)


@st.composite
def search_params(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(mostly(st.sampled_from(["int", "float", "categorical"]), st.just("other")))
    if kind == "categorical":
        return {"type": kind, "choices": draw(mostly(st.lists(st.integers(), min_size=1), edges))}
    low, high = draw(bounds), draw(bounds)
    param = {"type": kind, "low": low, "high": high, "log": draw(st.booleans())}
    if draw(st.booleans()):
        param.pop(draw(st.sampled_from(["low", "high", "log"])))
    return param


@st.composite
def gates(draw: st.DrawFn) -> dict[str, Any]:
    metric = draw(mostly(st.sampled_from(sorted(METRICS)), st.text(max_size=6)))
    gate: dict[str, Any] = {"metric": metric}
    for bound in draw(
        mostly(st.sampled_from([["min"], ["max"]]), st.sampled_from([[], ["min", "max"]]))
    ):
        gate[bound] = draw(bounds)
    if draw(st.booleans()):
        gate["split"] = draw(mostly(st.sampled_from(["train", "valid", "test"]), st.just("oot")))
    return gate


@st.composite
def decisions(draw: st.DrawFn) -> dict[str, Any]:
    rules = draw(
        mostly(
            st.sampled_from(
                [
                    [],
                    ["threshold"],
                    ["approval_rate"],
                    ["cost_false_negative", "cost_false_positive"],
                ]
            ),
            st.sampled_from([["threshold", "approval_rate"], ["cost_false_negative"]]),
        )
    )
    return {rule: draw(fractions) for rule in rules}


@settings(FAST, max_examples=150)  # validation alone: about 2 ms an example
@given(
    test_fraction=fractions,
    valid_fraction=fractions,
    space=st.dictionaries(
        st.sampled_from(["num_leaves", "learning_rate", "lambda_l2"]), search_params()
    ),
    gate_list=st.lists(gates(), max_size=4),
    decision=decisions(),
    method=mostly(st.sampled_from(["random", "out_of_time"]), st.sampled_from(["group", "x"])),
)
def test_generated_configs_validate_or_name_the_file(
    folder: Path,
    test_fraction: Any,
    valid_fraction: Any,
    space: dict[str, Any],
    gate_list: list[dict[str, Any]],
    decision: dict[str, Any],
    method: str,
) -> None:
    raw = copy.deepcopy(BASE)
    raw["split"].update(method=method, test_fraction=test_fraction, valid_fraction=valid_fraction)
    raw["tuning"]["search_space"] = space
    raw["gates"] = gate_list
    raw["decision"] = decision
    path = folder / "job.yaml"
    try:
        config = validate_config(raw, path)
    except ConfigError as err:
        one_line_about(err, path)
        return
    assert_promises_kept(config)


#: Every number a config holds, by dotted key into `BASE`.
NUMERIC_KEYS = (
    "split.test_fraction",
    "split.valid_fraction",
    "gates.0.min",
    "gates.2.max",
    "tuning.search_space.num_leaves.low",
    "tuning.search_space.learning_rate.high",
    "tuning.n_trials",
    "decision.approval_rate",
    "score.base_score",
    "score.base_odds",
    "score.pdo",
    "evaluation.shap_sample",
    "evaluation.reason_codes",
    "evaluation.drift.bins",
    "evaluation.fairness.min_group_size",
)
any_value = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 0, -1, 0.5, 1, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=6),
    st.booleans(),
    st.none(),
)


@settings(FAST, max_examples=150)
@given(key=st.sampled_from(NUMERIC_KEYS), value=any_value)
def test_any_value_for_a_number_validates_or_names_the_key(
    folder: Path, key: str, value: Any
) -> None:
    raw = copy.deepcopy(BASE)
    *parents, last = key.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = value
    path = folder / "job.yaml"
    parents_key = ".".join(parents)
    try:
        config = validate_config(raw, path)
    except ConfigError as err:
        # The key, or the item it belongs to when the rule is about the item (one bound a gate).
        assert (
            f": {key}:" in (message := one_line_about(err, path)) or f": {parents_key}:" in message
        )
        return
    assert_promises_kept(config)
    assert all(math.isfinite(float(v)) for v in numbers_in(config.model_dump()))


def numbers_in(tree: Any) -> Iterator[float]:
    if isinstance(tree, dict):
        for item in tree.values():
            yield from numbers_in(item)
    elif isinstance(tree, list):
        for item in tree:
            yield from numbers_in(item)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield float(tree)


def assert_promises_kept(config: JobConfig) -> None:
    for share in (config.split.test_fraction, config.split.valid_fraction):
        assert 0 < share < 1
    for param in config.tuning.search_space.values():
        if param.type == "categorical":
            assert param.choices
        else:
            assert param.low is not None and param.high is not None
            assert math.isfinite(param.low) and math.isfinite(param.high)
            assert param.low <= param.high
            assert not param.log or param.low > 0
    for gate in config.gates:
        assert (gate.min is None) != (gate.max is None)
        assert gate.metric in METRICS
        bound = gate.min if gate.min is not None else gate.max
        assert bound is not None and math.isfinite(bound)  # NaN or inf would never pass
    d = config.decision
    assert sum(x is not None for x in (d.threshold, d.approval_rate, d.cost_false_negative)) <= 1


@FAST
@given(text=st.text(max_size=200))
def test_any_yaml_text_loads_or_names_the_file(folder: Path, text: str) -> None:
    path = folder / "any.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as err:
        one_line_about(err, path)


@FAST
@given(blob=st.binary(max_size=120))
def test_any_bytes_load_or_name_the_file(folder: Path, blob: bytes) -> None:
    path = folder / "bytes.yaml"
    path.write_bytes(blob)
    with pytest.raises(ConfigError) as caught:  # no byte string is a whole job
        load_config(path)
    one_line_about(caught.value, path)


keys = st.lists(
    st.one_of(
        st.sampled_from(
            ["gates", "tuning", "search_space", "num_leaves", "low", "split", "data", "min"]
        ),
        st.sampled_from(["0", "3", "9", "-1", ""]),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=6),
    ),
    min_size=1,
    max_size=4,
)


@FAST
@given(parts=keys, value=st.text(max_size=12))
def test_any_set_override_applies_or_names_the_file(
    folder: Path, parts: list[str], value: str
) -> None:
    path = folder / "job.yaml"
    raw = copy.deepcopy(BASE)
    raw["data"]["source"] = "credit.parquet"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    try:
        load_config(path, [f"{'.'.join(parts)}={value}"])
    except ConfigError as err:
        one_line_about(err, path)


# ----------------------------------------------------------------------------- tables

cells = {
    "float": st.one_of(
        st.floats(allow_nan=True, allow_infinity=True, width=64), st.floats(-1e6, 1e6)
    ),
    "int": st.integers(-1000, 1000),
    "text": st.sampled_from(["a", "b", "c", "", "1", "2.5", "n/a"]),
    "mixed": st.one_of(st.integers(-5, 5), st.sampled_from(["x", "7", "inf"])),
    "bool": st.booleans(),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """A small table: a target (mostly 0/1), an id, a date and a few random features."""
    n = draw(st.integers(0, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)]})
    target = rng.integers(0, 2, n).astype(object)
    for _ in range(draw(st.integers(0, 2))):  # a stray label or a gap
        if n:
            target[rng.integers(n)] = draw(st.sampled_from([2, None, "yes"]))
    frame["y"] = target
    frame["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), "D")
    for j in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(sorted(cells)))
        values = draw(st.lists(cells[kind], min_size=min(n, 5), max_size=min(n, 5)))
        column = [values[i % len(values)] for i in range(n)] if values else []
        frame[f"{kind}_{j}"] = pd.Series(column, dtype=object if kind == "mixed" else None)
    return frame


@FAST
@given(frame=frames(), csv=st.booleans(), method=st.sampled_from(["random", "out_of_time"]))
def test_generated_tables_validate_or_name_the_file(
    folder: Path, frame: pd.DataFrame, csv: bool, method: str
) -> None:
    path = folder / ("table.csv" if csv else "table.parquet")
    try:
        frame.to_csv(path, index=False) if csv else frame.to_parquet(path, index=False)
    except (TypeError, ValueError, ArithmeticError, ImportError):  # pyarrow cannot store it
        frame.to_csv(path := folder / "table.csv", index=False)
    try:
        dataset = load_dataset(path, target="y", id_column="id", time_column="when")
        split_dataset(
            dataset,
            method=method,  # type: ignore[arg-type]
            test_fraction=0.3,
            valid_fraction=0.2,
            oot_start=pd.Timestamp("2024-10-01").date(),
            seed=0,
        )
    except DataError as err:
        one_line_about(err, path)
        return
    assert set(np.unique(dataset.target)) == {0, 1}
    numeric = dataset.features.drop(columns=list(dataset.categorical))
    assert not np.isinf(numeric.to_numpy(dtype=np.float64)).any()


@FAST
@given(frame=frames())
def test_generated_batches_type_or_name_the_file(frame: pd.DataFrame) -> None:
    numeric = [c for c in frame.columns if c.split("_")[0] in {"float", "int", "mixed", "bool"}]
    try:
        typed = numeric_batch(frame, numeric, "batch.csv")
    except DataError as err:
        one_line_about(err, "batch.csv")
        return
    for name in numeric:
        assert typed[name].dtype == np.float64

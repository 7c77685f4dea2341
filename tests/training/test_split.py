from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from tests.training.helpers import credit_dataset, credit_splits
from training.reading import DataError
from training.split import split_dataset


def _ids(part) -> set[str]:  # type: ignore[no-untyped-def]
    return set(part.ids)


def test_random_split_is_stratified_disjoint_and_complete() -> None:
    dataset, _ = credit_dataset()
    splits = credit_splits(method="random")
    parts = splits.parts()
    assert sum(p.n_rows for p in parts.values()) == dataset.n_rows
    ids = [_ids(p) for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    for part in parts.values():
        # Stratified: every part keeps the overall bad rate to within one row's worth.
        assert abs(part.bad_rate - dataset.bad_rate) < 2 / part.n_rows + 1e-9
    assert parts["test"].n_rows == pytest.approx(0.3 * dataset.n_rows, abs=1)


def test_out_of_time_split_puts_later_rows_in_test() -> None:
    splits = credit_splits(method="out_of_time")
    cutoff = pd.Timestamp("2024-07-01")
    assert (splits.test.time >= cutoff).all()
    assert (splits.train.time < cutoff).all() and (splits.valid.time < cutoff).all()
    summary = {s.name: s for s in splits.summary()}
    assert summary["test"].date_min == "2024-07-01"
    assert summary["train"].date_max is not None and summary["train"].date_max < "2024-07-01"
    assert summary["test"].bads == int(splits.test.target.sum())


def test_group_split_keeps_each_group_on_one_side() -> None:
    dataset, _ = credit_dataset()
    groups = pd.Series(np.arange(dataset.n_rows) // 7, name="customer")
    grouped = dataset.__class__(**{**dataset.__dict__, "groups": groups})
    splits = split_dataset(grouped, method="group", test_fraction=0.3, valid_fraction=0.25, seed=1)
    seen = [set(p.groups) for p in splits.parts().values()]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    assert sum(len(s) for s in seen) == groups.nunique()


def test_same_seed_gives_same_split() -> None:
    a = credit_splits(method="random", seed=5)
    b = credit_splits(method="random", seed=5)
    assert list(a.test.ids) == list(b.test.ids)


@pytest.mark.parametrize("cutoff", [date(2019, 1, 1), date(2030, 1, 1)])
def test_out_of_time_cutoff_outside_the_data_is_refused(cutoff: date) -> None:
    dataset, _ = credit_dataset()
    with pytest.raises(
        DataError, match=r"split\.oot_start .* empty; the data runs from 2023-01-0\d"
    ):
        split_dataset(
            dataset, method="out_of_time", test_fraction=0.3, valid_fraction=0.2, oot_start=cutoff
        )

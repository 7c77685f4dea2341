"""Pins evaluation.fairness_views: approval within score bands, equal opportunity, verdicts."""

from __future__ import annotations

import json
import math
import types
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, count, true_negative_rate
from numpy.typing import NDArray

from evaluation.bands import score_bands
from evaluation.fairness import (
    MISSING,
    AttributeSummary,
    FairnessResult,
    assess_fairness,
)
from evaluation.fairness_intervals import Interval
from evaluation.fairness_views import conditional_view, verdicts

THRESHOLD = 0.3


def mixed_data(
    n: int = 5000, seed: int = 3
) -> tuple[NDArray[np.int64], NDArray[np.float64], pd.DataFrame]:
    """Two attributes, continuous scores (no ties); "sex" F is riskier than M."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"], dtype=object), n, p=[0.45, 0.55])
    region = rng.choice(np.array(["n", "s", "e"], dtype=object), n, p=[0.5, 0.3, 0.2])
    logit = -1.3 + 0.5 * (sex == "F") + rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    return y, p, pd.DataFrame({"sex": sex, "region": region})


# --------------------------------------------------------------------------- within bands


def test_within_band_table_equals_pandas_qcut_and_groupby() -> None:
    y, p, protected = mixed_data()
    view = conditional_view(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    table = view.table()
    assert list(table.columns) == [
        "attribute",
        "group",
        "band",
        "rows",
        "approval_rate",
        "bad_rate",
    ]

    frame = protected.assign(
        band=pd.qcut(p, 5, labels=False) + 1, approved=(p < THRESHOLD).astype(int), y=y
    )
    frame["sex×region"] = frame["sex"] + "×" + frame["region"]
    for attribute in ("sex", "region", "sex×region"):
        oracle = (
            frame.groupby([attribute, "band"])
            .agg(rows=("y", "size"), approval_rate=("approved", "mean"), bad_rate=("y", "mean"))
            .reset_index()
            .rename(columns={attribute: "group"})
        )
        ours = table[table["attribute"] == attribute].drop(columns="attribute")
        ours = ours.sort_values(["group", "band"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, oracle, check_dtype=False, atol=1e-12)
    assert table.loc[table["attribute"] == "sex", "rows"].sum() == len(y)


def test_bands_are_those_of_the_score_band_table_even_with_ties() -> None:
    y, p, protected = mixed_data(n=2000)
    p = np.round(p, 1)  # a handful of distinct scores: equal-count cuts would split ties
    view = conditional_view(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, bands=10)
    reference = score_bands(y, p, n_bands=10)
    assert len(view.band_pd) == len(reference) < 10
    assert view.band_pd == tuple(zip(reference["min_pd"], reference["max_pd"], strict=True))
    sex = view.table().query("attribute == 'sex'").groupby("band")["rows"].sum()
    assert sex.tolist() == reference["count"].tolist()
    # Every score lands in the band whose PD range holds it.
    for row in view.within_bands:
        assert row.band in reference["band"].tolist()


def test_risk_explains_a_gap_when_each_band_treats_groups_alike() -> None:
    # F is riskier: F's overall approval is well below M's, but within a band both groups
    # have the same approval (the cut-off sits on a band edge) and, where their scores
    # overlap (bands 2-4 lie inside [0.2, 0.8]), the same bad rate.
    rng = np.random.default_rng(0)
    n = 20000
    sex = np.array(["F"] * (n // 2) + ["M"] * (n // 2), dtype=object)
    p = np.concatenate([rng.uniform(0.2, 1.0, n // 2), rng.uniform(0.0, 0.8, n // 2)])
    y = (rng.random(n) < p).astype(np.int64)
    protected = pd.DataFrame({"sex": sex})
    edge = float(np.quantile(p, 0.6))
    threshold = float(p[p > edge].min())  # the lowest score of band 4 (of 5)
    overall = assess_fairness(y_true=y, y_prob=p, threshold=threshold, protected=protected)
    assert overall.selection_rate_ratio < 0.8  # the headline says disparity

    table = conditional_view(y_true=y, y_prob=p, threshold=threshold, protected=protected).table()
    wide = table.pivot(index="band", columns="group", values=["approval_rate", "bad_rate"])
    both = wide.dropna()
    assert len(both) >= 3  # bands the two groups share
    assert (both["approval_rate"]["F"] == both["approval_rate"]["M"]).all()
    inner = both.loc[[2, 3, 4], "bad_rate"]
    assert np.allclose(inner["F"], inner["M"], atol=0.05)


def test_a_group_scored_riskier_than_it_is_shows_a_lower_bad_rate_in_the_same_band() -> None:
    # D's scores are inflated: in the same band, D's applicants default less often.
    rng = np.random.default_rng(1)
    n = 8000
    group = rng.choice(np.array(["D", "E"], dtype=object), n)
    risk = rng.uniform(0.02, 0.6, n)
    y = (rng.random(n) < risk).astype(np.int64)
    p = np.clip(risk + np.where(group == "D", 0.25, 0.0), 0, 1)
    table = conditional_view(
        y_true=y, y_prob=p, threshold=0.5, protected=pd.DataFrame({"g": group})
    ).table()
    wide = table.pivot(index="band", columns="group", values="bad_rate").dropna()
    assert len(wide) >= 3
    assert (wide["D"] < wide["E"] - 0.1).all()


# --------------------------------------------------------------------------- equal opportunity


def test_equal_opportunity_equals_fairlearn_true_negative_rate_per_group() -> None:
    y, p, protected = mixed_data()
    declined = (p >= THRESHOLD).astype(np.int64)
    view = conditional_view(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    fairness = assess_fairness(
        y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, n_boot=0
    )
    fpr = {(g.attribute, g.group): g.fpr for g in fairness.groups}
    for attribute in ("sex", "region"):
        frame = MetricFrame(
            metrics={"tnr": true_negative_rate, "count": count},
            y_true=y,
            y_pred=declined,
            sensitive_features=protected[attribute],
        )
        rows = [r for r in view.opportunity if r.attribute == attribute]
        tnr = frame.by_group["tnr"]
        for row in rows:
            assert row.good_approval_rate == pytest.approx(tnr[row.group], abs=1e-12)
            assert row.good_approval_rate == pytest.approx(
                1 - fpr[(attribute, row.group)], abs=1e-12
            )
            assert row.goods == int(((protected[attribute] == row.group) & (y == 0)).sum())
            assert row.ratio_to_highest == pytest.approx(tnr[row.group] / tnr.max(), abs=1e-12)
            assert not row.small
        (summary,) = [e for e in view.equal_opportunity if e.attribute == attribute]
        assert summary.ratio == pytest.approx(frame.ratio()["tnr"], abs=1e-12)
        assert summary.lowest_group == tnr.idxmin()
        assert summary.highest_group == tnr.idxmax()


def test_a_small_group_is_shown_but_does_not_set_the_equal_opportunity_ratio() -> None:
    y, p, protected = mixed_data(n=3000)
    # "z": 300 goods, 5 bads, every good declined -> approval among goods 0, but small.
    y = np.concatenate([y, np.zeros(300, dtype=np.int64), np.ones(5, dtype=np.int64)])
    p = np.concatenate([p, np.full(305, 0.95)])
    protected = pd.concat(
        [protected, pd.DataFrame({"sex": ["z"] * 305, "region": ["n"] * 305})],
        ignore_index=True,
    )
    view = conditional_view(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    (z,) = [r for r in view.opportunity if r.attribute == "sex" and r.group == "z"]
    assert (z.goods, z.good_approval_rate, z.ratio_to_highest, z.small) == (300, 0.0, 0.0, True)
    (summary,) = [e for e in view.equal_opportunity if e.attribute == "sex"]
    rates = {
        r.group: r.good_approval_rate
        for r in view.opportunity
        if r.attribute == "sex" and r.group != "z"
    }
    assert summary.ratio == pytest.approx(min(rates.values()) / max(rates.values()), abs=1e-12)
    assert summary.lowest_group != "z"
    # Counting z (min_group_bads=5) makes it the lowest, with ratio 0.
    counted = conditional_view(
        y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, min_group_bads=5
    )
    (summary,) = [e for e in counted.equal_opportunity if e.attribute == "sex"]
    assert (summary.lowest_group, summary.ratio) == ("z", 0.0)


def test_one_counted_group_has_no_equal_opportunity_ratio() -> None:
    y, p, protected = mixed_data(n=3000)
    view = conditional_view(
        y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected.assign(sex="F")
    )
    (summary,) = [e for e in view.equal_opportunity if e.attribute == "sex"]
    assert math.isnan(summary.ratio) and summary.highest_group == "F"


def test_view_json_is_strict_and_tables_have_the_documented_columns() -> None:
    y, p, protected = mixed_data(n=3000)
    view = conditional_view(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    doc = json.loads(json.dumps(view.to_json(), allow_nan=False))
    assert (doc["min_group_size"], doc["min_group_bads"]) == (30, 20)
    assert [b["band"] for b in doc["band_pd"]] == [1, 2, 3, 4, 5]
    assert len(doc["within_bands"]) == len(view.within_bands)
    assert set(doc["within_bands"][0]) == {
        "attribute",
        "group",
        "band",
        "rows",
        "approval_rate",
        "bad_rate",
    }
    assert list(view.opportunity_table().columns) == [
        "attribute",
        "group",
        "goods",
        "good_approval_rate",
        "ratio_to_highest",
        "small",
    ]
    assert [e["attribute"] for e in doc["equal_opportunity"]] == ["sex", "region", "sex×region"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bands": 0}, "bands must be an int >= 1"),
        ({"min_group_bads": -1}, "min_group_bads must be an int >= 0"),
        ({"threshold": 2.0}, "threshold must lie in"),
        ({"protected": pd.DataFrame({"sex": ["F"]})}, "1 rows but y_true has 2"),
    ],
)
def test_view_rejects_bad_inputs(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "y_true": [0, 1],
        "y_prob": [0.2, 0.8],
        "threshold": 0.5,
        "protected": pd.DataFrame({"sex": ["F", "M"]}),
    }
    with pytest.raises(ValueError, match=message):
        conditional_view(**{**args, **kwargs})


# --------------------------------------------------------------------------- verdicts


def summary(
    attribute: str,
    ratio: float,
    ci: Interval | None,
    lowest: str = "F",
    highest: str = "M",
    sizes: dict[str, int] | None = None,
    excluded: dict[str, str] | None = None,
) -> AttributeSummary:
    excluded = excluded or {}
    return AttributeSummary(
        attribute=attribute,
        selection_rate_ratio=ratio,
        demographic_parity_difference=0.1,
        equalized_odds_difference=0.1,
        lowest_group=lowest,
        highest_group=highest,
        group_sizes=types.MappingProxyType({lowest: 100, highest: 100} if sizes is None else sizes),
        excluded_small=tuple(excluded),
        excluded_reasons=types.MappingProxyType(excluded),
        selection_rate_ratio_ci=ci,
    )


def result_of(*attributes: AttributeSummary) -> FairnessResult:
    return FairnessResult(
        groups=(),
        attributes=attributes,
        selection_rate_ratio=min(a.selection_rate_ratio for a in attributes),
        demographic_parity_difference=0.1,
        equalized_odds_difference=0.1,
        min_group_size=30,
        min_group_bads=20,
    )


def test_verdicts_say_below_above_or_cannot_tell_from_the_interval() -> None:
    result = result_of(
        summary("age", 0.74, Interval(0.69, 0.78), lowest="<25", highest="50-64"),
        summary("sex", 0.93, Interval(0.88, 0.97)),
        summary("region", 0.79, Interval(0.71, 0.86), lowest="south", highest="north"),
        summary("sex×age", 0.80, Interval(0.80, 0.85), lowest="F×<25", highest="M×50-64"),
    )
    assert verdicts(result) == (
        "Applicants aged <25 are approved at 0.74 (0.69–0.78) of the rate of the highest "
        "group (50-64): below the four-fifths line.",
        "sex: F is approved at 0.93 (0.88–0.97) of the rate of the highest group (M): "
        "above the four-fifths line.",
        "region: south is approved at 0.79 (0.71–0.86) of the rate of the highest group "
        "(north): the interval includes the four-fifths line, so the data cannot tell.",
        # An interval starting on the line is at the line, which the screen passes.
        "sex×age: F×<25 is approved at 0.80 (0.80–0.85) of the rate of the highest group "
        "(M×50-64): above the four-fifths line.",
    )


def test_a_verdict_follows_min_ratio_and_names_a_custom_line() -> None:
    result = result_of(summary("sex", 0.85, Interval(0.81, 0.89)))
    assert verdicts(result)[0].endswith(": above the four-fifths line.")
    assert verdicts(result, min_ratio=0.9)[0].endswith(": below the 0.9 line.")
    assert verdicts(result, min_ratio=0.85)[0].endswith(
        ": the interval includes the 0.85 line, so the data cannot tell."
    )
    with pytest.raises(ValueError, match="min_ratio"):
        verdicts(result, min_ratio=1.5)


def test_a_verdict_without_an_interval_judges_the_estimate_and_says_so() -> None:
    result = result_of(summary("sex", 0.75, None), summary("age", 0.9, None, "65+", "35-49"))
    assert verdicts(result) == (
        "sex: F is approved at 0.75 of the rate of the highest group (M): below the "
        "four-fifths line (no interval was computed).",
        "Applicants aged 65+ are approved at 0.90 of the rate of the highest group (35-49): "
        "above the four-fifths line (no interval was computed).",
    )


def test_a_verdict_whose_estimate_and_interval_disagree_cannot_tell() -> None:
    result = result_of(summary("sex", 0.81, Interval(0.70, 0.79)))
    assert verdicts(result) == (
        "sex: F is approved at 0.81 (0.70–0.79) of the rate of the highest group (M): the "
        "estimate and its interval fall on different sides of the four-fifths line, so the "
        "data cannot tell.",
    )


def test_verdicts_say_why_no_ratio_exists() -> None:
    one = summary(
        "sex×age",
        math.nan,
        None,
        lowest="F×35-49",
        highest="F×35-49",
        sizes={"F×35-49": 400},
        excluded={"M×<25": "12 bads < 20", "M×65+": "25 rows < 30, 3 bads < 20"},
    )
    none = summary(
        "sex", math.nan, None, lowest="", highest="", sizes={}, excluded={"F": "5 goods < 20"}
    )
    nobody = summary("region", math.nan, None, lowest="n", highest="s")
    assert verdicts(result_of(one, none, nobody)) == (
        "sex×age: no ratio can be computed: fewer than two groups are large enough to compare "
        "(at least 30 rows, 20 bads and 20 goods each, as min_group_size and min_group_bads "
        "require). Only F×35-49 is large enough; excluded: M×<25 (12 bads < 20), M×65+ "
        "(25 rows < 30, 3 bads < 20).",
        "sex: no ratio can be computed: fewer than two groups are large enough to compare "
        "(at least 30 rows, 20 bads and 20 goods each, as min_group_size and min_group_bads "
        "require). Excluded: F (5 goods < 20).",
        "region: no ratio can be computed: no applicant in any counted group is approved.",
    )


def test_verdicts_for_missing_ages_and_tied_groups_read_as_sentences() -> None:
    result = result_of(
        summary("Age", 0.7, Interval(0.6, 0.78), lowest=MISSING, highest="25-34"),
        summary("sex", 1.0, Interval(0.97, 1.0), "F", "F", sizes={"F": 100, "M": 100}),
    )
    assert verdicts(result) == (
        "Applicants with no recorded age are approved at 0.70 (0.60–0.78) of the rate of the "
        "highest group (25-34): below the four-fifths line.",
        "sex: every counted group is approved at the same rate, ratio 1.00 (0.97–1.00): "
        "above the four-fifths line.",
    )


def test_verdicts_of_a_real_assessment_quote_its_numbers_one_per_attribute() -> None:
    y, p, protected = mixed_data()
    result = assess_fairness(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    sentences = verdicts(result)
    assert len(sentences) == len(result.attributes) == 3
    for sentence, a in zip(sentences, result.attributes, strict=True):
        ci = a.selection_rate_ratio_ci
        assert ci is not None
        assert sentence.startswith(f"{a.attribute}: {a.lowest_group} is approved at ")
        assert f"{a.selection_rate_ratio:.2f} ({ci.low:.2f}–{ci.high:.2f})" in sentence
        assert f"highest group ({a.highest_group})" in sentence

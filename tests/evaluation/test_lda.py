"""The LDA search's rules, on hand-made alternatives: the front, the choice, the wording."""

from __future__ import annotations

import pytest

from evaluation.lda import Alternative, select


def _alts() -> list[Alternative]:
    # (label, auc, ratio): a is most accurate; c is fairest within 0.01; e within 0.02.
    rows = [("a", 0.820, 0.62), ("b", 0.818, 0.60), ("c", 0.8105, 0.74), ("d", 0.815, 0.70),
            ("e", 0.801, 0.83), ("f", 0.790, 0.81)]  # fmt: skip
    return [
        Alternative(n, {"num_leaves": i}, auc, r, trial=i) for i, (n, auc, r) in enumerate(rows)
    ]


def _never(_: Alternative) -> bool:
    return False


def test_the_pareto_front_is_what_nothing_beats_on_both() -> None:
    search = select(_alts(), rule="most_accurate", passes=_never)
    # b is beaten by a (higher on both); f by e. The rest are the front, by AUC.
    assert [search.alternatives[i].label for i in search.front] == ["a", "d", "c", "e"]


def test_most_accurate_is_the_default_choice() -> None:
    search = select(_alts(), rule="most_accurate", passes=_never)
    assert search.chosen == search.most_accurate == 0
    assert search.summary()["chosen"]["label"] == "a"


def test_fairest_within_an_auc_drop() -> None:
    alts = _alts()
    within_1 = select(alts, rule={"fairest_within": {"auc_drop": 0.01}}, passes=_never)
    assert alts[within_1.chosen].label == "c" and within_1.most_accurate == 0
    within_2 = select(alts, rule={"fairest_within": {"auc_drop": 0.02}}, passes=_never)
    assert alts[within_2.chosen].label == "e"
    # By hand: among auc >= 0.820 - d, the highest ratio.
    for drop in (0.005, 0.01, 0.02, 0.05):
        search = select(alts, rule={"fairest_within": {"auc_drop": drop}}, passes=_never)
        near = [a for a in alts if a.auc >= 0.820 - drop - 1e-12]
        assert alts[search.chosen].selection_rate_ratio == max(a.selection_rate_ratio for a in near)


def test_most_accurate_passing_the_gates_and_an_honest_none() -> None:
    alts = _alts()

    def ratio_gate(a: Alternative) -> bool:
        return a.selection_rate_ratio >= 0.8

    search = select(alts, rule="most_accurate_passing_gates", passes=ratio_gate)
    assert alts[search.chosen].label == "e" and not search.note
    none = select(alts, rule="most_accurate_passing_gates", passes=_never)
    assert none.chosen == none.most_accurate == 0
    assert "No alternative passes the gates" in none.note
    assert none.note in none.statement()


def test_the_statement_says_what_the_search_supports() -> None:
    alts = _alts()
    search = select(alts, rule={"fairest_within": {"auc_drop": 0.01}}, passes=_never)
    text = search.statement()
    assert "6 parameter set(s) and 0 feature drop(s)" in text
    assert "most accurate alternative (a) has AUC 0.820 at a selection-rate ratio of 0.62" in text
    assert (
        "Within 0.01 AUC the fairest reaches a ratio of 0.74 (c, AUC 0.810), so no "
        "alternative within 0.01 AUC reaches 0.8." in text
    )
    assert (
        "Within 0.02 AUC the fairest reaches a ratio of 0.83 (e, AUC 0.801), which "
        "reaches the 0.8 line." in text
    )
    rows = search.to_json()
    assert [r["chosen"] for r in rows] == [False, False, True, False, False, False]
    assert rows[0]["most_accurate"] and rows[0]["params"] == {"num_leaves": 0}


def test_a_feature_drop_counts_as_such() -> None:
    alts = [*_alts(), Alternative("a without x", {"num_leaves": 0}, 0.819, 0.75, ("x",), 0)]
    search = select(alts, rule={"fairest_within": {"auc_drop": 0.01}}, passes=_never)
    assert search.trials == 6 and search.feature_drops == 1
    assert alts[search.chosen].dropped == ("x",)
    with pytest.raises(ValueError, match="no alternative"):
        select([], rule="most_accurate", passes=_never)


def test_the_search_ratio_is_the_evidence_ratio_over_judged_attributes() -> None:
    """The per-trial ratio (numpy, fast) equals `assess_fairness` on the same decisions."""
    import numpy as np
    import pandas as pd

    from evaluation.fairness import assess_fairness
    from evaluation.lda import DecisionSettings, fairness_objective
    from training.models.policy import choose_threshold

    rng = np.random.default_rng(3)
    n = 6000
    protected = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                              "age": rng.integers(18, 80, n).astype(float)})  # fmt: skip
    raw = rng.beta(2, 12, n) + 0.05 * (protected["age"].to_numpy() < 25)
    y = (rng.uniform(size=n) < raw).astype(np.int8)
    bins = {"age": [25.0, 35.0, 50.0, 65.0]}
    objective = fairness_objective(
        protected, decision=DecisionSettings("none", "approval_rate", approval_rate=0.8),
        bins=bins, min_group_size=30, min_group_bads=20,
    )  # fmt: skip
    cut = choose_threshold("approval_rate", raw, y, approval_rate=0.8)
    result = assess_fairness(y_true=y, y_prob=raw, threshold=cut, protected=protected,
                             bins=bins, min_group_size=30, min_group_bads=20, n_boot=0)  # fmt: skip
    judged = [
        a.selection_rate_ratio
        for a in result.attributes
        if a.selection_rate_ratio == a.selection_rate_ratio
    ]
    assert judged and objective.score(y, raw) == pytest.approx(min(judged), rel=1e-12)


def test_ratios_that_cannot_be_computed_keep_the_most_accurate_and_say_so() -> None:
    import math

    alts = [Alternative(f"t{i}", {}, auc, math.nan, trial=i) for i, auc in enumerate([0.8, 0.81])]
    search = select(alts, rule={"fairest_within": {"auc_drop": 0.01}}, passes=_never)
    assert search.chosen == search.most_accurate == 1
    assert "could be computed" in search.note and search.note in search.statement()
    assert search.to_json()[1]["selection_rate_ratio"] is None

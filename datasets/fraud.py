"""Synthetic card transactions over 2024-01-01 .. 2024-06-30 and their true fraud probability.

`make_fraud` draws ordinary spending on each card at daytime-heavy hours, plus about 1.2%
in short bursts on compromised cards (other merchants, larger amounts, new devices, far from
home, any hour); the velocity counts come from each card's real history in the table.
`fraud_risk` is the public function the label is drawn from; it reads the
`FRAUD_RISK_COLUMNS` only, and the hidden compromised flag never enters it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from datasets.base import FloatArray, IntArray, SyntheticData, check_rows, draw_label
from datasets.draws import (
    as_str,
    decode,
    draw_shared,
    full_names,
    id_width,
    numbered,
    numbered_array,
)
from datasets.risk import expit, float_column, level_offsets, soft_hinge

__all__ = [
    "FRAUD_ID_COLUMN",
    "FRAUD_PII",
    "FRAUD_RISK_COLUMNS",
    "FRAUD_TARGET",
    "FRAUD_TIME_COLUMN",
    "MERCHANT_CATEGORIES",
    "fraud_risk",
    "make_fraud",
]

# --------------------------------------------------------------------------------------------
# Names and levels. Tuples, so that the order (and therefore the seeded draws) never changes.
# --------------------------------------------------------------------------------------------

FRAUD_ID_COLUMN: Final = "transaction_id"
FRAUD_TIME_COLUMN: Final = "timestamp"
FRAUD_TARGET: Final = "is_fraud"
FRAUD_PII: Final = ("cardholder_name",)
FRAUD_START: Final = np.datetime64("2024-01-01", "D")
FRAUD_DAYS: Final = 182  # 2024-01-01 .. 2024-06-30 inclusive

MERCHANT_CATEGORIES: Final = (
    "grocery",
    "fuel",
    "restaurant",
    "online_retail",
    "electronics",
    "travel",
    "gambling",
    "atm",
    "pharmacy",
    "other",
)
# Category shares of ordinary spending and of spending on a compromised card.
MERCHANT_SHARES_NORMAL: Final = (0.27, 0.10, 0.15, 0.18, 0.03, 0.02, 0.01, 0.06, 0.05, 0.13)
MERCHANT_SHARES_COMPROMISED: Final = (0.04, 0.04, 0.03, 0.30, 0.20, 0.08, 0.10, 0.12, 0.01, 0.08)
MERCHANT_MEDIAN_AMOUNT: Final = (32.0, 48.0, 28.0, 42.0, 160.0, 280.0, 55.0, 70.0, 18.0, 38.0)
MERCHANT_CARD_PRESENT: Final = (0.96, 0.97, 0.92, 0.0, 0.55, 0.30, 0.25, 1.0, 0.95, 0.60)
# Ordinary spending by hour of day (relative weights, 00:00 .. 23:00).
HOUR_WEIGHTS: Final = (
    0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.5, 3.0, 4.0, 4.5, 5.0,
    5.8, 5.6, 5.0, 4.8, 5.0, 5.6, 6.0, 5.4, 4.4, 3.4, 2.2, 1.2,
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# The fraud risk function: logit(P(is_fraud = 1 | features)).
# --------------------------------------------------------------------------------------------

FRAUD_RISK_COLUMNS: Final = (
    "amount",
    "merchant_category",
    "hour",
    "device_new",
    "distance_from_home_km",
    "txn_count_1h",
    "txn_count_24h",
    "card_present",
    "country_mismatch",
)
FRAUD_INTERCEPT: Final = -7.85
MERCHANT_LOGIT: Final = {
    "grocery": -0.6,
    "fuel": -0.2,
    "restaurant": -0.5,
    "online_retail": 0.4,
    "electronics": 0.9,
    "travel": 0.3,
    "gambling": 1.0,
    "atm": 0.6,
    "pharmacy": -0.5,
    "other": 0.0,
}
# Share of transactions made on a compromised card, and their burst shape.
FRAUD_COMPROMISED_SHARE: Final = 0.012
FRAUD_BURST_MEAN_SIZE: Final = 5
FRAUD_BURST_SECONDS: Final = 3 * 3600
FRAUD_TRANSACTIONS_PER_CARD: Final = 50


def make_fraud(rows: int, *, seed: int = 0) -> SyntheticData:
    """Card transactions over 2024-01-01 .. 2024-06-30 with a fraud flag.

    Most transactions are ordinary spending on a card, at daytime-heavy hours. About 1.2% come
    in short bursts on compromised cards: other merchants, larger amounts, new devices, far
    from home, at any hour. The velocity counts are computed from the card's real history in
    the table, so a burst shows up in them. The label is drawn from `fraud_risk` of the
    finished table; the hidden compromised flag never enters it.
    """
    n = check_rows(rows)
    rng = np.random.default_rng(seed)
    span = FRAUD_DAYS * 86_400
    n_cards = max(1, n // FRAUD_TRANSACTIONS_PER_CARD)

    n_burst = round(n * FRAUD_COMPROMISED_SHARE)
    n_normal = n - n_burst
    activity = rng.gamma(1.5, 1.0, size=n_cards)
    normal_card = rng.choice(n_cards, size=n_normal, p=activity / activity.sum())
    hour_p = np.asarray(HOUR_WEIGHTS) / np.sum(HOUR_WEIGHTS)
    normal_seconds = (
        rng.integers(0, FRAUD_DAYS, size=n_normal) * 86_400
        + rng.choice(24, size=n_normal, p=hour_p) * 3_600
        + rng.integers(0, 3_600, size=n_normal)
    )
    n_episodes = max(1, n_burst // FRAUD_BURST_MEAN_SIZE)
    episode_card = rng.integers(0, n_cards, size=n_episodes)
    episode_start = rng.integers(0, span - FRAUD_BURST_SECONDS, size=n_episodes)
    episode = rng.integers(0, n_episodes, size=n_burst)
    burst_seconds = episode_start[episode] + rng.integers(0, FRAUD_BURST_SECONDS, size=n_burst)

    seconds = np.concatenate([normal_seconds, burst_seconds]).astype(np.int64)
    card = np.concatenate([normal_card, episode_card[episode]]).astype(np.int64)
    compromised = np.concatenate([np.zeros(n_normal, bool), np.ones(n_burst, bool)])
    order = np.argsort(seconds, kind="stable")
    seconds, card, compromised = seconds[order], card[order], compromised[order]

    category = np.where(
        compromised,
        draw_shared(rng, MERCHANT_SHARES_COMPROMISED, n),
        draw_shared(rng, MERCHANT_SHARES_NORMAL, n),
    )
    amount = np.asarray(MERCHANT_MEDIAN_AMOUNT)[category] * np.exp(
        0.8 * rng.standard_normal(n) + 0.8 * compromised
    )
    amount = np.round(np.clip(amount, 0.5, 20_000.0), 2)
    present_p = np.asarray(MERCHANT_CARD_PRESENT)[category] * np.where(compromised, 0.35, 1.0)
    card_present = rng.random(n) < present_p
    device_new = rng.random(n) < np.where(compromised, 0.50, np.where(card_present, 0.01, 0.05))
    travel = category == MERCHANT_CATEGORIES.index("travel")
    country_mismatch = rng.random(n) < np.where(compromised, 0.35, np.where(travel, 0.30, 0.015))
    distance = np.where(
        country_mismatch,
        rng.lognormal(np.log(900.0), 0.7, size=n),
        np.where(
            compromised,
            rng.lognormal(np.log(40.0), 1.4, size=n),
            rng.lognormal(np.log(5.0), 1.0, size=n),
        ),
    )
    distance = np.round(np.clip(distance, 0.0, 20_000.0), 1)

    count_1h, count_24h = _card_velocity(card, seconds)
    timestamp = (FRAUD_START.astype("datetime64[s]") + seconds.astype("timedelta64[s]")).astype(
        "datetime64[us]"
    )
    card_names = full_names(rng, rng.random(n_cards) < 0.5)

    frame = pd.DataFrame(
        {
            FRAUD_ID_COLUMN: numbered("T", n),
            FRAUD_TIME_COLUMN: timestamp,
            "card_id": as_str(numbered_array("C", card, id_width(n_cards))),
            "cardholder_name": as_str(card_names[card]),
            "amount": amount,
            "merchant_category": decode(category, MERCHANT_CATEGORIES),
            "hour": ((seconds // 3_600) % 24).astype(np.int64),
            "device_new": device_new.astype(np.int64),
            "distance_from_home_km": distance,
            "txn_count_1h": count_1h,
            "txn_count_24h": count_24h,
            "card_present": card_present.astype(np.int64),
            "country_mismatch": country_mismatch.astype(np.int64),
        }
    )
    return draw_label(frame, fraud_risk(frame), FRAUD_TARGET, FRAUD_ID_COLUMN, rng)


def fraud_risk(frame: pd.DataFrame) -> FloatArray:
    """True P(is_fraud = 1) of each row, from the columns in `FRAUD_RISK_COLUMNS` only.

    Terms, on the logit: new device, country mismatch and card-not-present (plus their
    new-device x not-present interaction), a soft hinge in log distance from home, a soft
    hinge in log amount above about 150, a smooth night-time bump centred on 03:00, log
    velocity in the last hour and day, and a merchant-category offset.
    """
    amount = float_column(frame, "amount")
    hour = float_column(frame, "hour")
    device_new = float_column(frame, "device_new")
    distance = float_column(frame, "distance_from_home_km")
    count_1h = float_column(frame, "txn_count_1h")
    count_24h = float_column(frame, "txn_count_24h")
    not_present = 1.0 - float_column(frame, "card_present")
    mismatch = float_column(frame, "country_mismatch")

    hours_from_3am = np.abs((hour - 3.0 + 12.0) % 24.0 - 12.0)
    logit = (
        FRAUD_INTERCEPT
        + 1.8 * device_new
        + 1.4 * mismatch
        + 0.8 * not_present
        + 0.6 * device_new * not_present
        + 0.6 * soft_hinge(np.log1p(distance) - np.log(30.0), 0.5)
        + 0.9 * soft_hinge(np.log(amount) - np.log(150.0), 0.3)
        + 1.2 * np.exp(-(hours_from_3am**2) / 8.0)
        + 1.1 * np.log1p(count_1h)
        + 0.35 * np.log1p(count_24h)
        + level_offsets(frame, "merchant_category", MERCHANT_LOGIT)
    )
    return expit(logit)


def _card_velocity(card: IntArray, seconds: IntArray) -> tuple[IntArray, IntArray]:
    """Earlier transactions on the same card in the last hour / day, for every row.

    Sorting by (card, time) and searching a combined key keeps this O(n log n) and
    vectorised: the key offsets each card far beyond the time span, so a window never
    reaches into the previous card's block.
    """
    order = np.lexsort((seconds, card))
    stride = int(seconds.max()) + 2 * 86_400
    key = card[order] * stride + seconds[order]
    position = np.arange(len(key))
    counts = []
    for window in (3_600, 86_400):
        first = np.searchsorted(key, key - window, side="left")
        sorted_counts = position - first
        result = np.empty_like(sorted_counts)
        result[order] = sorted_counts
        counts.append(result.astype(np.int64))
    return counts[0], counts[1]

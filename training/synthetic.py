"""Synthetic credit applications and card transactions, with the true probability of every row.

Why synthetic data: the demo, the tests and the benchmarks must run with nothing from outside,
and a model can only be judged against "the best possible" when the process that made the
labels is known. Every label here is a Bernoulli draw from a probability that a known,
public function (`credit_risk`, `fraud_risk`) computes from the *observed* feature columns.
That probability is returned as `SyntheticData.truth`, so `roc_auc_score(y, truth)` is the
Bayes AUC: the ceiling a model can reach, in expectation, on those rows.

Design rules, each there so that a governance check has a known right answer:

- The risk functions read feature columns only. Protected attributes (`sex`, `age`) and time
  never enter them directly; some features do correlate with age (income, employment, thin
  files), as in real bureau data, so proxies exist for the fairness checks to find.
- Features are correlated through a hidden creditworthiness factor, and have the missingness
  patterns of real data (thin files without utilisation, no delinquency recency when there
  was never a delinquency).
- The credit population drifts gently over the 24 months (utilisation and the mobile-app
  channel rise) while P(default | features) stays fixed, so drift monitors have something to
  see and an out-of-time test can still reach the Bayes AUC.
- The risk functions are smooth (soft hinges, logs, one two-way interaction), so gradient
  boosting can get within about 0.01 AUC of the Bayes AUC on a few hundred thousand rows.
- Everything is vectorised numpy driven by one `numpy.random.default_rng(seed)`: the same
  `rows` and `seed` give an identical table, and a million rows take a second or two.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

__all__ = [
    "CHANNELS",
    "CREDIT_ID_COLUMN",
    "CREDIT_PII",
    "CREDIT_PROTECTED",
    "CREDIT_RISK_COLUMNS",
    "CREDIT_TARGET",
    "CREDIT_TIME_COLUMN",
    "FRAUD_ID_COLUMN",
    "FRAUD_PII",
    "FRAUD_RISK_COLUMNS",
    "FRAUD_TARGET",
    "FRAUD_TIME_COLUMN",
    "HOME_OWNERSHIP",
    "LOAN_TERMS",
    "MERCHANT_CATEGORIES",
    "PURPOSES",
    "REGIONS",
    "TABLE_EXTENSIONS",
    "TRUTH_COLUMN",
    "SyntheticData",
    "credit_risk",
    "fraud_risk",
    "make_credit",
    "make_fraud",
    "write_table",
    "write_truth",
]

FloatArray = np.ndarray
IntArray = np.ndarray

# --------------------------------------------------------------------------------------------
# Names and levels. Tuples, so that the order (and therefore the seeded draws) never changes.
# --------------------------------------------------------------------------------------------

TRUTH_COLUMN: Final = "true_probability"
TABLE_EXTENSIONS: Final = (".csv", ".parquet")

CREDIT_ID_COLUMN: Final = "application_id"
CREDIT_TIME_COLUMN: Final = "application_date"
CREDIT_TARGET: Final = "default_12m"
CREDIT_PII: Final = ("full_name", "phone", "national_id")
CREDIT_PROTECTED: Final = ("sex", "age")
CREDIT_START: Final = np.datetime64("2023-01-01", "D")
CREDIT_DAYS: Final = 731  # 2023-01-01 .. 2024-12-31 inclusive

FRAUD_ID_COLUMN: Final = "transaction_id"
FRAUD_TIME_COLUMN: Final = "timestamp"
FRAUD_TARGET: Final = "is_fraud"
FRAUD_PII: Final = ("cardholder_name",)
FRAUD_START: Final = np.datetime64("2024-01-01", "D")
FRAUD_DAYS: Final = 182  # 2024-01-01 .. 2024-06-30 inclusive

HOME_OWNERSHIP: Final = ("rent", "mortgage", "own", "other")
PURPOSES: Final = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "car",
    "medical",
    "small_business",
    "other",
)
PURPOSE_SHARES: Final = (0.34, 0.20, 0.12, 0.14, 0.05, 0.05, 0.10)
# Typical loan size by purpose (GBP) before scaling by income.
PURPOSE_LOAN_MEDIAN: Final = (9000.0, 4500.0, 14000.0, 11000.0, 3500.0, 18000.0, 5000.0)
REGIONS: Final = (
    "london",
    "south_east",
    "south_west",
    "midlands",
    "north_west",
    "north_east",
    "scotland",
    "wales",
)
REGION_SHARES: Final = (0.16, 0.17, 0.10, 0.18, 0.13, 0.09, 0.10, 0.07)
# Log-income uplift by region: London pays more. Region never enters the risk function.
REGION_INCOME_SHIFT: Final = (0.22, 0.10, 0.0, -0.04, -0.05, -0.08, -0.03, -0.07)
CHANNELS: Final = ("web", "mobile_app", "broker", "branch")
LOAN_TERMS: Final = (12, 24, 36, 48, 60)

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

FIRST_NAMES_F: Final = (
    "Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Isabella", "Rosie", "Sophia",
    "Grace", "Freya", "Emily", "Ella", "Poppy", "Evie", "Charlotte", "Florence", "Sienna", "Ruby",
    "Sarah", "Emma", "Laura", "Rachel", "Hannah", "Jessica", "Claire", "Helen", "Priya", "Aisha",
    "Fatima", "Zara", "Chloe", "Megan", "Lucy", "Katie", "Nicola", "Joanne", "Susan", "Margaret",
)  # fmt: skip
FIRST_NAMES_M: Final = (
    "Noah", "Oliver", "George", "Arthur", "Leo", "Muhammad", "Harry", "Oscar", "Archie", "Henry",
    "Jack", "Charlie", "Freddie", "Theo", "Thomas", "James", "William", "Alfie", "Joshua", "Jacob",
    "Daniel", "David", "Michael", "Paul", "Mark", "Andrew", "Richard", "Stephen", "Arjun", "Omar",
    "Ryan", "Liam", "Callum", "Connor", "Samuel", "Matthew", "Christopher", "Peter", "John", "Ian",
)  # fmt: skip
LAST_NAMES: Final = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Thomas", "Clarke", "Jackson", "Wood", "Harris", "Edwards", "Turner", "Martin", "Cooper",
    "Hill", "Ward", "Hughes", "Moore", "Clark", "King", "Harrison", "Lewis", "Baker", "Lee",
    "Allen", "Morris", "Khan", "Scott", "Watson", "Davis", "Parker", "James", "Bennett", "Young",
    "Phillips", "Richardson", "Mitchell", "Bailey", "Carter", "Cook", "Singh", "Shaw", "Bell",
    "Collins", "Morgan", "Kelly", "Begum", "Miller", "Cox", "Hussain", "Marshall", "Simpson",
    "Price", "Anderson", "Adams", "Wilkinson", "Ali", "Ahmed", "Foster", "Ellis", "Murphy",
    "Chapman", "Mason", "Gray", "Richards", "Webb", "Griffiths", "Hunt", "Palmer", "Campbell",
    "Holmes", "Mills", "Rogers", "Barnes", "Knight", "Matthews", "Barker", "Powell", "Stevens",
    "Kaur", "Fisher", "Butler", "Dixon", "Russell", "Harvey", "Pearson", "Graham", "Nowak",
    "Kowalski", "Okafor", "Mensah", "Nguyen", "Chen", "Wang", "Murray", "Reid", "Stewart",
)  # fmt: skip
INITIALS: Final = "ABCDEFGHIJKLMNOPRSTW"
# National-insurance-number style: two prefix letters, six digits, a suffix letter.
NATIONAL_ID_PREFIX_LETTERS: Final = "ABCEGHJKLMNPRSTWXYZ"
NATIONAL_ID_SUFFIX_LETTERS: Final = "ABCD"

# --------------------------------------------------------------------------------------------
# The credit risk function: logit(P(default_12m = 1 | features)).
# --------------------------------------------------------------------------------------------

CREDIT_RISK_COLUMNS: Final = (
    "annual_income",
    "debt_to_income",
    "credit_utilisation",
    "n_delinquencies_2y",
    "months_since_last_delinquency",
    "n_inquiries_6m",
    "employment_years",
    "loan_amount",
    "loan_term_months",
    "home_ownership",
    "purpose",
    "channel",
    "n_open_accounts",
    "bureau_score",
)
CREDIT_INTERCEPT: Final = -2.40
PURPOSE_LOGIT: Final = {
    "debt_consolidation": 0.15,
    "credit_card": 0.05,
    "home_improvement": -0.20,
    "car": -0.15,
    "medical": 0.30,
    "small_business": 0.55,
    "other": 0.0,
}
CHANNEL_LOGIT: Final = {"web": 0.0, "mobile_app": 0.12, "broker": 0.30, "branch": -0.15}
HOME_OWNERSHIP_LOGIT: Final = {"rent": 0.20, "mortgage": -0.10, "own": -0.20, "other": 0.10}

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


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic table and the probability each of its labels was drawn from.

    `truth` is kept out of `frame` because a user never has it: it exists to measure how
    close a model comes to the best possible (the Bayes AUC / log-loss on the same rows).
    """

    frame: pd.DataFrame
    truth: pd.Series
    id_column: str


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def make_credit(rows: int, *, seed: int = 0) -> SyntheticData:
    """Credit applications over 2023-2024 with a 12-month default flag.

    A hidden creditworthiness factor drives bureau score, utilisation, delinquencies,
    inquiries, debt-to-income and income together, so the features are correlated the way
    bureau data is. The label is then drawn from `credit_risk` of the finished table, after
    rounding and missing values, so the truth is exactly a function of what a model sees.
    """
    n = _check_rows(rows)
    rng = np.random.default_rng(seed)

    day = np.sort(rng.integers(0, CREDIT_DAYS, size=n))
    t = day / (CREDIT_DAYS - 1)  # 0 at the start, 1 at the end: drives population drift
    quality = rng.standard_normal(n)

    age = np.clip(np.rint(rng.normal(41.0, 13.0, size=n)), 18, 80).astype(np.int64)
    is_female = rng.random(n) < 0.49
    adult_years = (age - 17).astype(float)

    thin_file = rng.random(n) < _expit(-0.55 - 0.11 * (age - 18.0))

    employment = adult_years * rng.beta(1.4, 3.2, size=n) * np.exp(0.15 * quality)
    employment = np.round(np.minimum(employment, adult_years), 1)
    employment_missing = rng.random(n) < 0.05

    region = _draw_shared(rng, REGION_SHARES, n)
    log_income = (
        9.95
        + 0.25 * np.log1p(employment)
        + 0.015 * np.minimum(age - 18.0, 30.0)
        + 0.20 * quality
        + np.asarray(REGION_INCOME_SHIFT)[region]
        + 0.38 * rng.standard_normal(n)
    )
    income = np.round(np.clip(np.exp(log_income), 8_000.0, 500_000.0), -1)

    dti = rng.gamma(3.0, 0.085, size=n) * np.exp(-0.25 * quality)
    dti = np.clip(dti, 0.0, 1.5).round(3)

    util_logit = -0.75 - 0.70 * quality + 0.45 * t - 0.008 * (age - 41.0)
    utilisation = 1.2 * _expit(util_logit + 0.9 * rng.standard_normal(n))
    utilisation = np.clip(utilisation, 0.0, 1.2).round(3)

    delinquencies = rng.poisson(np.exp(-1.75 - 0.85 * quality))
    delinquencies[thin_file] = 0
    recent = rng.integers(0, 24, size=n).astype(float)
    older = rng.integers(24, 96, size=n).astype(float)
    had_older = rng.random(n) < 0.12
    months_since = np.where(
        delinquencies > 0, recent, np.where(had_older & ~thin_file, older, np.nan)
    )

    inquiries = rng.poisson(np.exp(-0.15 - 0.35 * quality + 0.35 * thin_file))
    open_accounts = np.where(
        thin_file,
        rng.poisson(0.5, size=n),
        rng.poisson(2.0 + 0.07 * np.minimum(age - 18.0, 40.0)) + 1,
    )

    bureau = (
        650.0
        + 70.0 * quality
        + 1.0 * (age - 41.0)
        - 18.0 * delinquencies
        - 40.0 * thin_file
        + 28.0 * rng.standard_normal(n)
    )
    bureau = np.clip(np.rint(bureau), 300.0, 850.0)
    bureau_missing = rng.random(n) < 0.03

    purpose = _draw_shared(rng, PURPOSE_SHARES, n)
    loan = (
        np.asarray(PURPOSE_LOAN_MEDIAN)[purpose]
        * np.sqrt(income / 30_000.0)
        * np.exp(0.5 * rng.standard_normal(n))
    )
    loan = np.clip(np.round(loan / 50.0) * 50.0, 500.0, 100_000.0)
    term_index = np.rint(1.6 + 0.9 * np.log(loan / 8_000.0) + 0.9 * rng.standard_normal(n))
    term = np.asarray(LOAN_TERMS, dtype=np.int64)[np.clip(term_index, 0, 4).astype(np.int64)]

    years_adult = np.minimum(age - 18.0, 30.0)
    home = _draw_codes(
        rng,
        np.column_stack(
            [
                np.exp(1.2 - 0.07 * (age - 18.0)),  # rent: the young
                np.exp(-0.6 + 0.06 * years_adult + 0.3 * quality),  # mortgage: mid-life
                np.exp(-3.2 + 0.07 * (age - 18.0)),  # own outright: the old
                np.full(n, 0.18),
            ]
        ),
    )
    channel = _draw_codes(
        rng,
        np.column_stack(
            [
                np.full(n, 0.42),
                (0.16 + 0.18 * t) * np.exp(-0.02 * (age - 41.0)),  # mobile: rising, younger
                np.full(n, 0.20),
                (0.22 - 0.08 * t) * np.exp(0.02 * (age - 41.0)),  # branch: falling, older
            ]
        ),
    )

    sex = np.where(is_female, "F", "M").astype(object)
    full_name = _full_names(rng, is_female)
    phone = _pattern_strings(rng, n, "+44 7### ######", {"#": "0123456789"})
    national_id = _pattern_strings(
        rng,
        n,
        "PP######S",
        {
            "P": NATIONAL_ID_PREFIX_LETTERS,
            "#": "0123456789",
            "S": NATIONAL_ID_SUFFIX_LETTERS,
        },
    )

    frame = pd.DataFrame(
        {
            CREDIT_ID_COLUMN: _numbered("A", n),
            CREDIT_TIME_COLUMN: (CREDIT_START + day.astype("timedelta64[D]")).astype(
                "datetime64[us]"
            ),
            "full_name": _str(full_name),
            "phone": _str(phone),
            "national_id": _str(national_id),
            "sex": _str(sex),
            "age": age,
            "annual_income": income,
            "debt_to_income": dti,
            "credit_utilisation": np.where(thin_file, np.nan, utilisation),
            "n_delinquencies_2y": delinquencies.astype(np.int64),
            "months_since_last_delinquency": months_since,
            "n_inquiries_6m": inquiries.astype(np.int64),
            "employment_years": np.where(employment_missing, np.nan, employment),
            "loan_amount": loan,
            "loan_term_months": term,
            "home_ownership": _levels(home, HOME_OWNERSHIP),
            "purpose": _levels(purpose, PURPOSES),
            "region": _levels(region, REGIONS),
            "channel": _levels(channel, CHANNELS),
            "n_open_accounts": open_accounts.astype(np.int64),
            "bureau_score": np.where(bureau_missing, np.nan, bureau),
        }
    )
    return _label(frame, credit_risk(frame), CREDIT_TARGET, CREDIT_ID_COLUMN, rng)


def make_fraud(rows: int, *, seed: int = 0) -> SyntheticData:
    """Card transactions over 2024-01-01 .. 2024-06-30 with a fraud flag.

    Most transactions are ordinary spending on a card, at daytime-heavy hours. About 1.2% come
    in short bursts on compromised cards: other merchants, larger amounts, new devices, far
    from home, at any hour. The velocity counts are computed from the card's real history in
    the table, so a burst shows up in them. The label is drawn from `fraud_risk` of the
    finished table; the hidden compromised flag never enters it.
    """
    n = _check_rows(rows)
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
        _draw_shared(rng, MERCHANT_SHARES_COMPROMISED, n),
        _draw_shared(rng, MERCHANT_SHARES_NORMAL, n),
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
    card_names = _full_names(rng, rng.random(n_cards) < 0.5)

    frame = pd.DataFrame(
        {
            FRAUD_ID_COLUMN: _numbered("T", n),
            FRAUD_TIME_COLUMN: timestamp,
            "card_id": _str(_numbered_array("C", card, _width(n_cards))),
            "cardholder_name": _str(card_names[card]),
            "amount": amount,
            "merchant_category": _levels(category, MERCHANT_CATEGORIES),
            "hour": ((seconds // 3_600) % 24).astype(np.int64),
            "device_new": device_new.astype(np.int64),
            "distance_from_home_km": distance,
            "txn_count_1h": count_1h,
            "txn_count_24h": count_24h,
            "card_present": card_present.astype(np.int64),
            "country_mismatch": country_mismatch.astype(np.int64),
        }
    )
    return _label(frame, fraud_risk(frame), FRAUD_TARGET, FRAUD_ID_COLUMN, rng)


def credit_risk(frame: pd.DataFrame) -> FloatArray:
    """True P(default_12m = 1) of each row, from the columns in `CREDIT_RISK_COLUMNS` only.

    Public so that tests and reviewers can read exactly what the label depends on, and check
    that neither protected attributes nor time are among its inputs. Terms, on the logit:
    a U-shaped utilisation curve with a soft hinge above 75%, +0.45 for a thin file (missing
    utilisation), a soft hinge in debt-to-income above 0.4, log delinquencies plus a bonus
    for a recent one, inquiries and their interaction with high utilisation, bureau score
    (the strongest, negative), log employment and log income (negative), loan-to-income,
    term, open accounts, and purpose / channel / home-ownership offsets.
    """
    util = _column(frame, "credit_utilisation")
    util_missing = np.isnan(util)
    util = np.where(util_missing, 0.35, util)
    dti = _column(frame, "debt_to_income")
    delinquencies = _column(frame, "n_delinquencies_2y")
    months_since = _column(frame, "months_since_last_delinquency")
    inquiries = _column(frame, "n_inquiries_6m")
    employment = _column(frame, "employment_years")
    employment_missing = np.isnan(employment)
    income = _column(frame, "annual_income")
    loan = _column(frame, "loan_amount")
    term = _column(frame, "loan_term_months")
    open_accounts = _column(frame, "n_open_accounts")
    bureau = _column(frame, "bureau_score")
    bureau_missing = np.isnan(bureau)

    logit = (
        CREDIT_INTERCEPT
        + 1.2 * (util - 0.35) ** 2
        + 2.2 * _soft_hinge(util - 0.75, 0.05)
        + 0.45 * util_missing
        + 3.0 * _soft_hinge(dti - 0.40, 0.05)
        + 0.55 * np.log1p(delinquencies)
        + 0.60 * np.exp(-np.nan_to_num(months_since, nan=np.inf) / 9.0)
        + 0.10 * inquiries
        + 0.90 * _soft_hinge(util - 0.60, 0.08) * np.log1p(inquiries)
        - 0.006 * (np.where(bureau_missing, 600.0, bureau) - 650.0)
        + 0.30 * bureau_missing
        - 0.25 * np.log1p(np.where(employment_missing, 0.0, employment))
        + 0.20 * employment_missing
        - 0.35 * (np.log(income) - 10.3)
        + 0.30 * np.log(loan / income)
        + 0.008 * (term - 36.0)
        - 0.15 * np.log1p(open_accounts)
        + _offsets(frame, "purpose", PURPOSE_LOGIT)
        + _offsets(frame, "channel", CHANNEL_LOGIT)
        + _offsets(frame, "home_ownership", HOME_OWNERSHIP_LOGIT)
    )
    return _expit(logit)


def fraud_risk(frame: pd.DataFrame) -> FloatArray:
    """True P(is_fraud = 1) of each row, from the columns in `FRAUD_RISK_COLUMNS` only.

    Terms, on the logit: new device, country mismatch and card-not-present (plus their
    new-device x not-present interaction), a soft hinge in log distance from home, a soft
    hinge in log amount above about 150, a smooth night-time bump centred on 03:00, log
    velocity in the last hour and day, and a merchant-category offset.
    """
    amount = _column(frame, "amount")
    hour = _column(frame, "hour")
    device_new = _column(frame, "device_new")
    distance = _column(frame, "distance_from_home_km")
    count_1h = _column(frame, "txn_count_1h")
    count_24h = _column(frame, "txn_count_24h")
    not_present = 1.0 - _column(frame, "card_present")
    mismatch = _column(frame, "country_mismatch")

    hours_from_3am = np.abs((hour - 3.0 + 12.0) % 24.0 - 12.0)
    logit = (
        FRAUD_INTERCEPT
        + 1.8 * device_new
        + 1.4 * mismatch
        + 0.8 * not_present
        + 0.6 * device_new * not_present
        + 0.6 * _soft_hinge(np.log1p(distance) - np.log(30.0), 0.5)
        + 0.9 * _soft_hinge(np.log(amount) - np.log(150.0), 0.3)
        + 1.2 * np.exp(-(hours_from_3am**2) / 8.0)
        + 1.1 * np.log1p(count_1h)
        + 0.35 * np.log1p(count_24h)
        + _offsets(frame, "merchant_category", MERCHANT_LOGIT)
    )
    return _expit(logit)


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as CSV or Parquet, chosen by the extension of `path`.

    The extension is checked before anything touches the disk, so a typo in `--out` fails
    with a message instead of leaving a file in a format nothing here can read back.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_EXTENSIONS:
        allowed = " or ".join(TABLE_EXTENSIONS)
        raise ValueError(
            f"{path}: cannot write a table with extension {path.suffix or '(none)'!r}; "
            f"use {allowed}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, engine="pyarrow", index=False)


def write_truth(data: SyntheticData, path: Path) -> None:
    """Write the id column and `true_probability`, so a model's scores can be joined to it."""
    table = pd.DataFrame(
        {data.id_column: data.frame[data.id_column], TRUTH_COLUMN: data.truth},
        index=data.frame.index,
    )
    write_table(table, path)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _check_rows(rows: int) -> int:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    return int(rows)


def _label(
    frame: pd.DataFrame, truth: FloatArray, target: str, id_column: str, rng: np.random.Generator
) -> SyntheticData:
    """Draw the label from the truth, last, so the truth is a function of the final table."""
    frame[target] = (rng.random(len(frame)) < truth).astype(np.int64)
    return SyntheticData(
        frame=frame,
        truth=pd.Series(truth, index=frame.index, name=TRUTH_COLUMN),
        id_column=id_column,
    )


def _expit(x: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=float)


def _soft_hinge(x: FloatArray, width: float) -> FloatArray:
    """A hinge max(0, x) rounded over about `width`: learnable by trees without a cliff."""
    return np.asarray(width * np.logaddexp(0.0, x / width), dtype=float)


def _column(frame: pd.DataFrame, name: str) -> FloatArray:
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


def _offsets(frame: pd.DataFrame, name: str, logits: dict[str, float]) -> FloatArray:
    """Map a categorical column to logit offsets; an unknown level would be a bug, so raise.

    Factorising first means the dictionary is consulted once per level, not once per row.
    """
    codes, levels = pd.factorize(frame[name], use_na_sentinel=False)
    unknown = sorted(str(level) for level in levels if level not in logits)
    if unknown:
        raise ValueError(f"column {name!r} has levels the risk function does not know: {unknown}")
    return np.asarray([logits[level] for level in levels], dtype=float)[codes]


def _draw_codes(rng: np.random.Generator, weights: FloatArray) -> IntArray:
    """One categorical draw per row from row-specific weights (n, k), vectorised."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    codes = (u[:, None] >= cumulative).sum(axis=1)
    return np.minimum(codes, weights.shape[1] - 1).astype(np.int64)


def _draw_shared(rng: np.random.Generator, shares: tuple[float, ...], n: int) -> IntArray:
    """n categorical draws from one set of shares: a search in one cumulative table."""
    cumulative = np.cumsum(shares)
    codes = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    return np.minimum(codes, len(shares) - 1).astype(np.int64)


def _levels(codes: IntArray, levels: tuple[str, ...]) -> pd.Series:
    return _str(np.asarray(levels, dtype=object)[codes])


def _str(values: np.ndarray) -> pd.Series:
    """A pandas string column: the dtype pandas itself infers for text, whatever the version."""
    return pd.Series(values, dtype="str")


def _full_names(rng: np.random.Generator, is_female: np.ndarray) -> np.ndarray:
    """'First I. Last' built from arrays of parts: no per-row Python, few repeats."""
    n = len(is_female)
    first_f = np.asarray(FIRST_NAMES_F, dtype=object)[rng.integers(0, len(FIRST_NAMES_F), n)]
    first_m = np.asarray(FIRST_NAMES_M, dtype=object)[rng.integers(0, len(FIRST_NAMES_M), n)]
    initial = np.asarray(list(INITIALS), dtype=object)[rng.integers(0, len(INITIALS), n)]
    last = np.asarray(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n)]
    first = np.where(is_female, first_f, first_m)
    return np.asarray(first + " " + initial + ". " + last, dtype=object)


def _pattern_strings(
    rng: np.random.Generator, n: int, pattern: str, alphabets: dict[str, str]
) -> np.ndarray:
    """Fill each placeholder character of `pattern` with a random character of its alphabet.

    Built as an (n, len(pattern)) byte matrix and viewed as fixed-width strings, so a million
    phone numbers cost one random draw per placeholder position, not a million f-strings.
    """
    matrix = np.tile(np.frombuffer(pattern.encode("ascii"), dtype=np.uint8), (n, 1))
    for placeholder, alphabet in alphabets.items():
        positions = [i for i, char in enumerate(pattern) if char == placeholder]
        table = np.frombuffer(alphabet.encode("ascii"), dtype=np.uint8)
        matrix[:, positions] = table[rng.integers(0, len(table), size=(n, len(positions)))]
    return _bytes_to_str(matrix)


def _width(count: int) -> int:
    return max(7, len(str(count)))


def _numbered(prefix: str, n: int) -> pd.Series:
    """Unique ids in row order: prefix + zero-padded 1-based number (A0000001, ...)."""
    return _str(_numbered_array(prefix, np.arange(n, dtype=np.int64), _width(n)))


def _numbered_array(prefix: str, numbers: IntArray, width: int) -> np.ndarray:
    """prefix + zero-padded (numbers + 1), built digit by digit as a byte matrix."""
    values = numbers.astype(np.int64) + 1
    matrix = np.empty((len(values), len(prefix) + width), dtype=np.uint8)
    matrix[:, : len(prefix)] = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    matrix[:, len(prefix) :] = (values[:, None] // powers) % 10 + ord("0")
    return _bytes_to_str(matrix)


def _bytes_to_str(matrix: np.ndarray) -> np.ndarray:
    width = matrix.shape[1]
    fixed = np.ascontiguousarray(matrix).view(f"S{width}").ravel()
    return np.asarray(fixed.astype(f"U{width}"), dtype=object)


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

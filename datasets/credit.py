"""Synthetic credit applications over 2023-2024 and their true 12-month default probability.

`make_credit` draws the applications: a hidden creditworthiness factor drives bureau score,
utilisation, delinquencies, inquiries, debt-to-income and income together, as in bureau
data; thin files, missing values and a gently drifting population (utilisation and the
mobile-app channel rise) are as in real data. `credit_risk` is the public function the
label is drawn from; it reads the `CREDIT_RISK_COLUMNS` only, never `sex`, `age` or time.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from datasets.base import FloatArray, SyntheticData, check_rows, draw_label
from datasets.draws import (
    as_str,
    decode,
    draw_codes,
    draw_shared,
    full_names,
    numbered,
    pattern_strings,
)
from datasets.risk import expit, float_column, level_offsets, soft_hinge

__all__ = [
    "CHANNELS",
    "CREDIT_ID_COLUMN",
    "CREDIT_PII",
    "CREDIT_PROTECTED",
    "CREDIT_RISK_COLUMNS",
    "CREDIT_TARGET",
    "CREDIT_TIME_COLUMN",
    "HOME_OWNERSHIP",
    "LOAN_TERMS",
    "PURPOSES",
    "REGIONS",
    "credit_risk",
    "make_credit",
]

# --------------------------------------------------------------------------------------------
# Names and levels. Tuples, so that the order (and therefore the seeded draws) never changes.
# --------------------------------------------------------------------------------------------

CREDIT_ID_COLUMN: Final = "application_id"
CREDIT_TIME_COLUMN: Final = "application_date"
CREDIT_TARGET: Final = "default_12m"
CREDIT_PII: Final = ("full_name", "phone", "national_id")
CREDIT_PROTECTED: Final = ("sex", "age")
CREDIT_START: Final = np.datetime64("2023-01-01", "D")
CREDIT_DAYS: Final = 731  # 2023-01-01 .. 2024-12-31 inclusive

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


def make_credit(rows: int, *, seed: int = 0) -> SyntheticData:
    """Credit applications over 2023-2024 with a 12-month default flag.

    A hidden creditworthiness factor drives bureau score, utilisation, delinquencies,
    inquiries, debt-to-income and income together, so the features are correlated the way
    bureau data is. The label is then drawn from `credit_risk` of the finished table, after
    rounding and missing values, so the truth is exactly a function of what a model sees.
    """
    n = check_rows(rows)
    rng = np.random.default_rng(seed)

    day = np.sort(rng.integers(0, CREDIT_DAYS, size=n))
    t = day / (CREDIT_DAYS - 1)  # 0 at the start, 1 at the end: drives population drift
    quality = rng.standard_normal(n)

    age = np.clip(np.rint(rng.normal(41.0, 13.0, size=n)), 18, 80).astype(np.int64)
    is_female = rng.random(n) < 0.49
    adult_years = (age - 17).astype(float)

    thin_file = rng.random(n) < expit(-0.55 - 0.11 * (age - 18.0))

    employment = adult_years * rng.beta(1.4, 3.2, size=n) * np.exp(0.15 * quality)
    employment = np.round(np.minimum(employment, adult_years), 1)
    employment_missing = rng.random(n) < 0.05

    region = draw_shared(rng, REGION_SHARES, n)
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
    utilisation = 1.2 * expit(util_logit + 0.9 * rng.standard_normal(n))
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

    purpose = draw_shared(rng, PURPOSE_SHARES, n)
    loan = (
        np.asarray(PURPOSE_LOAN_MEDIAN)[purpose]
        * np.sqrt(income / 30_000.0)
        * np.exp(0.5 * rng.standard_normal(n))
    )
    loan = np.clip(np.round(loan / 50.0) * 50.0, 500.0, 100_000.0)
    term_index = np.rint(1.6 + 0.9 * np.log(loan / 8_000.0) + 0.9 * rng.standard_normal(n))
    term = np.asarray(LOAN_TERMS, dtype=np.int64)[np.clip(term_index, 0, 4).astype(np.int64)]

    years_adult = np.minimum(age - 18.0, 30.0)
    home = draw_codes(
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
    channel = draw_codes(
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
    full_name = full_names(rng, is_female)
    phone = pattern_strings(rng, n, "+44 7### ######", {"#": "0123456789"})
    national_id = pattern_strings(
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
            CREDIT_ID_COLUMN: numbered("A", n),
            CREDIT_TIME_COLUMN: (CREDIT_START + day.astype("timedelta64[D]")).astype(
                "datetime64[us]"
            ),
            "full_name": as_str(full_name),
            "phone": as_str(phone),
            "national_id": as_str(national_id),
            "sex": as_str(sex),
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
            "home_ownership": decode(home, HOME_OWNERSHIP),
            "purpose": decode(purpose, PURPOSES),
            "region": decode(region, REGIONS),
            "channel": decode(channel, CHANNELS),
            "n_open_accounts": open_accounts.astype(np.int64),
            "bureau_score": np.where(bureau_missing, np.nan, bureau),
        }
    )
    return draw_label(frame, credit_risk(frame), CREDIT_TARGET, CREDIT_ID_COLUMN, rng)


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
    util = float_column(frame, "credit_utilisation")
    util_missing = np.isnan(util)
    util = np.where(util_missing, 0.35, util)
    dti = float_column(frame, "debt_to_income")
    delinquencies = float_column(frame, "n_delinquencies_2y")
    months_since = float_column(frame, "months_since_last_delinquency")
    inquiries = float_column(frame, "n_inquiries_6m")
    employment = float_column(frame, "employment_years")
    employment_missing = np.isnan(employment)
    income = float_column(frame, "annual_income")
    loan = float_column(frame, "loan_amount")
    term = float_column(frame, "loan_term_months")
    open_accounts = float_column(frame, "n_open_accounts")
    bureau = float_column(frame, "bureau_score")
    bureau_missing = np.isnan(bureau)

    logit = (
        CREDIT_INTERCEPT
        + 1.2 * (util - 0.35) ** 2
        + 2.2 * soft_hinge(util - 0.75, 0.05)
        + 0.45 * util_missing
        + 3.0 * soft_hinge(dti - 0.40, 0.05)
        + 0.55 * np.log1p(delinquencies)
        + 0.60 * np.exp(-np.nan_to_num(months_since, nan=np.inf) / 9.0)
        + 0.10 * inquiries
        + 0.90 * soft_hinge(util - 0.60, 0.08) * np.log1p(inquiries)
        - 0.006 * (np.where(bureau_missing, 600.0, bureau) - 650.0)
        + 0.30 * bureau_missing
        - 0.25 * np.log1p(np.where(employment_missing, 0.0, employment))
        + 0.20 * employment_missing
        - 0.35 * (np.log(income) - 10.3)
        + 0.30 * np.log(loan / income)
        + 0.008 * (term - 36.0)
        - 0.15 * np.log1p(open_accounts)
        + level_offsets(frame, "purpose", PURPOSE_LOGIT)
        + level_offsets(frame, "channel", CHANNEL_LOGIT)
        + level_offsets(frame, "home_ownership", HOME_OWNERSHIP_LOGIT)
    )
    return expit(logit)

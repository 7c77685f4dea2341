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

Like `sklearn.datasets`, one package holds the generators, re-exported here: `credit`
(`make_credit`, `credit_risk`), `fraud` (`make_fraud`, `fraud_risk`), `io` (`write_table`,
`write_truth`), with the `SyntheticData` result and the shared pieces in `base` and
`draws`. It imports nothing from the rest of creditgov, so any part may use it.
"""

from datasets.base import TRUTH_COLUMN, SyntheticData
from datasets.credit import (
    CHANNELS,
    CREDIT_ID_COLUMN,
    CREDIT_PII,
    CREDIT_PROTECTED,
    CREDIT_RISK_COLUMNS,
    CREDIT_TARGET,
    CREDIT_TIME_COLUMN,
    HOME_OWNERSHIP,
    LOAN_TERMS,
    PURPOSES,
    REGIONS,
    credit_risk,
    make_credit,
)
from datasets.fraud import (
    FRAUD_ID_COLUMN,
    FRAUD_PII,
    FRAUD_RISK_COLUMNS,
    FRAUD_TARGET,
    FRAUD_TIME_COLUMN,
    MERCHANT_CATEGORIES,
    fraud_risk,
    make_fraud,
)
from datasets.io import TABLE_EXTENSIONS, write_table, write_truth

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

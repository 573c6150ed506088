"""The churn-risk model: features from snapshots and engagement, training, backtest, and each customer's risk.

The package itself stays light: numpy and scikit-learn come with service, features and model, imported by what
trains or scores, so the app and `customer-tracking`'s other commands start without them (scikit-learn alone
took every process 0.8 s and 100 MB).
"""

HORIZON = 30  # a label says "churned within the next 30 days"
STEP = 14  # days between the as-of dates a training set samples
DATES = 12  # as-of dates per training set: about half a year of history


class NotEnoughData(Exception):
    """Nothing (or only one outcome) to learn from."""

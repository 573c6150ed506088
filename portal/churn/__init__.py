"""The churn-risk model: features from snapshots and engagement, training, backtest, and each customer's risk."""
from .service import train_job

__all__ = ["train_job"]

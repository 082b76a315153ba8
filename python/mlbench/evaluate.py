"""One judge for both languages: metrics computed from the predictions each task saved."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from scipy import stats
    from sklearn import metrics

    residuals = y_true - y_pred
    mse = metrics.mean_squared_error(y_true, y_pred)
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": metrics.mean_absolute_error(y_true, y_pred),
        "r2": metrics.r2_score(y_true, y_pred),
        "mape": metrics.mean_absolute_percentage_error(y_true, y_pred),
        "explained_variance": metrics.explained_variance_score(y_true, y_pred),
        "residual_std": float(np.std(residuals, ddof=1)),
        "residual_skew": float(stats.skew(residuals)),
        "residual_kurtosis": float(stats.kurtosis(residuals)),  # Fisher: 0 for a normal
    }


EVALUATORS: dict[str, Callable[[np.ndarray, np.ndarray], dict[str, float]]] = {
    "regression": regression_metrics,
}


class EvaluationError(ValueError):
    """Predictions that cannot be judged (wrong shape, NaN or infinite values)."""


def evaluate(kind: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    if y_pred.shape != y_true.shape:
        raise EvaluationError(f"predictions have shape {y_pred.shape}, expected {y_true.shape}")
    if not np.all(np.isfinite(y_pred)):
        raise EvaluationError(f"{int(np.sum(~np.isfinite(y_pred)))} predictions are NaN or infinite")
    return {k: float(v) for k, v in EVALUATORS[kind](y_true, y_pred).items()}

"""The shared evaluator, against values computed by hand."""

import numpy as np
import pytest

from mlbench.evaluate import EvaluationError, Judged, evaluate


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    case = Judged(X_train=np.zeros((len(y_true), 1)), y_train=y_true, y_test=y_true, predictions=y_pred)
    return evaluate("regression", case)


def test_regression_metrics_known_values() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.0, 2.0, 3.0, 5.0])
    m = regression(y_true, y_pred)
    assert m["mse"] == pytest.approx(0.25)
    assert m["rmse"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(0.25)
    assert m["r2"] == pytest.approx(1 - 1.0 / 5.0)  # SS_res = 1, SS_tot = 5
    assert m["mape"] == pytest.approx(0.25 / 4)
    # residuals (0, 0, 0, -1): mean -0.25, explained variance 1 - var(res)/var(y) = 1 - 0.1875/1.25
    assert m["explained_variance"] == pytest.approx(1 - 0.1875 / 1.25)
    assert m["residual_std"] == pytest.approx(np.sqrt(0.25))


def test_non_finite_predictions_are_refused() -> None:
    with pytest.raises(EvaluationError, match="NaN or infinite"):
        regression(np.ones(3), np.array([1.0, np.nan, 1.0]))


def test_wrong_shape_is_refused() -> None:
    with pytest.raises(EvaluationError, match="shape"):
        regression(np.ones(3), np.ones(4))

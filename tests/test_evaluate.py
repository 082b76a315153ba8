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


def classification(y_true: list[int], y_pred: list[int], ovo: list[list[float]] | None = None) -> dict:
    y = np.array(y_true)
    case = Judged(X_train=np.zeros((len(y), 1)), y_train=y, y_test=y, predictions=np.array(y_pred, dtype=float),
                  scores=None if ovo is None else np.array(ovo, dtype=float))
    return evaluate("classification", case)


def test_binary_classification_known_values() -> None:
    # TP 2 (positions 2, 3), FP 1 (position 1), FN 1 (position 4), TN 1
    m = classification([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ovo=[[2.0], [-1.5], [-1.0], [-2.0], [0.5]])
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # class-1 scores are the negated pair values: positives (1, 2, -0.5), negatives (-2, 1.5):
    # 4 of the 6 positive/negative pairs are ordered right
    assert m["auc_roc"] == pytest.approx(4 / 6)
    # ranked 2(+) 1.5(-) 1(+) -0.5(+) -2(-): AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/4 = 29/36
    assert m["auc_pr"] == pytest.approx(29 / 36)


def test_multiclass_macro_metrics_and_auc_through_one_vs_one_votes() -> None:
    # per class: 0 -> P 1, R 1; 1 -> P 0, R 0; 2 -> P 1/2, R 1/2 (macro 1/2 each)
    # pairs (0,1), (0,2), (1,2), positive = the pair's lower class; |value| 1 everywhere, so the
    # one-vs-rest scores rank as the votes: sample votes (c0, c1, c2) = (2,1,0), (1,2,0), (1,0,2), (1,2,0)
    ovo = [[1, 1, 1], [-1, 1, 1], [1, -1, -1], [-1, 1, 1]]
    m = classification([0, 1, 2, 2], [0, 2, 2, 1], ovo=ovo)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    # class 0: AUC 1, AP 1; class 1: positive 2 vs negatives (1, 0, 2): 2.5/3, AP 1/2;
    # class 2: positives (2, 0) vs negatives (0, 0): 3/4, AP 1/2 * 1 + 1/2 * 1/2 = 3/4
    assert m["auc_roc"] == pytest.approx((1 + 2.5 / 3 + 3 / 4) / 3)
    assert m["auc_pr"] == pytest.approx((1 + 1 / 2 + 3 / 4) / 3)


def test_classification_without_decision_values_has_no_auc() -> None:
    m = classification([0, 1, 1], [0, 1, 0])
    assert m["auc_roc"] is None and m["auc_pr"] is None


def clustering(points: list[float], labels: list[int], truth: list[int]) -> dict:
    case = Judged(X_train=np.array(points, dtype=float).reshape(-1, 1), y_train=np.array(truth),
                  y_test=np.zeros(1), predictions=np.array(labels, dtype=float))
    return evaluate("clustering", case)


def test_clustering_metrics_known_values() -> None:
    # two clusters {0, 1} and {10, 11}: centroids 0.5 and 10.5, overall mean 5.5
    m = clustering([0, 1, 10, 11], [0, 0, 1, 1], [0, 0, 1, 1])
    assert m["n_clusters"] == 2 and m["noise_fraction"] == 0
    assert m["inertia"] == pytest.approx(1.0)  # 4 x 0.5^2
    # silhouette: (10.5 - 1)/10.5 for the outer points, (9.5 - 1)/9.5 for the inner ones
    assert m["silhouette"] == pytest.approx((9.5 / 10.5 + 8.5 / 9.5) / 2)
    # between 2 x 25 + 2 x 25 = 100 over k - 1 = 1; within 1 over n - k = 2
    assert m["calinski_harabasz"] == pytest.approx(200.0)
    # scatter 0.5 per cluster, centroids 10 apart: (0.5 + 0.5) / 10
    assert m["davies_bouldin"] == pytest.approx(0.1)
    assert m["adjusted_rand"] == pytest.approx(1.0) and m["normalized_mutual_info"] == pytest.approx(1.0)


def test_clustering_against_an_independent_truth() -> None:
    # contingency all ones: sum C(n_ij, 2) = 0, expected 2 x 2 / 6, max 2: ARI = -2/3 / (4/3) = -1/2
    m = clustering([0, 1, 10, 11], [0, 0, 1, 1], [0, 1, 0, 1])
    assert m["adjusted_rand"] == pytest.approx(-0.5)
    assert m["normalized_mutual_info"] == pytest.approx(0.0)


def test_noise_points_are_left_out_of_internal_metrics() -> None:
    # DBSCAN's -1: one of five points is noise; the rest is the known two-cluster case
    m = clustering([0, 1, 10, 11, 50], [0, 0, 1, 1, -1], [0, 0, 1, 1, 1])
    assert m["noise_fraction"] == pytest.approx(0.2) and m["n_clusters"] == 2
    assert m["inertia"] == pytest.approx(1.0) and m["calinski_harabasz"] == pytest.approx(200.0)


def test_one_cluster_has_no_internal_metrics() -> None:
    m = clustering([0, 1, 2], [0, 0, 0], [0, 0, 1])
    assert m["silhouette"] is None and m["calinski_harabasz"] is None and m["davies_bouldin"] is None
    assert m["inertia"] == pytest.approx(2.0)  # (1 + 0 + 1) around the mean 1


def test_probabilities_give_log_loss_and_brier_by_hand() -> None:
    """Three classes, two test points: log loss is the mean -log p(true class); Brier the mean squared
    distance of the probability vector to the one-hot label."""
    case = Judged(X_train=np.zeros((3, 1)), y_train=np.array([0, 1, 2]), y_test=np.array([0, 2]),
                  predictions=np.array([0.0, 2.0]), probabilities=np.array([[0.7, 0.2, 0.1], [0.1, 0.4, 0.5]]))
    m = evaluate("classification", case)
    assert m["log_loss"] == pytest.approx(-(np.log(0.7) + np.log(0.5)) / 2)
    assert m["brier"] == pytest.approx(((0.09 + 0.04 + 0.01) + (0.01 + 0.16 + 0.25)) / 2)
    wrong = Judged(X_train=case.X_train, y_train=case.y_train, y_test=case.y_test, predictions=case.predictions,
                   probabilities=np.ones((2, 2)) / 2)
    with pytest.raises(EvaluationError, match="probabilities have shape"):
        evaluate("classification", wrong)

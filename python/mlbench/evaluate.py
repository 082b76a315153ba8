"""One judge for both languages: metrics computed from the outputs each task saved.

The judging registry `KINDS` says, per kind of task, which outputs a record must carry, its metrics,
the primary metric and its direction, and how two sides' outputs are compared. Kinds: `regression`
(real-valued predictions on the test set), `classification` (labels on the test set, plus one-vs-one
decision values, LIBSVM's pair order and sign, or the test logits of a training task), `clustering`
(labels of the training set, judged against the features and the ground truth), `rollout` (an
environment stepped through a rollouts set's actions: the episodes it completed, judged from the
outputs alone, since both sides replay the same actions from the same starts), `agent` (an agent
trained on an environment: its episodes' returns against the environment's success threshold),
`generation` and `sampled_generation` (a language model's tokens and held-out NLL), `encoding_labels`,
`encoding_spans` and `embedding` (an encoder's head outputs, judged against the Python side's). The runner writes
each job's kind and primary metric into the run's meta.json; stats reads them from there.

A cross-validated job (`cv_folds: k`) saves out-of-fold outputs, one per training row; `evaluate_folds`
judges each fold's held-out rows as a test set of its own and reports the mean over folds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Judged:
    """What the evaluator needs: the split's arrays and one repetition's saved outputs."""

    X_train: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray | None = None
    logits: np.ndarray | None = None  # training tasks: the test set's logits (n x classes)
    probabilities: np.ndarray | None = None  # Platt-scaled SVMs: class probabilities (n x classes, sorted)


class EvaluationError(ValueError):
    """Predictions that cannot be judged (wrong shape, NaN or infinite values)."""


def regression_metrics(case: Judged) -> dict[str, float | None]:
    from scipy import stats
    from sklearn import metrics

    y_true, y_pred = case.y_test, case.predictions
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


def ovr_scores(ovo: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class scores from one-vs-one decision values (positive: the pair's lower class), the
    transformation scikit-learn's SVC applies for decision_function_shape='ovr'."""
    from sklearn.utils.multiclass import _ovr_decision_function

    if n_classes == 2:
        return -ovo[:, 0]  # the score of class 1
    return _ovr_decision_function(ovo < 0, -ovo, n_classes)


def classification_metrics(case: Judged) -> dict[str, float | None]:
    from sklearn import metrics
    from sklearn.preprocessing import label_binarize

    classes = np.unique(case.y_train)
    y_true, y_pred = case.y_test, case.predictions.astype(np.int64)
    average = "binary" if len(classes) == 2 else "macro"
    out: dict[str, float | None] = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "f1": metrics.f1_score(y_true, y_pred, average=average, zero_division=0),
        "precision": metrics.precision_score(y_true, y_pred, average=average, zero_division=0),
        "recall": metrics.recall_score(y_true, y_pred, average=average, zero_division=0),
        "auc_roc": None,
        "auc_pr": None,
    }
    if case.logits is not None:
        out["test_loss"] = cross_entropy(case.logits, y_true)
    if case.probabilities is not None:
        onehot = (y_true[:, None] == classes[None, :]).astype(np.float64)
        out["log_loss"] = metrics.log_loss(y_true, case.probabilities, labels=classes)
        out["brier"] = float(np.mean(np.sum((case.probabilities - onehot) ** 2, axis=1)))
    if case.scores is not None:
        scores = ovr_scores(case.scores.reshape(len(y_true), -1), len(classes))
        if len(classes) == 2:
            out["auc_roc"] = metrics.roc_auc_score(y_true, scores)
            out["auc_pr"] = metrics.average_precision_score(y_true, scores)
        else:  # one-vs-rest, macro-averaged
            onehot = label_binarize(y_true, classes=classes)
            out["auc_roc"] = metrics.roc_auc_score(onehot, scores, average="macro")
            out["auc_pr"] = metrics.average_precision_score(onehot, scores, average="macro")
    return out


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of integer labels under softmax(logits), computed stably in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_softmax = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(y)), y].mean())


def within_cluster_sum_of_squares(X: np.ndarray, labels: np.ndarray) -> float:
    """k-means inertia: squared distances to each cluster's mean, noise (-1) left out."""
    total = 0.0
    for label in np.unique(labels[labels >= 0]):
        members = X[labels == label]
        total += float(np.sum((members - members.mean(axis=0)) ** 2))
    return total


def clustering_metrics(case: Judged) -> dict[str, float | None]:
    from sklearn import metrics

    labels = case.predictions.astype(np.int64)
    clustered = labels >= 0  # DBSCAN's noise is -1 on both sides
    n_clusters = len(np.unique(labels[clustered]))
    internal_ok = 2 <= n_clusters < int(clustered.sum())
    X, lab = case.X_train[clustered], labels[clustered]
    return {
        "n_clusters": float(n_clusters),
        "noise_fraction": float(1 - clustered.mean()),
        "silhouette": metrics.silhouette_score(X, lab) if internal_ok else None,
        "calinski_harabasz": metrics.calinski_harabasz_score(X, lab) if internal_ok else None,
        "davies_bouldin": metrics.davies_bouldin_score(X, lab) if internal_ok else None,
        "inertia": within_cluster_sum_of_squares(case.X_train, labels),
        "adjusted_rand": metrics.adjusted_rand_score(case.y_train, labels),
        "normalized_mutual_info": metrics.normalized_mutual_info_score(case.y_train, labels),
    }


def rollout_metrics(returns: np.ndarray, lengths: np.ndarray) -> dict[str, float | None]:
    """The episodes a rollout completed (its unfinished last episodes are not counted)."""
    return {
        "episodes": float(len(returns)),
        "mean_return": float(np.mean(returns)) if len(returns) else None,
        "std_return": float(np.std(returns)) if len(returns) else None,
        "mean_length": float(np.mean(lengths)) if len(lengths) else None,
        "max_return": float(np.max(returns)) if len(returns) else None,
    }


def evaluate_rollout(outputs: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, float | None]:
    """A rollout's episodes (`meta`, the rollouts set's, is not needed: the same actions from the same
    starts must give the same episodes on any environment)."""
    returns, lengths = outputs["returns"], outputs["lengths"]
    if returns.ndim != 1 or returns.shape != lengths.shape:
        raise EvaluationError(f"returns {returns.shape} and lengths {lengths.shape} are not one value per episode")
    if not np.all(np.isfinite(returns)) or np.any(lengths < 1):
        raise EvaluationError("episode returns are NaN or infinite, or an episode has no step")
    return rollout_metrics(returns, lengths)


def evaluate_agent(outputs: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, float | None]:
    """A trained agent's episodes (mlbench.agents.metrics) against the success threshold of the
    rollouts set's environment (`meta`), after the checks every output gets."""
    from mlbench.agents import metrics

    returns, lengths, ends = outputs["returns"], outputs["lengths"], outputs["episode_ends"]
    if not (returns.ndim == 1 and returns.shape == lengths.shape == ends.shape):
        raise EvaluationError(f"returns {returns.shape}, lengths {lengths.shape} and episode_ends {ends.shape} are "
                              "not one value per episode")
    if not np.all(np.isfinite(returns)) or np.any(lengths < 1) or np.any(np.diff(ends) < 1):
        raise EvaluationError("episode returns are NaN or infinite, an episode has no step, or the end steps "
                              "do not increase")
    if "losses" in outputs and not np.all(np.isfinite(outputs["losses"])):
        raise EvaluationError(f"{int(np.sum(~np.isfinite(outputs['losses'])))} update losses are NaN or infinite")
    return metrics(outputs, meta["environment"])


def evaluate_generation(outputs: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, float | None]:
    """A language model's generation (mlbench.generation): its generated ids lie in the vocabulary
    of the set's model (`meta`), and its perplexity of the held-out sequence is exp of the mean
    next-token negative log-likelihood."""
    tokens, nll = outputs["tokens"], outputs["nll"]
    if tokens.ndim != 2 or tokens.size == 0 or np.any(tokens < 0) or np.any(tokens >= meta["vocab_size"]):
        raise EvaluationError(f"generated tokens of shape {tokens.shape} are not batch x new tokens of ids in "
                              f"0..{meta['vocab_size'] - 1}")
    if nll.ndim != 1 or nll.size == 0 or not np.all(np.isfinite(nll)) or np.any(nll < 0):
        raise EvaluationError(f"held-out NLLs of shape {nll.shape} are empty, negative, NaN or infinite")
    mean = float(np.mean(nll))
    return {"mean_nll": mean, "perplexity": float(np.exp(mean)), "tokens_scored": float(nll.size),
            "tokens_generated": float(tokens.size)}


def evaluate_encoding(outputs: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, float | None]:
    """An encoder head's outputs (mlbench.encoding): finite floats. The head is seeded, not trained,
    so nothing is judged against labels: the quality figure is the output's distance from the Python
    side's (stats.output_error), the one figure that says both sides computed the same function."""
    values = outputs["outputs"]
    if values.ndim not in (2, 3) or values.size == 0 or not np.all(np.isfinite(values)):
        raise EvaluationError(f"encoder outputs of shape {values.shape} are empty, of the wrong rank, NaN or "
                              "infinite")
    return {"output_max_abs": float(np.max(np.abs(values)))}


@dataclass(frozen=True)
class Kind:
    """How one kind of task is judged."""

    metrics: Callable[[Judged], dict[str, float | None]]
    target: str  # the labels the predictions line up with: y_test, y_train (clustering), or none (rollout)
    outputs: tuple[str, ...]  # the artifacts a record must carry (`predictions`); optional extras in `optional`
    optional: tuple[str, ...]
    primary: str  # the metric that decides whether two sides reached the same quality
    higher_is_better: bool
    agreement: str  # how two sides' outputs are compared (stats.agreement)
    # A kind judged from its outputs alone (target none): the metrics of (outputs, the dataset's meta).
    from_outputs: Callable[[dict[str, np.ndarray], dict[str, Any]], dict[str, float | None]] | None = None


KINDS: dict[str, Kind] = {
    "regression": Kind(regression_metrics, "y_test", ("predictions",), (), "r2", True,
                       "none (real values: the R2 gap is the quality rule)"),
    "classification": Kind(classification_metrics, "y_test", ("predictions",), ("scores", "logits", "probabilities"),
                           "accuracy",
                           True, "share of test points given the same label"),
    "clustering": Kind(clustering_metrics, "y_train", ("predictions",), (), "adjusted_rand", True,
                       "adjusted Rand index between the two labellings"),
    # Same actions from the same starts: any difference in the episodes is a different environment.
    "rollout": Kind(lambda case: {}, "none", ("returns", "lengths"), ("final_observations",), "mean_return", True,
                    "share of episodes with the same return, in order", evaluate_rollout),
    # A trained agent, one seed per repetition: its final return over seeds is a distribution, so two
    # sides are the same quality when the bootstrap CIs of their interquartile means overlap (stats).
    "agent": Kind(lambda case: {}, "none", ("returns", "lengths", "episode_ends"), ("losses", "actions"),
                  "final_return", True, "share of steps with the same action, in order", evaluate_agent),
    # Greedy generation from the same weights and prompts: each side's held-out NLL (its perplexity's
    # log) says its quality; the generated ids are compared position by position.
    "generation": Kind(lambda case: {}, "none", ("tokens", "nll"), ("decode_steps",), "mean_nll", False,
                       "share of generated tokens equal to the Python side's, position by position",
                       evaluate_generation),
    # Sampled generation: the held-out NLL judges quality as above; the tokens come from each side's
    # own random generator, so they are not compared.
    "sampled_generation": Kind(lambda case: {}, "none", ("tokens", "nll"), ("decode_steps",), "mean_nll", False,
                               "none: each side samples with its own random generator (not comparable)",
                               evaluate_generation),
    # An encoder with a seeded head (mlbench.encoding): quality is the largest difference from the
    # Python side's outputs relative to their largest magnitude (stats.output_error), never accuracy.
    "encoding_labels": Kind(lambda case: {}, "none", ("outputs",), (), "output_error", False,
                            "share of argmax labels (per sequence, or per token) equal to the Python side's",
                            evaluate_encoding),
    "encoding_spans": Kind(lambda case: {}, "none", ("outputs",), (), "output_error", False,
                           "share of answer spans (the best start <= end within 30 tokens) equal to the Python "
                           "side's", evaluate_encoding),
    "embedding": Kind(lambda case: {}, "none", ("outputs",), (), "output_error", False,
                      "share of sentences whose CLS and mean embeddings both have cosine >= 0.9999 with the "
                      "Python side's", evaluate_encoding),
}


def evaluate(kind: str, case: Judged) -> dict[str, float | None]:
    metric_fn, target = KINDS[kind].metrics, KINDS[kind].target
    expected = getattr(case, target).shape
    if case.predictions.shape != expected:
        raise EvaluationError(f"predictions have shape {case.predictions.shape}, expected {expected}")
    if not np.all(np.isfinite(case.predictions)):
        raise EvaluationError(f"{int(np.sum(~np.isfinite(case.predictions)))} predictions are NaN or infinite")
    if case.logits is not None and (case.logits.shape[0] != len(case.y_test) or not np.all(np.isfinite(case.logits))):
        raise EvaluationError(f"logits have shape {case.logits.shape} or non-finite values")
    if case.scores is not None and not np.all(np.isfinite(case.scores)):
        raise EvaluationError("decision values contain NaN or infinite values")
    if case.probabilities is not None:
        n_classes = len(np.unique(case.y_train))
        if case.probabilities.shape != (len(case.y_test), n_classes) or not np.all(np.isfinite(case.probabilities)):
            raise EvaluationError(f"probabilities have shape {case.probabilities.shape} (expected "
                                  f"{(len(case.y_test), n_classes)}) or non-finite values")
    return {k: None if v is None else float(v) for k, v in metric_fn(case).items()}


def evaluate_folds(kind: str, X_train: np.ndarray, y_train: np.ndarray, folds: np.ndarray,
                   outputs: dict[str, np.ndarray]) -> tuple[dict[str, float | None], dict[str, list[float | None]]]:
    """Out-of-fold outputs (one row per training row) judged fold by fold: the mean over folds of
    each metric (None where a fold has none), and every fold's value in fold order."""
    if KINDS[kind].target != "y_test":
        raise EvaluationError(f"{kind} outputs cannot be cross-validated")
    for name, values in outputs.items():
        if len(values) != len(y_train):
            raise EvaluationError(f"out-of-fold {name} have {len(values)} rows for {len(y_train)} training rows")
    per_fold: dict[str, list[float | None]] = {}
    for fold in range(int(folds.max()) + 1):
        held = folds == fold
        case = Judged(X_train=X_train[~held], y_train=y_train[~held], y_test=y_train[held],
                      **{name: values[held] for name, values in outputs.items()})
        for metric, value in evaluate(kind, case).items():
            per_fold.setdefault(metric, []).append(value)
    means = {metric: None if any(v is None for v in values) else float(np.mean([v for v in values if v is not None]))
             for metric, values in per_fold.items()}
    return means, per_fold

"""ImageAttributionBench metrics: which generator made each image, scored per class and per semantic.

An `evaluate` module, loadable offline from its folder::

    metric = evaluate.load("harness/metrics/attribution_metrics")
    metric.compute(predictions=..., references=..., scores=..., semantics=..., labels=[...])
    metric.compute(predictions=..., references=...)  # as evaluate.evaluator / combine call it

Only `predictions` and `references` are required: the metrics that need `scores` (macro AUROC,
mean AP, open-set AUROC) are None without them, per-semantic accuracy is None without
`semantics`, and labels default to their ids ("0", "1", ...).

Computed with numpy only; AUROC and average precision follow scikit-learn's definitions exactly
(mid-rank ties; step-wise AP without interpolation), so numbers match sklearn to float precision.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """\
Attribution metrics for ImageAttributionBench: accuracy, macro F1, one-vs-rest macro AUROC, mean
average precision, per-class recall, per-semantic accuracy and the confusion matrix. With
`known_labels` (the open-set protocol) it also reports the accuracy on images from known
generators (`known_accuracy`), how well the maximum softmax probability over the known labels
separates images from unknown generators (`auroc_unknown`), and the Open-Set Classification Rate
(`oscr`, Dhamija et al. 2018: the area under correct known classifications against accepted
unknown images, over every rejection threshold); with a `rejection_threshold` also the rejections
at that threshold. All scores are fractions in [0, 1].
"""

_CITATION = """\
@misc{imageattributionbench,
  title         = {ImageAttributionBench: How Far Are We from Generalizable Attribution?},
  author        = {Mou, Tingshu and others},
  year          = {2026},
  eprint        = {2605.12967},
  archivePrefix = {arXiv},
  primaryClass  = {cs.CV},
  url           = {https://arxiv.org/abs/2605.12967}
}
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list[int]`): predicted label id per sample.
    references (`list[int]`): true label id per sample.
    scores (`list[list[float]]`, *optional*): per sample, the model's probability for every
        label, in the order of `labels` (length `len(labels)`); without them macro_auroc,
        mean_ap and auroc_unknown are None.
    semantics (`list[str]`, *optional*): per sample, its semantic subclass (e.g. "cat",
        "FFHQ"); without them per_semantic_accuracy is None.
    labels (`list[str]`, *optional*): the label names; id i is `labels[i]` (default: "0",
        "1", ... up to the largest id given, or the length of a scores row).
    known_labels (`list[str]`, *optional*): open-set protocol; samples whose reference label is
        not in this list are the "unknown" ones.
    rejection_threshold (`float`, *optional*, with `known_labels`): a sample whose maximum
        probability over the known labels is below it is rejected as unknown (the harness
        chooses it on validation images: 95% of known ones accepted).
Returns:
    n_samples (`int`), accuracy (`float`), macro_f1 (`float`, over labels present in references
    or predictions), macro_auroc (`float` or None: one-vs-rest over labels present in references;
    None with fewer than 2 or without scores), mean_ap (`float`, None without scores: macro
    average precision over labels present in references), per_class_accuracy
    (`dict[str, float | None]`: recall per label, None if absent), per_semantic_accuracy
    (`dict[str, float]`, None without semantics), confusion_matrix (`list[list[int]]`, rows are
    references, columns predictions), labels (`list[str]`); with `known_labels` also
    auroc_unknown (`float` or None if only known or only unknown samples), known_accuracy
    (`float` or None if no known samples) and oscr (`float` or None, as auroc_unknown); with
    `rejection_threshold` also open_set_accuracy (a known sample counts when accepted and
    right, an unknown one when rejected), known_rejection_rate, unknown_rejection_rate (`float`
    or None without such samples) and open_set_confusion_matrix (rows are references, columns
    predictions then one "rejected" column).
Examples:
    >>> metric = evaluate.load("harness/metrics/attribution_metrics")
    >>> out = metric.compute(predictions=[0, 1], references=[0, 0],
    ...                      scores=[[0.9, 0.1], [0.4, 0.6]], semantics=["cat", "dog"],
    ...                      labels=["real", "SD1_5"])
    >>> out["accuracy"], out["per_semantic_accuracy"]
    (0.5, {'cat': 1.0, 'dog': 0.0})
"""


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x, ties sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = ((starts + 1 + ends) / 2.0)[np.cumsum(new_group) - 1]
    return ranks


def _auroc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks: equals sklearn's roc_auc_score)."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    rank_sum = _midranks(score)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """sklearn's average_precision_score: sum over thresholds of (R_k - R_{k-1}) * P_k."""
    order = np.argsort(-score, kind="mergesort")
    s = score[order]
    # One operating point per distinct score: the last index of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(positive[order], dtype=np.float64)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _check_ids(name: str, ids: np.ndarray, n_labels: int) -> None:
    bad = np.flatnonzero((ids < 0) | (ids >= n_labels))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"{name}[{i}] = {int(ids[i])} is not a label id: ids must be in [0, {n_labels}) "
            f"for the {n_labels} labels given ({len(bad)} sample(s) out of range)"
        )


def _all_or_none(name: str, values):
    """The values, or None when every one is missing (None, [] or ""); a partial column is
    refused."""
    absent = [v is None or len(v) == 0 for v in (values if values is not None else [])]
    if values is None or all(absent):
        return None
    missing = [i for i, a in enumerate(absent) if a]
    if missing:
        raise ValueError(f"{name}[{missing[0]}] is missing: give {name} for every sample "
                         "or for none")
    return values


def _check_names(name: str, names: Sequence[str]) -> list[str]:
    if isinstance(names, str) or not all(isinstance(x, str) for x in names):
        raise ValueError(f"{name} must be a list of label names (strings), got {names!r}")
    names = list(names)
    dupes = sorted({x for x in names if names.count(x) > 1})
    if dupes:
        raise ValueError(f"{name} has duplicate names: {dupes}")
    return names


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AttributionMetrics(evaluate.Metric):
    """Closed-set and open-set attribution metrics for ImageAttributionBench."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Value("int64"),
                    "scores": datasets.Sequence(datasets.Value("float32")),
                    "semantics": datasets.Value("string"),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2605.12967"],
        )

    @staticmethod
    def _fill_optional(kwargs: dict, n: int) -> None:
        """scores and semantics may be left out: stored empty ([] and ""), reported absent."""
        for name, empty in (("scores", []), ("semantics", "")):
            if kwargs.get(name) is None:
                kwargs[name] = [empty] * n

    def compute(self, *, predictions=None, references=None, **kwargs):
        """``predictions`` and ``references`` are enough (what ``evaluate.evaluator`` and
        ``evaluate.combine`` pass); see the module's inputs for the rest."""
        if predictions is not None and references is not None:
            self._fill_optional(kwargs, len(references))
        return super().compute(predictions=predictions, references=references, **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of ``predictions`` and ``references`` (``scores`` and ``semantics``
        optional, as in ``compute``).
        """
        if references is not None:
            self._fill_optional(kwargs, len(references))
        return super().add_batch(predictions=predictions, references=references, **kwargs)

    def _compute(
        self,
        predictions,
        references,
        scores=None,
        semantics=None,
        labels: list[str] | None = None,
        known_labels: list[str] | None = None,
        rejection_threshold: float | None = None,
    ) -> dict:
        n = len(references)
        if n == 0:
            raise ValueError("no samples: predictions, references, scores and semantics are empty")
        scores = _all_or_none("scores", scores)
        semantics = _all_or_none("semantics", semantics)
        if labels is None:
            width = len(scores[0]) if scores is not None else 1 + max(
                max(map(int, references)), max(map(int, predictions)))
            labels = [str(i) for i in range(width)]
        labels = _check_names("labels", labels)
        k = len(labels)
        if k == 0:
            raise ValueError("labels is empty: pass the label names, id i being labels[i]")

        for i, row in enumerate(scores or []):
            if len(row) != k:
                raise ValueError(
                    f"scores[{i}] has length {len(row)}: expected length {k}, one probability "
                    f"per label in the order of labels"
                )

        y_true = np.asarray(references, dtype=np.int64)
        y_pred = np.asarray(predictions, dtype=np.int64)
        _check_ids("references", y_true, k)
        _check_ids("predictions", y_pred, k)
        prob = None
        if scores is not None:
            prob = np.asarray(scores, dtype=np.float64).reshape(n, k)
            if not np.isfinite(prob).all():
                i = int(np.flatnonzero(~np.isfinite(prob).all(axis=1))[0])
                raise ValueError(f"scores[{i}] holds a NaN or infinite value")

        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (y_true, y_pred), 1)
        tp = np.diag(cm).astype(np.float64)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        correct = y_true == y_pred

        # F1 over labels seen in references or predictions, as sklearn's macro default does.
        seen = (support + predicted) > 0
        f1 = 2 * tp[seen] / (support[seen] + predicted[seen])
        present = np.flatnonzero(support > 0)
        macro_auroc = mean_ap = None
        if prob is not None and len(present) >= 2:
            macro_auroc = float(np.mean([_auroc(y_true == c, prob[:, c]) for c in present]))
        if prob is not None:
            mean_ap = float(np.mean([_average_precision(y_true == c, prob[:, c])
                                     for c in present]))

        per_semantic = None
        if semantics is not None:
            sem = np.asarray(semantics, dtype=object)
            per_semantic = {str(s): float(correct[sem == s].mean())
                            for s in sorted(set(semantics))}

        out = {
            "n_samples": int(n),
            "accuracy": float(correct.mean()),
            "macro_f1": float(f1.mean()),
            "macro_auroc": macro_auroc,
            "mean_ap": mean_ap,
            "per_class_accuracy": {
                name: (float(tp[c] / support[c]) if support[c] else None)
                for c, name in enumerate(labels)
            },
            "per_semantic_accuracy": per_semantic,
            "confusion_matrix": cm.tolist(),
            "labels": labels,
        }
        if known_labels is not None:
            out.update(self._open_set(labels, known_labels, y_true, y_pred, correct, prob,
                                      rejection_threshold))
        elif rejection_threshold is not None:
            raise ValueError("rejection_threshold needs known_labels (the open-set protocol)")
        return out

    @staticmethod
    def _open_set(labels, known_labels, y_true, y_pred, correct, prob, threshold) -> dict:
        known_labels = _check_names("known_labels", known_labels)
        unknown_names = [x for x in known_labels if x not in labels]
        if unknown_names:
            raise ValueError(f"known_labels {unknown_names} are not in labels; valid: {labels}")
        if not known_labels:
            raise ValueError("known_labels is empty: name the labels seen in training")
        known_ids = np.array([labels.index(x) for x in known_labels])
        is_known = np.isin(y_true, known_ids)
        both = 0 < is_known.sum() < len(is_known)
        # Maximum softmax probability baseline: low confidence over the known labels = unknown
        # (scores are optional: without them only the known accuracy is defined).
        confidence = prob[:, known_ids].max(axis=1) if prob is not None else None
        scored = both and confidence is not None
        out = {
            "auroc_unknown": _auroc(~is_known, 1.0 - confidence) if scored else None,
            "known_accuracy": float(correct[is_known].mean()) if is_known.any() else None,
            "oscr": _oscr(is_known, correct, confidence) if scored else None,
        }
        if threshold is not None:
            if confidence is None:
                raise ValueError("rejection_threshold needs prediction_scores (the confidences "
                                 "it is compared with)")
            threshold = float(threshold)
            if not np.isfinite(threshold):
                raise ValueError(f"rejection_threshold {threshold!r} is not a finite number")
            accepted = confidence >= threshold
            k = len(labels)
            cm = np.zeros((k, k + 1), dtype=np.int64)
            np.add.at(cm, (y_true, np.where(accepted, y_pred, k)), 1)
            out.update({
                "rejection_threshold": threshold,
                "open_set_accuracy": float(np.where(is_known, accepted & correct,
                                                    ~accepted).mean()),
                "known_rejection_rate": float((~accepted[is_known]).mean())
                if is_known.any() else None,
                "unknown_rejection_rate": float((~accepted[~is_known]).mean())
                if (~is_known).any() else None,
                "open_set_confusion_matrix": cm.tolist(),
            })
        return out


def _oscr(is_known: np.ndarray, correct: np.ndarray, confidence: np.ndarray) -> float:
    """Open-Set Classification Rate (Dhamija, Guenther and Boult, NeurIPS 2018): the area under
    the correct-classification rate of known samples (right and accepted) against the share of
    unknown samples accepted, as the acceptance threshold on ``confidence`` goes from above
    every score to below every score. Tied scores move together (a straight segment)."""
    order = np.argsort(-confidence, kind="mergesort")
    c = confidence[order]
    last = np.r_[np.flatnonzero(np.diff(c)), len(c) - 1]  # one point per distinct threshold
    ccr = np.r_[0.0, np.cumsum((is_known & correct)[order])[last] / is_known.sum()]
    fpr = np.r_[0.0, np.cumsum(~is_known[order])[last] / (~is_known).sum()]
    return float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2))

"""The attribution metric against scikit-learn, loaded offline the way the harness loads it."""

from __future__ import annotations

import json
from pathlib import Path

import evaluate
import numpy as np
import pytest

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from harness.metrics import (  # noqa: E402
    METRIC_PATH,
    degradation_drop,
    load_metric,
    seen_unseen_gap,
)

REPO = Path(__file__).resolve().parents[1]
LABELS = ["real", "SD1_5", "FLUX", "dalle3", "Z-Image-Turbo", "Midjourney"]
ABSENT = 3  # "dalle3" never appears in references (it may in predictions)
SEMANTICS = ["cat", "bedroom", "FFHQ", "car"]
TOL = 1e-9


def _fake_run(seed: int = 0, n: int = 200, ties: bool = True) -> dict:
    """Seeded predictions of a mediocre classifier; rounded scores give many ties."""
    rng = np.random.default_rng(seed)
    k = len(LABELS)
    present = [c for c in range(k) if c != ABSENT]
    y = rng.choice(present, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.5
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if ties:
        prob = np.round(prob, 2)
    prob = prob.astype(np.float32)  # what the metric's float32 feature stores
    pred = prob.argmax(axis=1)
    sem = rng.choice(SEMANTICS, size=n)
    return {
        "predictions": pred.tolist(),
        "references": y.tolist(),
        "scores": prob.tolist(),
        "semantics": sem.tolist(),
    }


@pytest.fixture(scope="module")
def metric():
    return load_metric()


def _arrays(run):
    return (
        np.asarray(run["references"]),
        np.asarray(run["predictions"]),
        np.asarray(run["scores"], dtype=np.float64),
        np.asarray(run["semantics"]),
    )


def test_loads_offline_by_relative_and_absolute_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO)
    rel = evaluate.load("harness/metrics/attribution_metrics")
    absolute = evaluate.load(str(METRIC_PATH.resolve()))
    run = _fake_run(seed=1, n=20)
    assert rel.compute(**run, labels=LABELS) == absolute.compute(**run, labels=LABELS)
    assert METRIC_PATH.parent == Path(__file__).resolve().parents[1] / "harness" / "metrics"


@pytest.mark.parametrize("ties", [True, False], ids=["ties", "no-ties"])
def test_closed_set_matches_sklearn(metric, ties):
    run = _fake_run(ties=ties)
    y, p, s, sem = _arrays(run)
    assert ABSENT not in set(y.tolist()) and ABSENT in set(p.tolist())  # the case we mean to test
    out = metric.compute(**run, labels=LABELS)
    json.dumps(out)  # plain Python values only

    assert out["n_samples"] == 200
    assert out["labels"] == LABELS
    assert out["accuracy"] == pytest.approx(sklearn_metrics.accuracy_score(y, p), abs=TOL)
    assert out["macro_f1"] == pytest.approx(
        sklearn_metrics.f1_score(y, p, average="macro"), abs=TOL
    )
    present = np.unique(y)
    auroc = np.mean([sklearn_metrics.roc_auc_score(y == c, s[:, c]) for c in present])
    assert out["macro_auroc"] == pytest.approx(auroc, abs=TOL)
    ap = np.mean([sklearn_metrics.average_precision_score(y == c, s[:, c]) for c in present])
    assert out["mean_ap"] == pytest.approx(ap, abs=TOL)
    cm = sklearn_metrics.confusion_matrix(y, p, labels=range(len(LABELS)))
    assert out["confusion_matrix"] == cm.tolist()

    recall = sklearn_metrics.recall_score(
        y, p, labels=range(len(LABELS)), average=None, zero_division=0
    )
    for c, name in enumerate(LABELS):
        if c == ABSENT:
            assert out["per_class_accuracy"][name] is None
        else:
            assert out["per_class_accuracy"][name] == pytest.approx(recall[c], abs=TOL)

    by_hand = {}
    for name in SEMANTICS:
        rows = [i for i in range(len(y)) if sem[i] == name]
        by_hand[name] = sum(int(y[i] == p[i]) for i in rows) / len(rows)
    assert out["per_semantic_accuracy"] == pytest.approx(by_hand, abs=TOL)
    assert "auroc_unknown" not in out and "known_accuracy" not in out


def test_per_class_auroc_and_ap_are_not_averaged_away(metric):
    # A class scored perfectly and one scored backwards: AUROC 1 and 0, AP 1 and below 1.
    run = {
        "predictions": [0, 0, 1, 1],
        "references": [0, 0, 1, 1],
        "scores": [[0.9, 0.9], [0.8, 0.8], [0.1, 0.1], [0.2, 0.2]],
        "semantics": ["cat"] * 4,
    }
    out = metric.compute(**run, labels=["a", "b"])
    y, _, s, _ = _arrays(run)
    expected_ap = np.mean([sklearn_metrics.average_precision_score(y == c, s[:, c]) for c in (0, 1)])
    assert out["macro_auroc"] == pytest.approx(0.5, abs=TOL)
    assert out["mean_ap"] == pytest.approx(expected_ap, abs=TOL)
    assert out["mean_ap"] < 1.0


def test_label_in_neither_references_nor_predictions_is_left_out_of_macro_f1(metric):
    run = {
        "predictions": [0, 1, 1, 0, 1],
        "references": [0, 1, 0, 0, 1],
        "scores": [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.8, 0.1, 0.1], [0.3, 0.6, 0.1]],
        "semantics": ["cat", "cat", "FFHQ", "FFHQ", "FFHQ"],
    }
    out = metric.compute(**run, labels=["a", "b", "c"])
    y, p, _, _ = _arrays(run)
    assert out["macro_f1"] == pytest.approx(sklearn_metrics.f1_score(y, p, average="macro"), abs=TOL)
    assert out["per_class_accuracy"]["c"] is None
    assert out["per_semantic_accuracy"] == pytest.approx({"cat": 1.0, "FFHQ": 2 / 3}, abs=TOL)


def test_one_class_in_references_gives_no_macro_auroc(metric):
    out = metric.compute(
        predictions=[0, 1], references=[0, 0], scores=[[0.9, 0.1], [0.4, 0.6]],
        semantics=["cat", "cat"], labels=["a", "b"],
    )
    assert out["macro_auroc"] is None
    assert out["accuracy"] == 0.5


def test_batches_add_up_to_one_compute(metric):
    run = _fake_run(seed=2, n=60)
    whole = metric.compute(**run, labels=LABELS)
    for lo, hi in [(0, 25), (25, 60)]:
        metric.add_batch(**{key: v[lo:hi] for key, v in run.items()})
    assert metric.compute(labels=LABELS) == whole


@pytest.mark.parametrize("ties", [True, False], ids=["ties", "no-ties"])
def test_open_set_matches_sklearn_on_msp(metric, ties):
    run = _fake_run(seed=3, ties=ties)
    y, p, s, _ = _arrays(run)
    known_ids = [2, 0, 1, 3]  # deliberately not in id order; 4 and 5 are the unknown generators
    known = [LABELS[i] for i in known_ids]
    out = metric.compute(**run, labels=LABELS, known_labels=known)
    json.dumps(out)

    is_unknown = ~np.isin(y, known_ids)
    assert 0 < is_unknown.sum() < len(y)
    msp = s[:, known_ids].max(axis=1)
    expected = sklearn_metrics.roc_auc_score(is_unknown, 1.0 - msp)
    assert out["auroc_unknown"] == pytest.approx(expected, abs=TOL)
    # Using all labels' scores (not only the known ones) gives a different number here.
    assert abs(sklearn_metrics.roc_auc_score(is_unknown, 1.0 - s.max(axis=1)) - expected) > 1e-6
    assert out["known_accuracy"] == pytest.approx(np.mean(y[~is_unknown] == p[~is_unknown]), abs=TOL)
    # Closed-set numbers are unchanged by the open-set keys.
    closed = metric.compute(**run, labels=LABELS)
    assert {k: out[k] for k in closed} == closed


def _oscr_by_definition(is_known, correct, confidence) -> float:
    """Dhamija et al.'s OSCR from its definition: one (FPR, CCR) point per threshold taken
    from the scores themselves (plus one above them all), trapezoids between them."""
    points = [(0.0, 0.0)]
    for t in sorted(set(confidence.tolist()), reverse=True):
        accepted = confidence >= t
        points.append(((accepted & ~is_known).sum() / (~is_known).sum(),
                       (accepted & is_known & correct).sum() / is_known.sum()))
    return float(sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(points, points[1:])))


@pytest.mark.parametrize("ties", [True, False], ids=["ties", "no-ties"])
def test_oscr_matches_its_definition(metric, ties):
    run = _fake_run(seed=5, ties=ties)
    y, p, s, _ = _arrays(run)
    known_ids = [0, 1, 2, 3]
    # a model that names known labels only: predictions are the best known label
    run["predictions"] = [int(np.array(known_ids)[np.argmax(row[known_ids])]) for row in s]
    p = np.array(run["predictions"])
    out = metric.compute(**run, labels=LABELS, known_labels=[LABELS[i] for i in known_ids])
    is_known = np.isin(y, known_ids)
    expected = _oscr_by_definition(is_known, p == y, s[:, known_ids].max(axis=1))
    assert out["oscr"] == pytest.approx(expected, abs=TOL)
    assert 0 < out["oscr"] <= out["known_accuracy"]  # equal only with perfect rejection


def test_oscr_bounds():
    from harness.metrics.attribution_metrics.attribution_metrics import _oscr

    known = np.array([True, True, False, False])
    right = np.array([True, False, False, False])
    # unknown images less confident than every known one: OSCR is the known accuracy
    assert _oscr(known, right, np.array([0.9, 0.8, 0.3, 0.2])) == pytest.approx(0.5)
    # unknown images more confident than every known one: nothing is gained before FPR = 1
    assert _oscr(known, right, np.array([0.3, 0.2, 0.9, 0.8])) == pytest.approx(0.0)


def test_rejections_at_a_threshold(metric):
    # labels a, b known; c unknown. confidence = max over a, b
    out = metric.compute(
        predictions=[0, 1, 0, 1], references=[0, 0, 2, 2],
        scores=[[0.9, 0.1, 0.0], [0.35, 0.65, 0.0], [0.55, 0.45, 0.0], [0.2, 0.8, 0.0]],
        semantics=["cat"] * 4, labels=["a", "b", "c"], known_labels=["a", "b"],
        rejection_threshold=0.7)
    assert out["rejection_threshold"] == 0.7
    # a/0.9 accepted right; a/0.65 rejected; c/0.55 rejected; c/0.8 accepted as b
    assert out["open_set_confusion_matrix"] == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 1]]
    assert out["known_rejection_rate"] == 0.5 and out["unknown_rejection_rate"] == 0.5
    assert out["open_set_accuracy"] == 0.5  # a/0.9 and the rejected c
    assert out["accuracy"] == 0.25  # counts both unknown images as errors
    with pytest.raises(ValueError, match="needs known_labels"):
        metric.compute(predictions=[0], references=[0], scores=[[1.0, 0.0, 0.0]],
                       semantics=["cat"], labels=["a", "b", "c"], rejection_threshold=0.5)


def test_rejection_threshold_accepts_95_percent_of_known():
    from harness.metrics import rejection_threshold

    conf = np.linspace(0.01, 1.0, 100)
    t = rejection_threshold(conf)
    assert (conf >= t).mean() >= 0.95 and (conf > t).mean() < 0.95
    assert rejection_threshold([]) is None


def test_open_set_without_unknown_samples(metric):
    out = metric.compute(
        predictions=[0, 1], references=[0, 1], scores=[[0.9, 0.1, 0.0], [0.3, 0.6, 0.1]],
        semantics=["cat", "cat"], labels=["a", "b", "c"], known_labels=["a", "b"],
    )
    assert out["auroc_unknown"] is None and out["oscr"] is None
    assert out["known_accuracy"] == 1.0


def _one(**change):
    run = {"predictions": [0], "references": [0], "scores": [[0.7, 0.2, 0.1]], "semantics": ["cat"]}
    run.update(change)
    return run


@pytest.mark.parametrize(
    "change, kwargs, match",
    [
        ({"predictions": [], "references": [], "scores": [], "semantics": []}, {}, "no samples"),
        ({"scores": [[0.5, 0.5]]}, {}, "expected length 3"),
        ({"scores": [[0.5, 0.2, 0.2, 0.1]]}, {}, "expected length 3"),
        ({"references": [3]}, {}, r"references\[0\] = 3 .*\[0, 3\)"),
        ({"references": [-1]}, {}, r"references\[0\] = -1"),
        ({"predictions": [7]}, {}, r"predictions\[0\] = 7"),
        ({}, {"labels": ["a", "a", "b"]}, "duplicate"),
        ({}, {"known_labels": ["a", "zzz"]}, "zzz"),
    ],
    ids=["empty", "short-scores", "long-scores", "ref-too-big", "ref-negative", "pred-too-big",
         "dup-labels", "unknown-known-label"],
)
def test_bad_input_is_refused(metric, change, kwargs, match):
    kwargs = {"labels": ["a", "b", "c"], **kwargs}
    with pytest.raises(ValueError, match=match):
        metric.compute(**_one(**change), **kwargs)


def test_degradation_drop_exact():
    out = degradation_drop(0.875, {"jpeg_q75": 0.75, "blur": 0.5, "resize": 0.625, "noise": 0.5})
    assert out == {
        "clean": 0.875,
        "per_degradation": {
            "jpeg_q75": {"accuracy": 0.75, "drop": 0.125},
            "blur": {"accuracy": 0.5, "drop": 0.375},
            "resize": {"accuracy": 0.625, "drop": 0.25},
            "noise": {"accuracy": 0.5, "drop": 0.375},
        },
        "mean_accuracy": 0.59375,
        "worst": "blur",  # tied with noise; the first given wins
        "worst_accuracy": 0.5,
    }
    with pytest.raises(ValueError, match="empty"):
        degradation_drop(0.875, {})
    with pytest.raises(ValueError, match="fraction"):
        degradation_drop(87.5, {"blur": 0.5})
    with pytest.raises(ValueError, match="blur"):
        degradation_drop(0.875, {"blur": 50})


def test_seen_unseen_gap_exact():
    assert seen_unseen_gap(0.75, 0.5) == {"seen": 0.75, "unseen": 0.5, "gap": 0.25}
    assert seen_unseen_gap(0.25, 0.5)["gap"] == -0.25
    with pytest.raises(ValueError, match="test_accuracy"):
        seen_unseen_gap(0.75, float("nan"))

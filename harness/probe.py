"""The paper's CLIP-LR head, exactly: scikit-learn's StandardScaler + multinomial
LogisticRegression (L2, C = 1, L-BFGS) on frozen image embeddings, fitted in torch and folded
into the probe's linear layer, so the harness evaluates, saves and reports it like any head.

With ``double_softmax`` the head outputs the regression's probabilities instead of its
logits, so that the harness's softmax gives what the official CLIP-LR evaluation scores
(softmax of ``predict_proba``, mttry/ImageAttributionBench attributor_clip_lr.py), so its
AUROC and AP are reproduced exactly; accuracy is the same either way.

The objective is scikit-learn's: 0.5 ||W||^2 + C * sum of cross-entropies (intercept not
penalised), over the labels present in training; labels never seen in training (or outside
the open-set mask) get a bias of -1e4, i.e. are never predicted, as scikit-learn's model
cannot predict them either.
"""

from __future__ import annotations

import torch

from harness.predict import loader


@torch.no_grad()
def extract_features(accelerator, probe, split, geo, batch_size: int):
    """(features, labels) of every image of a decoded split, gathered from all processes."""
    probe.eval()
    inner = accelerator.unwrap_model(probe)
    feats, labels, order = [], [], []
    for pixels, y, idx in accelerator.prepare(loader(split, geo, batch_size)):
        f, y, idx = accelerator.gather_for_metrics((inner.features(pixels).float(), y, idx))
        feats.append(f.cpu())
        labels.append(y.cpu())
        order.append(idx.cpu())
    back = torch.argsort(torch.cat(order))
    return torch.cat(feats)[back], torch.cat(labels)[back]


def fit_logistic_regression(features: torch.Tensor, labels: torch.Tensor, num_labels: int,
                            c: float = 1.0, max_iter: int = 1000, allowed=None):
    """(weight (num_labels, D), bias (num_labels,), iterations) of the standardised
    multinomial logistic regression, expressed on the raw features."""
    x = features.double()
    mean, std = x.mean(0), x.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))  # as StandardScaler: constant -> 1
    z = (x - mean) / std
    present = torch.zeros(num_labels, dtype=torch.bool)
    present[labels.unique()] = True
    if allowed is not None:
        present &= allowed.cpu()
    classes = present.nonzero().flatten()
    remap = torch.full((num_labels,), -1, dtype=torch.long)
    remap[classes] = torch.arange(len(classes))
    target = remap[labels]
    keep = target >= 0
    z, target = z[keep], target[keep]
    w = torch.zeros(len(classes), z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-6,
                            tolerance_change=1e-10, history_size=10,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        ce = torch.nn.functional.cross_entropy(z @ w.T + b, target, reduction="sum")
        loss = 0.5 * (w * w).sum() + c * ce
        loss.backward()
        return loss

    opt.step(closure)
    iterations = opt.state[opt._params[0]].get("n_iter", 0)
    weight = torch.zeros(num_labels, x.shape[1], dtype=torch.float64)
    bias = torch.full((num_labels,), -1e4, dtype=torch.float64)
    with torch.no_grad():
        weight[classes] = w / std
        bias[classes] = b - (w / std) @ mean
    return weight.float(), bias.float(), int(iterations)


class ProbabilityHead(torch.nn.Linear):
    """A linear head whose output is its softmax: the regression's probabilities."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(super().forward(x), dim=-1)


def fit_probe(accelerator, probe, train, val, geo, batch_size: int, allowed=None,
              double_softmax: bool = False):
    """Fit a LinearProbe's head by logistic regression on the training embeddings; returns
    the prepared probe and a training log (validation accuracy for the record only: there is
    nothing to select). ``double_softmax``: score as the official CLIP-LR evaluation."""
    from harness.predict import predict

    probe = accelerator.prepare(probe)
    features, labels = extract_features(accelerator, probe, train, geo, batch_size)
    weight, bias, iterations = fit_logistic_regression(
        features, labels, accelerator.unwrap_model(probe).head.out_features, allowed=allowed)
    inner = accelerator.unwrap_model(probe)
    head = inner.head
    if double_softmax:
        head = ProbabilityHead(head.in_features, head.out_features).to(head.weight)
        inner.head = head
    with torch.no_grad():
        head.weight.copy_(weight.to(head.weight))
        head.bias.copy_(bias.to(head.bias))
    pred = predict(accelerator, probe, val, geo, batch_size, allowed)
    accuracy = float((pred.predictions == pred.labels).mean()) if len(pred.labels) else 0.0
    from accelerate.logging import get_logger

    get_logger(__name__).info(f"logistic regression: {iterations} L-BFGS iterations on "
                              f"{len(labels)} embeddings, validation accuracy {accuracy:.4f}")
    return probe, {"solver": "lbfgs logistic regression (StandardScaler, L2, C=1)",
                   "scores": "softmax of the probabilities (the official CLIP-LR "
                             "evaluation)" if double_softmax else "softmax of the logits",
                   "iterations": iterations, "train_embeddings": len(labels),
                   "validation_accuracy": accuracy,
                   "selection": "none: one convex fit, validation reported only"}

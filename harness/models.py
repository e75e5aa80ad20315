"""Models by Hub id (or local path) for the three methods, with the benchmark's label space."""

from __future__ import annotations

import torch
from torch import nn

import imageattributionbench as iab
from harness.labels import label_index  # torch-free, so the leaderboard can run it too

METHODS = ("finetune", "linear_probe", "score")


def check_method(method: str) -> str:
    if method not in METHODS:
        raise iab.unknown_name("method", method, METHODS)
    return method


def method_record(model_id: str, revision: str | None) -> dict | None:
    """A paper method's reference, input policy, paper hyper-parameters and architecture
    (its config minus label maps), for the input policy, results and the model card; None
    for other models."""
    from transformers import AutoConfig

    import methods  # noqa: F401  (registers the paper's methods with the Auto classes)

    try:
        config = AutoConfig.from_pretrained(model_id, revision=revision)
    except (OSError, ValueError):
        return None  # not a transformers model folder: the harness's defaults apply
    if not getattr(config, "reference", None):
        return None
    from transformers import PretrainedConfig

    generic = set(PretrainedConfig().to_dict())
    fields = {k: v for k, v in config.to_dict().items()
              if k not in generic and k not in ("reference", "hyperparameters")}
    return {"model_type": config.model_type, "reference": config.reference,
            "input_policy": config.input_policy,
            "paper_hyperparameters": config.hyperparameters, "architecture": fields}


def load_processor(model_id: str, revision: str | None):
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(model_id, revision=revision)


def training_output(logits: torch.Tensor, labels, label_mask):
    """(logits, cross-entropy over the allowed labels) for a training batch."""
    from methods.base import cross_entropy

    return logits, cross_entropy(logits, labels, label_mask)


class LinearProbe(nn.Module):
    """A frozen backbone's pooled features and a linear classifier over the benchmark labels
    (the paper's CLIP-LR baseline with a CLIP vision tower; DINOv2, SigLIP ... likewise)."""

    def __init__(self, backbone: nn.Module, feature_dim: int, num_labels: int):
        super().__init__()
        self.backbone = backbone.eval().requires_grad_(False)
        self.head = nn.Linear(feature_dim, num_labels)

    @torch.no_grad()
    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if hasattr(self.backbone, "get_image_features"):  # CLIP / SigLIP: projected embedding
            out = self.backbone.get_image_features(pixel_values=pixel_values)
            return out if isinstance(out, torch.Tensor) else out.pooler_output
        out = self.backbone(pixel_values=pixel_values)
        pooled = getattr(out, "pooler_output", None)
        if pooled is None:
            pooled = out.last_hidden_state.mean(dim=1)
        return pooled.flatten(1)

    def forward(self, pixel_values: torch.Tensor, labels=None, label_mask=None):
        """Logits; with labels, (logits, loss) for training."""
        logits = self.head(self.features(pixel_values))
        return logits if labels is None else training_output(logits, labels, label_mask)


def _feature_dim(backbone: nn.Module, size: int) -> int:
    probe = LinearProbe(backbone, 1, 1)
    with torch.no_grad():
        return probe.features(torch.zeros(1, 3, size, size)).shape[-1]


class Scored(nn.Module):
    """An already trained attribution model, its outputs mapped onto the benchmark's labels
    (labels the model lacks get -inf logits: never predicted, probability 0)."""

    def __init__(self, model: nn.Module, index: list[int]):
        super().__init__()
        self.model = model
        self.register_buffer("index", torch.tensor(index), persistent=False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        logits = self.model(pixel_values=pixel_values).logits
        out = torch.full((logits.shape[0], len(iab.LABELS)), float("-inf"),
                         dtype=logits.dtype, device=logits.device)
        out[:, self.index] = logits
        return out


class Classifier(nn.Module):
    """logits over the benchmark labels from an AutoModelForImageClassification; in training,
    the paper's methods (``methods/``) give their own objective, any other model
    cross-entropy."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor, labels=None, label_mask=None):
        """Logits; with labels, (logits, loss) for training."""
        if labels is None:
            return self.model(pixel_values=pixel_values).logits
        if getattr(self.model, "has_training_objective", False):
            out = self.model(pixel_values=pixel_values, labels=labels, label_mask=label_mask)
            return out.logits, out.loss
        return training_output(self.model(pixel_values=pixel_values).logits, labels,
                               label_mask)


def trained_classifier(model_id: str, revision: str | None) -> nn.Module:
    """An already trained AutoModelForImageClassification, as its checkpoint holds it: a
    weight whose shape differs from the config (a head over another number of labels than
    id2label says) or a weight the checkpoint lacks (a head that would start random) is a
    clear error, never a silently re-initialised output."""
    from transformers import AutoModelForImageClassification

    model, info = AutoModelForImageClassification.from_pretrained(
        model_id, revision=revision, output_loading_info=True, ignore_mismatched_sizes=True)
    mismatched = sorted(info.get("mismatched_keys") or ())
    if mismatched:
        shapes = "; ".join(f"{key}: checkpoint {tuple(ckpt)}, config {tuple(want)}"
                           for key, ckpt, want in mismatched)
        raise iab.BenchmarkError(
            f"{model_id}: weights do not match its config ({shapes}); the config says "
            f"{model.config.num_labels} labels (id2label): make id2label list one name per "
            "output of the head, or pass the checkpoint the config belongs to")
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise iab.BenchmarkError(
            f"{model_id}: the checkpoint lacks {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            + "; --method score needs a trained classifier (to train one: --method finetune)")
    return model


def build(method: str, model_id: str, revision: str | None, size: int) -> nn.Module:
    """The trainable/evaluable module for a method; its forward gives benchmark-label logits."""
    from transformers import AutoModel, AutoModelForImageClassification

    import methods  # noqa: F401  (registers the paper's methods with the Auto classes)

    check_method(method)
    if method == "finetune":
        model = AutoModelForImageClassification.from_pretrained(
            model_id, revision=revision, num_labels=len(iab.LABELS),
            id2label=dict(enumerate(iab.LABELS)), label2id=dict(iab.LABEL_IDS),
            ignore_mismatched_sizes=True)  # a new head over the benchmark's labels
        return Classifier(model)
    if method == "score":
        model = trained_classifier(model_id, revision)
        return Scored(model.eval(), label_index(model.config.id2label))
    backbone = AutoModel.from_pretrained(model_id, revision=revision)
    vision = getattr(backbone, "vision_model", None)
    if vision is not None and not hasattr(backbone, "get_image_features"):
        backbone = vision
    return LinearProbe(backbone, _feature_dim(backbone, size), len(iab.LABELS))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

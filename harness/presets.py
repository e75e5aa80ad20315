"""Named settings: the paper's two baselines and each of its methods, by name.

    accelerate launch harness/run.py --preset resnet50 --protocol paper
    accelerate launch harness/run.py --preset clip-lr --protocol paper
    accelerate launch harness/run.py --preset patchcraft --protocol paper
    accelerate launch harness/run.py --preset patchcraft-ours --protocol paper

``--preset NAME`` is the official script's setting for NAME (mttry/ImageAttributionBench:
``training/scripts/<name>.bash``, ``config/model/<name>.yaml``, ``train.py``, ``trainer.py``):
its epochs, learning rate, scheduler (stepped per epoch as its trainer does; POSE's per batch
as its own loop does), batch size, Adam without weight decay, and the last epoch's weights
for the test (its post-training test). ``NAME-ours`` is this project's alternative: the
method paper's longer schedule and the checkpoint chosen on validation (docs/DESIGN.md).
A preset sets defaults; a flag on the command line or in --config still wins. A method
preset's model is ``init:NAME`` (``init:NAME:tiny`` for its tiny CPU variant).
"""

from __future__ import annotations

import imageattributionbench as iab

# harness/train.py implements them: onecycle (warm-up then cosine, per step), step (x0.9 per
# epoch: StepLR(1, 0.9) stepped per epoch), constant, step500 (x0.9 every 500 batches:
# StepLR(500, 0.9) stepped per batch, the official POSE loop)
SCHEDULERS = ("onecycle", "step", "constant", "step500")

# The official scripts (n_epoch; lr = config optimizer.adam.lr, the only optimiser setting
# its choose_optimizer reads; lr_scheduler "step" -> StepLR(lr_step, lr_gamma) per epoch,
# anything else -> none; batch_size = train.py's 32 unless the script passes one).
OFFICIAL = {
    "resnet50": {"epochs": 10, "lr": 1e-3, "batch_size": 32, "scheduler": "step"},
    "dct-cnn": {"epochs": 10, "lr": 1e-3, "batch_size": 32, "scheduler": "constant"},
    # StepLR(30, 0.1) per epoch never fires in 20 epochs
    "patch-forensics": {"epochs": 20, "lr": 1e-3, "batch_size": 32, "scheduler": "constant"},
    "gfd": {"epochs": 15, "lr": 1e-3, "batch_size": 16, "scheduler": "step"},
    # StepLR(500, 0.9) per epoch never fires in 10 epochs
    "dna-det": {"epochs": 10, "lr": 1e-4, "batch_size": 32, "scheduler": "constant"},
    "repmix": {"epochs": 10, "lr": 1e-4, "batch_size": 32, "scheduler": "constant"},
    "hifi-net": {"epochs": 10, "lr": 1e-3, "batch_size": 8, "scheduler": "constant"},
    "ucf": {"epochs": 10, "lr": 2e-4, "batch_size": 32, "scheduler": "constant"},
    "pose": {"epochs": 10, "lr": 1e-4, "batch_size": 32, "scheduler": "step500"},
    "patchcraft": {"epochs": 15, "lr": 1e-3, "batch_size": 32, "scheduler": "step"},
    "ssp": {"epochs": 10, "lr": 1e-4, "batch_size": 32, "scheduler": "constant"},
    "defl": {"epochs": 10, "lr": 1e-3, "batch_size": 8, "scheduler": "constant"},
}
# The paper's rows, by publication year (baselines first).
PAPER_ORDER = ("resnet50", "clip-lr", "dct-cnn", "patch-forensics", "gfd", "dna-det",
               "repmix", "hifi-net", "ucf", "pose", "patchcraft", "ssp", "defl")
ALTERNATIVE = "-ours"

PAPER_RESNET50 = {"model": "microsoft/resnet-50", "method": "finetune",
                  "preprocess": "paper_resnet", "weight_decay": 0.0, "select": "last",
                  **OFFICIAL["resnet50"]}
# The paper fits scikit-learn's standardised logistic regression (L-BFGS, C=1, at most 1000
# iterations) on frozen CLIP ViT-H/14 image embeddings: --probe lbfgs is that fit
# (harness/probe.py); --double-softmax scores as its evaluation does.
PAPER_CLIP_LR = {"model": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "method": "linear_probe",
                 "preprocess": "paper_resnet", "probe": "lbfgs", "batch_size": 32}
OURS_RESNET50 = {**PAPER_RESNET50, "epochs": 30, "select": "best"}


def _method_preset(name: str, ours: bool) -> dict:
    base = {"model": f"init:{name}", "method": "finetune", "preprocess": None,
            "weight_decay": 0.0}
    if not ours:
        return {**base, **OFFICIAL[name], "select": "last"}
    from methods import METHODS

    hp = METHODS[name].classes()[0].paper_hyperparameters
    return {**base, "lr": hp.get("lr", 1e-3), "weight_decay": hp.get("weight_decay", 0.0),
            "epochs": hp.get("epochs", 30), "batch_size": hp.get("batch_size", 32),
            "scheduler": "constant", "select": "best"}


def preset_names(alternatives: bool = False) -> list[str]:
    """The paper's 13 presets, in its order (and their ``-ours`` alternatives)."""
    names = list(PAPER_ORDER)
    if alternatives:
        names += [n + ALTERNATIVE for n in PAPER_ORDER if n != "clip-lr"]
    return names


def preset(name: str) -> dict:
    """The option defaults of a named preset, or a clear error naming the valid ones."""
    names = preset_names(alternatives=True)
    if name not in names:
        raise iab.unknown_name("preset", name, names)
    ours = name.endswith(ALTERNATIVE)
    base = name.removesuffix(ALTERNATIVE)
    if base == "resnet50":
        return dict(OURS_RESNET50 if ours else PAPER_RESNET50)
    if base == "clip-lr":
        return dict(PAPER_CLIP_LR)
    return _method_preset(base, ours)

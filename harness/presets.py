"""Named settings: the paper's two baselines and each of its methods, by name.

    accelerate launch harness/run.py --preset resnet50 --protocol paper
    accelerate launch harness/run.py --preset clip-lr --protocol paper
    accelerate launch harness/run.py --preset patchcraft --protocol paper

A preset sets defaults (model, method, preprocessing, optimiser settings from the paper's
code); a flag on the command line or in --config still wins. A method preset's model is
``init:NAME``: a fresh checkpoint written to <output-dir>/init and fine-tuned
(``init:NAME:tiny`` for its tiny CPU variant).
"""

from __future__ import annotations

import imageattributionbench as iab

SCHEDULERS = ("onecycle", "step", "constant")  # harness/train.py implements them

# ImageAttributionBench's code trains every method with Adam without weight decay (here AdamW
# with weight_decay 0, the same update) and batch 32, choosing the epoch on validation.
PAPER_RESNET50 = {"model": "microsoft/resnet-50", "method": "finetune",
                  "preprocess": "paper_resnet", "lr": 1e-3, "weight_decay": 0.0,
                  "epochs": 30, "batch_size": 32, "scheduler": "step"}
# The paper fits scikit-learn's standardised logistic regression (L-BFGS, C=1) on frozen
# CLIP ViT-H/14 image embeddings: --probe lbfgs is that fit (harness/probe.py).
PAPER_CLIP_LR = {"model": "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "method": "linear_probe",
                 "preprocess": "paper_resnet", "probe": "lbfgs", "batch_size": 32}


def _method_preset(name: str) -> dict:
    from methods import METHODS

    config_class, _ = METHODS[name].classes()
    hp = config_class.paper_hyperparameters
    return {"model": f"init:{name}", "method": "finetune", "preprocess": None,
            "lr": hp.get("lr", 1e-3), "weight_decay": hp.get("weight_decay", 0.0),
            "epochs": hp.get("epochs", 30), "batch_size": hp.get("batch_size", 32),
            "scheduler": "constant"}


def preset_names() -> list[str]:
    from methods import METHODS

    return ["resnet50", "clip-lr", *METHODS]


def preset(name: str) -> dict:
    """The option defaults of a named preset, or a clear error naming the valid ones."""
    if name == "resnet50":
        return dict(PAPER_RESNET50)
    if name == "clip-lr":
        return dict(PAPER_CLIP_LR)
    names = preset_names()
    if name not in names:
        raise iab.unknown_name("preset", name, names)
    return _method_preset(name)

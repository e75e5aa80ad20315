"""Convert one of the paper's released checkpoints (``ckpt/<method>/<method>_<split>.pth`` of
mttry/ImageAttributionBench) into a transformers checkpoint of the method's official variant:

    python -m methods.convert_official dna ckpt/dna/dna_default.pth converted/dna_default
    python harness/run.py --method score --model converted/dna_default --protocol standard

METHOD is ours (dna-det) or the official name (dna). The file is read with
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary
objects. Every key must map onto the official variant's network or be one of the parts its
inference never reads (listed per method in methods/official); every tensor must have the
expected shape: anything else is refused, naming the keys. The written config records the
source file's name and sha256, the split it was trained on (from the file name, or
``--split``), and the variant.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import re
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import run_script
from methods.official import (OFFICIAL, OFFICIAL_LABELS, OFFICIAL_REPO, SPLITS, check_method,
                              official_config, resolve)

CLIP_HEAD = ("scaler.mean_", "scaler.scale_", "linear_probe.coef_", "linear_probe.intercept_",
             "linear_probe.classes_")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_official_state(path: Path) -> tuple[dict, dict]:
    """(state dict, trainer record) of an official checkpoint: the trainer's
    ``{"model_state_dict": ..., "epoch": ...}`` or a bare state dict."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise iab.BenchmarkError(f"{path}: no such file") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        raise iab.BenchmarkError(
            f"{path} is not a weights-only PyTorch checkpoint ({str(e).splitlines()[0]}); it "
            "is loaded with torch.load(weights_only=True), which never unpickles arbitrary "
            "objects: re-save its state dict alone (torch.save(model.state_dict(), path))"
        ) from None
    record = {}
    if isinstance(obj, dict) and isinstance(obj.get("model_state_dict"), dict):
        record = {k: obj[k] for k in ("epoch", "best_metrics") if k in obj}
        obj = obj["model_state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise iab.BenchmarkError(f"{path} holds no state dict (a mapping of names to tensors, "
                                 "alone or under 'model_state_dict')")
    return dict(obj), record


def strip_wrappers(key: str) -> str:
    """The key without DataParallel / DDP's ``module.`` level (Patch-Forensics saves one)."""
    return re.sub(r"(^|\.)module\.", r"\1", key)


def split_of(path: Path, method_name: str, split: str | None) -> str:
    if split is not None:
        if split not in SPLITS:
            raise iab.BenchmarkError(f"--split {split!r}: choose from {', '.join(SPLITS)}")
        return split
    m = re.fullmatch(rf"{re.escape(method_name)}_({'|'.join(SPLITS)})\.pth", path.name)
    if not m:
        raise iab.BenchmarkError(
            f"{path.name}: cannot tell which split it was trained on (the release names them "
            f"{method_name}_<split>.pth, split one of {', '.join(SPLITS)}); pass --split")
    return m.group(1)


def map_keys(method: str, state: dict) -> tuple[dict, list[str], list[str]]:
    """(our key -> tensor, unused official keys, unexpected official keys)."""
    spec = OFFICIAL[method]
    mapped, unused, unexpected = {}, [], []
    for key, tensor in state.items():
        k = strip_wrappers(key)
        if method == "clip-lr" and k in CLIP_HEAD:
            continue  # folded into the head (_clip_head)
        if k.startswith(spec.unused) or (method == "clip-lr" and k.endswith("position_ids")):
            unused.append(key)
            continue
        if method == "resnet50":
            from methods.official.resnet50 import rename

            new = rename(k)
        elif method == "clip-lr":
            new = "official.clip." + k[len("clip_model."):] if k.startswith("clip_model.") \
                else None
        else:
            new = "official." + k
        if new is None:
            unexpected.append(key)
        else:
            mapped[new] = tensor
    return mapped, unused, unexpected


def _clip_head(state: dict, path) -> dict:
    from methods.official.clip_lr import fold_logistic_regression

    missing = [k for k in CLIP_HEAD if k not in state]
    if missing:
        raise iab.BenchmarkError(
            f"{path}: the official CLIP-LR checkpoint holds CLIP's weights only; its scaler and "
            "logistic regression are scikit-learn objects the official trainer never saves "
            "(its FIXME in attributor_clip_lr.py), so there is no head to convert (missing "
            f"{', '.join(missing)}). Fit the head here instead: harness/run.py --preset clip-lr "
            "(the same L-BFGS fit), or add those arrays to the state dict as tensors")
    weight, bias = fold_logistic_regression(*(state[k] for k in CLIP_HEAD),
                                            num_labels=len(OFFICIAL_LABELS))
    return {"official.head.weight": weight, "official.head.bias": bias}


def _refuse(path, method: str, what: str, keys: list[str]) -> None:
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    raise iab.BenchmarkError(f"{path} does not fit {method}'s official network: {len(keys)} "
                             f"{what} ({shown}); is it a {OFFICIAL[method].name} checkpoint "
                             "of the official code (and, with --tiny, a tiny one)?")


def fitted(method: str, state: dict, config, where: str = "the state dict"):
    """(model on the meta device, our key -> tensor) of an official state dict, checked:
    refused unless its keys map exactly onto the official network (ours) and every shape
    agrees. ``state`` may hold meta tensors (shape checks without memory)."""
    import torch

    mapped, unused, unexpected = map_keys(method, state)
    if method == "clip-lr":
        mapped.update(_clip_head(state, where))
    with torch.device("meta"):
        model = _model_class(method)(config)
    expected = model.state_dict()
    unexpected += [k for k in mapped if k not in expected]
    if unexpected:
        _refuse(where, method, "keys it does not have", unexpected)
    missing = [k for k in expected if k not in mapped]
    if missing:
        _refuse(where, method, "keys it needs missing", missing)
    wrong = [f"{k} {tuple(mapped[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if mapped[k].shape != v.shape]
    if wrong:
        _refuse(where, method, "tensors of another shape", wrong)
    return model, mapped, unused


def convert(method: str, checkpoint: str | Path, out: str | Path, split: str | None = None,
            double_softmax: bool = False, tiny: bool = False,
            clip_config: dict | None = None) -> Path:
    """Write the official variant of ``method`` with ``checkpoint``'s weights to ``out``
    (safetensors + image processor); returns ``out``."""
    from transformers import ViTImageProcessor

    method = resolve(method)
    spec = check_method(method)
    path = Path(checkpoint)
    split = split_of(path, spec.name, split)
    state, record = load_official_state(path)
    config = official_config(method, tiny, double_softmax)
    if clip_config:
        config.official["clip"] = {**config.official.get("clip", {}), **clip_config}
    model, mapped, unused = fitted(method, state, config, str(path))
    dtypes = sorted({str(t.dtype) for t in mapped.values() if t.is_floating_point()})
    weights = {k: (v.float() if v.is_floating_point() else v).contiguous()
               for k, v in mapped.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    model.config.converted_from = {
        "file": path.name, "sha256": sha256(path), "official_method": spec.name,
        "official_repo": OFFICIAL_REPO, "split": split, "trained_on": SPLITS[split],
        "variant": "official", "epoch": record.get("epoch"), "dtypes": dtypes,
        "unused_keys": len(unused), "tiny": tiny}
    out = Path(out)
    model.save_pretrained(out)
    side = config.crop_size
    ViTImageProcessor(size={"height": side, "width": side}, image_mean=config.input_mean,
                      image_std=config.input_std).save_pretrained(out)
    return out


def _model_class(method: str):
    if method == "resnet50":
        from transformers import ResNetForImageClassification

        return ResNetForImageClassification
    from methods import ALL_METHODS

    return ALL_METHODS[method].classes()[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("method", help=" | ".join(f"{m} ({s.name})" for m, s in OFFICIAL.items()))
    p.add_argument("checkpoint", help="an official .pth (ckpt/<name>/<name>_<split>.pth)")
    p.add_argument("out", help="folder to write")
    p.add_argument("--split", choices=tuple(SPLITS),
                   help="the split it was trained on (default: from the file name)")
    p.add_argument("--double-softmax", action="store_true",
                   help="dna-det, repmix, clip-lr: output the probabilities, so that the "
                        "harness's softmax gives the official evaluation's AUROC / AP exactly "
                        "(it applies softmax twice; accuracy is the same either way)")
    p.add_argument("--tiny", action="store_true", help="a tiny checkpoint (tests)")
    p.add_argument("--clip-config", type=json.loads,
                   help="clip-lr: JSON overriding the CLIP vision config (default ViT-H/14's)")
    args = p.parse_args(argv)
    out = convert(args.method, args.checkpoint, args.out, args.split, args.double_softmax,
                  args.tiny, args.clip_config)
    config = json.loads((out / "config.json").read_text())
    source = config["converted_from"]
    print(f"wrote {out}: {resolve(args.method)} (official variant) from {source['file']} "
          f"(sha256 {source['sha256'][:12]}...), trained on {source['trained_on']}")
    return 0


if __name__ == "__main__":
    run_script(main)

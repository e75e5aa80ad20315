"""Write a freshly initialised method checkpoint (weights + image processor) to fine-tune:

    python -m methods.init patchcraft checkpoints/patchcraft
    python -m methods.init ssp checkpoints/ssp --backbone-weights microsoft/resnet-50
    accelerate launch harness/run.py --model checkpoints/patchcraft --protocol paper

(``harness/run.py --preset NAME`` does this itself.) ``--tiny`` gives the same architecture
at a few thousand to a few hundred thousand weights, for CPU tests and the offline demo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script
from methods import METHODS

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5,) * 3, (0.5,) * 3)
TINY_RESNET = {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1],
               "layer_type": "basic"}

# Normalisation the harness applies before the model, as each paper's code does.
NORMALISATION = {
    "dct-cnn": ((0.0,) * 3, (1.0,) * 3),  # the spectrum is standardised inside the model
    "patch-forensics": HALF, "dna-det": HALF, "patchcraft": HALF, "pose": HALF,
    "defl": HALF, "hifi-net": HALF, "ucf": HALF,  # UCF's decoder rebuilds [-1, 1] images
    "gfd": HALF,  # fingerprinted images are real images in [-1, 1] plus a fingerprint
    "repmix": IMAGENET, "ssp": IMAGENET,  # ImageNet-initialised ResNet-50 backbones
}
TINY = {  # 64 px crops: the tiny generators' images are 64 x 64
    "dct-cnn": {"hidden_sizes": [16, 32, 64], "crop_size": 64},
    "patch-forensics": {"widths": [8, 16, 32, 32], "crop_size": 64},
    "dna-det": {"widths": [16, 32, 32, 64], "projection": 32, "train_crops": 4,
                "train_crop_size": 32, "crop_size": 64},
    "repmix": {"backbone_spec": TINY_RESNET, "embedding": 32},  # resize 256, crop 224 kept
    "patchcraft": {"patch_size": 8, "grid_side": 4, "width": 16, "crop_size": 64},
    "pose": {"widths": [16, 32, 32, 64], "feature_size": 64, "map_size": 2, "crop_size": 64},
    "ssp": {"patch_size": 16, "resize_to": 32, "backbone_spec": TINY_RESNET, "crop_size": 64},
    "defl": {"level_width": 8, "backbone_spec": TINY_RESNET, "fingerprint": 32,
             "clip_config": {"hidden_size": 32, "intermediate_size": 64,
                             "num_hidden_layers": 1, "num_attention_heads": 2,
                             "image_size": 32, "patch_size": 16, "projection_dim": 16},
             "crop_size": 64},
    "hifi-net": {"stem_width": 8, "widths": [8, 8, 16, 16], "crop_size": 64},
    "ucf": {"backbone_spec": TINY_RESNET, "width": 32, "decoder_widths": [16, 8],
            "crop_size": 64},
    "gfd": {"base_channels": 4, "discriminator_width": 4, "backbone_spec": TINY_RESNET,
            "crop_size": 64},
}


# Where each method's paper starts from (init:NAME in harness/run.py); the rest train from
# scratch, as their papers do.
PRETRAINED = {
    "repmix": {"backbone_weights": "microsoft/resnet-50"},
    "ssp": {"backbone_weights": "microsoft/resnet-50"},
    "ucf": {"backbone_weights": "microsoft/resnet-50"},
    "gfd": {"backbone_weights": "microsoft/resnet-50"},  # its auxiliary classifier
    "defl": {"backbone_weights": "microsoft/resnet-50",
             "clip_weights": "openai/clip-vit-base-patch16"},
}


def check_name(name: str) -> str:
    if name not in METHODS:
        raise iab.unknown_name("method", name, METHODS)
    return name


def init_checkpoint(name: str, out: str | Path, size: int | None = None, tiny: bool = False,
                    backbone_weights: str | None = None, seed: int = 0,
                    clip_weights: str | None = None) -> Path:
    """Save method ``name``, randomly initialised (seeded), with its image processor (crop
    side ``size``, default the paper's) to ``out``; returns ``out``."""
    import torch
    from transformers import ViTImageProcessor

    config_class, model_class = METHODS[check_name(name)].classes()
    overrides = dict(TINY[name]) if tiny else {}
    mean, std = NORMALISATION[name]
    overrides.update(input_mean=list(mean), input_std=list(std))
    if size is not None:
        overrides["crop_size"] = size
    clip = None
    if clip_weights:
        if name != "defl":
            raise iab.BenchmarkError(f"{name} has no CLIP branch; --clip-weights is for defl")
        from transformers import CLIPVisionModelWithProjection

        clip = CLIPVisionModelWithProjection.from_pretrained(clip_weights)
        overrides["clip_config"] = clip.config.to_dict()  # activation, eps ... as trained
    with torch.random.fork_rng():  # seeded weights without moving the caller's RNG
        torch.manual_seed(seed)
        model = model_class(config_class(**overrides))
    config = model.config
    if clip is not None:
        model.clip.load_state_dict(clip.state_dict())
    from transformers import ResNetModel

    if backbone_weights:
        if not isinstance(getattr(model, "backbone", None), ResNetModel):
            raise iab.BenchmarkError(f"{name} has no ResNet backbone to start from "
                                     f"{backbone_weights}; methods with one: repmix, ssp, "
                                     "defl, ucf, gfd")
        from methods.backbone import load_pretrained

        load_pretrained(model.backbone, backbone_weights)
    if hasattr(model, "after_backbone_weights"):  # GFD: its frozen perceptual copy
        model.after_backbone_weights()
    config.initialised_from = {k: v for k, v in (("backbone", backbone_weights),
                                                 ("clip", clip_weights)) if v} or "random"
    out = Path(out)
    model.save_pretrained(out)
    side = config.crop_size
    ViTImageProcessor(size={"height": side, "width": side}, image_mean=list(mean),
                      image_std=list(std)).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        formatter_class=DefaultsHelpFormatter, description=__doc__.split("\n\n")[0])
    p.add_argument("method", help=" | ".join(METHODS))
    p.add_argument("out", help="folder to write")
    p.add_argument("--size", type=int, help="crop side the harness feeds it (default: the "
                                            "paper's)")
    p.add_argument("--tiny", action="store_true", help="tiny widths, for CPU tests and demos")
    p.add_argument("--backbone-weights", help="Hub ResNet to start the backbone from "
                                              "(repmix, ssp, defl, ucf, gfd), e.g. "
                                              "microsoft/resnet-50")
    p.add_argument("--clip-weights", help="Hub CLIP for DEFL's semantic branch, e.g. "
                                          "openai/clip-vit-base-patch16")
    p.add_argument("--seed", type=int, default=0, help="seeds the random initialisation")
    args = p.parse_args(argv)
    print(init_checkpoint(args.method, args.out, args.size, args.tiny, args.backbone_weights,
                          args.seed, args.clip_weights))
    return 0


if __name__ == "__main__":
    run_script(main)

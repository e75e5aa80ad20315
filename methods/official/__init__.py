"""The paper's official attributors (mttry/ImageAttributionBench, ``training/attributors``) as
the ``official`` variant of each method: what each one computes at test time, its module
names (its state dicts load one to one), its input, and its 23-class output order.

    from methods.official import official_config
    config = official_config("dna-det")     # the method's config, variant "official"

``OFFICIAL`` says per method: the official attributor's name, the input policy and
normalisation its test loader applies (harness/data.py implements the policies), which of its
state-dict keys the test-time network does not read (training-only parts: discriminators,
content encoders, loss modules ...), and the tiny widths the CPU tests use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import imageattributionbench as iab

# The official code's label ids: dataset.py model_class_to_label (4o = 0 ... real = 22).
OFFICIAL_LABELS = ("4o", "CogView3_PLUS", "FLUX", "KANDINSKY", "PIXART", "PLAYGROUND_2_5",
                   "SD1_5", "SD2_1", "SD3", "SD3_5", "SDXL", "dalle3", "gemini", "grok3",
                   "hidream", "hunyuan", "ideogram", "infinity", "janus-pro", "kling",
                   "mid-5.2", "mid-6.0", "real")
assert set(OFFICIAL_LABELS) <= set(iab.LABELS)

# The four checkpoints of each method: <method>_<split>.pth, and the config each was trained
# on (the official --task_id 1, 2, 3 train on cat, bedroom and FFHQ).
SPLITS = {"default": "standard", "split1": "semantic_disjoint",
          "split2": "semantic_disjoint_bedroom", "split3": "semantic_disjoint_ffhq"}
OFFICIAL_REPO = "https://github.com/mttry/ImageAttributionBench"

HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
RAW = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # x / 255: the network normalises (or not) itself
TINY_RESNET = {"width": 4, "depths": [1, 1, 1, 1]}


@dataclass(frozen=True)
class OfficialSpec:
    """How one official attributor maps onto our method's official variant."""

    name: str  # the official attributor (config/model/<name>.yaml, ckpt/<name>/)
    network: str  # "module:Class" in methods/official
    policy: str  # harness input policy
    crop_size: int
    norm: tuple = HALF
    unused: tuple = ()  # official key prefixes the test-time network never reads
    tiny: dict = field(default_factory=dict)  # official-variant settings for CPU tests
    tiny_crop: int | None = None
    double_softmax: bool = False  # whether the official evaluation applies softmax twice
    note: str = ""  # where the official inference departs from the method's paper


OFFICIAL = {
    "dct-cnn": OfficialSpec(
        "dct", "simple:DCTNet", "paper_center", 256, RAW, tiny_crop=64,
        note="raw |DCT| of 0-255 pixels, no log, no standardisation"),
    "patch-forensics": OfficialSpec(
        "patch", "simple:PatchNet", "paper_center", 256,
        tiny={"channels": [3, 4, 4, 8, 8]}, tiny_crop=64),
    "gfd": OfficialSpec(
        "gfd", "simple:GFDNet", "paper_center", 256,
        unused=("generator.decoder.", "discriminator.", "auxiliary_classifier.", "loss_fn."),
        tiny={"base_channels": 2}, tiny_crop=64,
        note="predicts with the generator's latent classifier only"),
    "dna-det": OfficialSpec(
        "dna", "simple:DNANet", "paper_center", 512, unused=("head.", "awl."),
        tiny={"nf": 4}, tiny_crop=64, double_softmax=True,
        note="the 256 crop resized to 512; softmax inside the model and in the evaluation"),
    "repmix": OfficialSpec(
        "repmix", "resnets:RepMixNet", "paper_resnet", 224, unused=("det_ce.",),
        tiny={"resnet": TINY_RESNET, "d_embed": 8}, double_softmax=True,
        note="label 0 (4o) gated by P(real); softmax twice in the evaluation"),
    "hifi-net": OfficialSpec(
        "hifi_net", "hifi_net:HiFiNet", "paper_center", 256,
        unused=("SegNet.branch_cls_level_1.", "SegNet.branch_cls_level_2.",
                "SegNet.branch_cls_level_3."),
        tiny={"hrnet": {"stem": 4, "stage1_planes": 2, "stage1_blocks": 1,
                        "channels": [2, 2, 4, 4], "blocks": 1}}, tiny_crop=64),
    "ucf": OfficialSpec(
        "ucf", "ucf:UCFNet", "paper_center", 256,
        unused=("encoder_c.", "con_gan.", "head_sha.", "block_sha.",
                "encoder_f.last_linear."),
        tiny={"channels": [3, 4, 4, 8, 8] + [8] * 9 + [8, 8, 16], "encoder_feat_dim": 8},
        tiny_crop=64),
    "pose": OfficialSpec(
        "pose", "simple:POSENet", "paper_center", 256, tiny={"nf": 4}, tiny_crop=64,
        note="tests on the 2-D DCT of the image although trained on the image"),
    "patchcraft": OfficialSpec(
        "patchcraft", "simple:PatchCraftNet", "patchcraft_views", 363, RAW,
        tiny={"width": 4},
        note="rich/poor views of the full image; binarised filter-bank responses"),
    "ssp": OfficialSpec(
        "ssp", "resnets:SSPNet", "paper_center", 256, IMAGENET, unused=("srm.",),
        tiny={"resnet": TINY_RESNET}, tiny_crop=64, note="its SRM filter is never applied"),
    "defl": OfficialSpec(
        "defl", "defl:DEFLNet", "defl_views", 462, RAW,
        unused=("semantic_extractor.defl_model.", "semantic_extractor.clip_model_visual.",
                "semantic_extractor.clip_model.transformer.",
                "semantic_extractor.clip_model.token_embedding.",
                "semantic_extractor.clip_model.positional_embedding",
                "semantic_extractor.clip_model.ln_final.",
                "semantic_extractor.clip_model.text_projection",
                "semantic_extractor.clip_model.logit_scale", "criterion."),
        tiny={"level_width": 4, "resnet": TINY_RESNET,
              "clip": {"layers": [1, 1, 1, 1], "width": 8, "output_dim": 8, "heads": 2}}),
    "clip-lr": OfficialSpec(
        "clip_lr", "clip_lr:CLIPLRNet", "paper_resnet", 224,
        unused=("clip_model.text_model.", "clip_model.text_projection.",
                "clip_model.logit_scale"),
        tiny={"clip": {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "patch_size": 16, "projection_dim": 8}},
        double_softmax=True, note="mean/std 0.5 inputs; softmax twice in the evaluation"),
    "resnet50": OfficialSpec("resnet50", "", "paper_resnet", 224, IMAGENET),
}
BY_OFFICIAL_NAME = {spec.name: method for method, spec in OFFICIAL.items()}


def check_method(method: str) -> OfficialSpec:
    if method not in OFFICIAL:
        raise iab.BenchmarkError(f"unknown method {method!r}; methods with an official "
                                 f"variant: {', '.join(OFFICIAL)} (or the official names: "
                                 f"{', '.join(BY_OFFICIAL_NAME)})")
    return OFFICIAL[method]


def resolve(method: str) -> str:
    """Our method name for ours or the official attributor's name (``dna`` -> dna-det)."""
    return BY_OFFICIAL_NAME.get(method, method) if method not in OFFICIAL else method


def official_settings(method: str, tiny: bool = False, double_softmax: bool = False) -> dict:
    """Config keyword arguments of a method's official variant."""
    spec = check_method(method)
    if double_softmax and not spec.double_softmax:
        raise iab.BenchmarkError(f"{method}'s official evaluation applies softmax once: "
                                 "--double-softmax is for dna-det, repmix and clip-lr")
    official = dict(spec.tiny) if tiny else {}
    if spec.double_softmax:
        official["double_softmax"] = double_softmax
    crop = spec.tiny_crop if tiny and spec.tiny_crop else spec.crop_size
    return {"variant": "official", "official": official, "input_policy": spec.policy,
            "crop_size": crop, "input_mean": list(spec.norm[0]),
            "input_std": list(spec.norm[1]), "num_labels": len(OFFICIAL_LABELS),
            "id2label": dict(enumerate(OFFICIAL_LABELS)),
            "label2id": {n: i for i, n in enumerate(OFFICIAL_LABELS)}}


def official_config(method: str, tiny: bool = False, double_softmax: bool = False):
    """The method's config, variant ``official`` (for resnet50: a transformers ResNetConfig
    with the same record fields)."""
    settings = official_settings(method, tiny, double_softmax)
    if method == "resnet50":
        from methods.official.resnet50 import resnet50_config

        return resnet50_config(settings, tiny)
    from methods import ALL_METHODS

    config_class, _ = ALL_METHODS[method].classes()
    return config_class(**settings)


def build_network(config):
    """The official network of a method config whose variant is ``official``."""
    method = next((m for m, s in OFFICIAL.items() if s.network and
                   _model_type(m) == config.model_type), None)
    if method is None:
        raise ValueError(f"{config.model_type} has no official network")
    module, cls = OFFICIAL[method].network.split(":")
    return getattr(importlib.import_module(f"methods.official.{module}"), cls)(config)


def _model_type(method: str) -> str:
    from methods import ALL_METHODS

    return ALL_METHODS[method].classes()[0].model_type

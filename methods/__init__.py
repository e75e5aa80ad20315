"""The paper's attribution methods as transformers models, registered with the Auto classes
when this package is imported, so that checkpoints load without remote code:

    import methods  # noqa: F401  (registers)
    model = AutoModelForImageClassification.from_pretrained("ORG/iab-patchcraft")

``METHODS`` names each method's module and classes (``python -m methods.init NAME DIR`` writes
a fresh checkpoint to fine-tune with ``harness/run.py``). Each has a ``paper`` variant (its
paper's method, the default) and an ``official`` one (the paper's code as it ran, for its
released checkpoints: ``python -m methods.convert_official``, methods/official/).
``ALL_METHODS`` adds CLIP-LR's model, which only scores converted official checkpoints (the
harness fits CLIP-LR itself as a linear probe: ``--preset clip-lr``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from transformers import AutoConfig, AutoModelForImageClassification


@dataclass(frozen=True)
class MethodSpec:
    module: str
    config: str
    model: str
    summary: str

    def classes(self):
        mod = importlib.import_module(self.module)
        return getattr(mod, self.config), getattr(mod, self.model)


METHODS = {
    "dct-cnn": MethodSpec("methods.dct", "DCTConfig", "DCTForImageClassification",
                          "Frank et al., ICML 2020: log |DCT| spectrum + CNN"),
    "patch-forensics": MethodSpec(
        "methods.patch_forensics", "PatchForensicsConfig", "PatchForensicsForImageClassification",
        "Chai et al., ECCV 2020: Xception cut after block 2, per-patch classification"),
    "dna-det": MethodSpec("methods.dna_det", "DNADetConfig", "DNADetForImageClassification",
                          "Yang et al., AAAI 2022: random crops, CE + supervised contrastive"),
    "repmix": MethodSpec("methods.repmix", "RepMixConfig", "RepMixForImageClassification",
                         "Bui et al., ECCV 2022: ResNet-50 with mixed representations"),
    "patchcraft": MethodSpec("methods.patchcraft", "PatchCraftConfig",
                             "PatchCraftForImageClassification",
                             "Zhong et al., 2023: rich/poor texture contrast, 30 SRM filters"),
    "pose": MethodSpec("methods.pose", "POSEConfig", "POSEForImageClassification",
                       "Yang et al., ICCV 2023: open space expanded by random augmenters"),
    "ssp": MethodSpec("methods.ssp", "SSPConfig", "SSPForImageClassification",
                      "Chen et al., 2024: simplest patch, SRM, ResNet-50"),
    "defl": MethodSpec("methods.defl", "DEFLConfig", "DEFLForImageClassification",
                       "Li et al., ACM MM 2024: learned handcrafted filters, dual-margin loss"),
    "hifi-net": MethodSpec("methods.hifi_net", "HiFiNetConfig", "HiFiNetForImageClassification",
                           "Guo et al., CVPR 2023: colour + Laplacian stems, 4-level hierarchy"),
    "ucf": MethodSpec("methods.ucf", "UCFConfig", "UCFForImageClassification",
                      "Yan et al., ICCV 2023: forgery/content encoders, specific + common"),
    "gfd": MethodSpec("methods.gfd", "GFDConfig", "GFDForImageClassification",
                      "Yang et al., arXiv 2021: GAN fingerprint disentangling (U-Net, "
                      "discriminator, auxiliary classifier)"),
}
ALL_METHODS = {**METHODS, "clip-lr": MethodSpec(
    "methods.clip_lr", "CLIPLRConfig", "CLIPLRForImageClassification",
    "Cioni et al., arXiv 2024: logistic regression on frozen CLIP image embeddings")}


def register_all() -> None:
    for spec in ALL_METHODS.values():
        config, model = spec.classes()
        AutoConfig.register(config.model_type, config, exist_ok=True)
        AutoModelForImageClassification.register(config, model, exist_ok=True)


register_all()

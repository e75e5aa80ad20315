"""The official side of benchmarks/official_parity.py, run in the official environment
(torch 2.3, the paper's code copied outside the project): build each official attributor
offline on CPU with random weights, save its state dict as its trainer does, run its test
pipeline on the fixed images; or record the CI tests' facts of the official code
(``--record-fixture``). Nothing here imports the project.

    /tmp/om-venv/bin/python benchmarks/official_side.py --work /tmp/official-parity \
        [--methods dct,patch] [--record-fixture tests/fixtures/official_arch.json.gz]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from official_parity import IMAGES, OFFICIAL_NAMES, make_images

def _cpu_shims():
    """CPU stand-ins for the official code's GPU calls."""
    import torch

    def cpu(a):
        if isinstance(a, int) and not isinstance(a, bool):
            return "cpu"
        if isinstance(a, str) and a.startswith("cuda") or \
                isinstance(a, torch.device) and a.type == "cuda":
            return "cpu"
        return a

    for cls in (torch.Tensor, torch.nn.Module):
        original = cls.to

        def to(self, *args, _original=original, **kw):
            args = tuple(cpu(a) for a in args)
            if "device" in kw:
                kw["device"] = cpu(kw["device"])
            return _original(self, *args, **kw)

        cls.to = to
        cls.cuda = lambda self, *a, **k: self


def _stubs(root: Path) -> None:
    """Modules the official repository imports but does not contain."""
    (root / "debug").mkdir(parents=True, exist_ok=True)
    (root / "debug" / "__init__.py").write_text("")
    (root / "debug" / "print_func.py").write_text("def print_tensor(*a, **k):\n    pass\n")
    (root / "imagenet_c.py").write_text("corruption_dict = {}\n\ndef corrupt(*a, **k):\n"
                                        "    raise RuntimeError('stub')\n")
    (root / "MulticoreTSNE.py").write_text("class MulticoreTSNE:\n    pass\n")


def _randomise_batchnorm(model, seed: int) -> None:
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.weight is not None:
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))


def _official_config(src: Path, name: str) -> dict:
    import yaml

    yaml_name = {"dna": "dna_default"}.get(name, name)
    return yaml.safe_load((src / "training/config/model" / f"{yaml_name}.yaml").read_text())


def _fake_root(work: Path, images: list[Path]) -> Path:
    """A dataset root the official loaders scan: the images as ``real`` cat images."""
    import shutil

    root = work / "dataset_root"
    folder = root / "real" / "AnimalFace" / "cat"
    folder.mkdir(parents=True, exist_ok=True)
    for p in images:
        shutil.copy(p, folder / p.name)
    return root


def official_side(src: Path, work: Path, names: list[str]) -> None:
    import torch
    import torchvision

    torch.set_num_threads(2)
    _cpu_shims()
    _stubs(work / "stubs")
    sys.path[:0] = [str(work / "stubs"), str(src / "training"), str(src)]
    os.chdir(src / "training")
    original_resnet50, original_vgg16 = torchvision.models.resnet50, torchvision.models.vgg16
    torchvision.models.resnet50 = lambda *a, **k: original_resnet50(weights=None)
    torchvision.models.vgg16 = lambda *a, **k: original_vgg16(weights=None)
    import clip
    import clip.clip as clip_module

    def clip_load(name, device="cpu", **_):  # RN50x16 from its constructor, float32
        model = clip.model.CLIP(768, 384, (6, 8, 18, 8), 96, None, 77, 49408, 768, 12, 12)
        return model.float().eval(), clip_module._transform(384)

    clip.load = clip_module.load = clip_load
    images = make_images(work)
    root = _fake_root(work, images)
    from attributors import ATTRIBUTOR
    from dataset.ImageAttributionDataset import DATASET

    for i, name in enumerate(names):
        torch.manual_seed(i)
        model, dataset = _build(src, name, root)
        _randomise_batchnorm(model, 1000 + i)
        model.eval()
        state = model.state_dict()
        if name == "clip_lr":
            state.update(_fit_clip_lr(model))
        folder = work / "official" / name
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"model_state_dict": state, "epoch": 1}, folder / f"{name}_default.pth")
        batch = _collate(dataset, [dataset[j] for j in range(len(dataset))])
        with torch.no_grad():
            out = model(batch, inference=True)["logits"]
        # the scores its compute_metrics hands calculate_metrics_for_test (which applies
        # softmax to them, except for Patch-Forensics' mean patch softmax)
        if name == "patch":
            out = torch.softmax(out, dim=1).mean(dim=(2, 3))
        elif name == "repmix":
            out = torch.softmax(out, dim=1)
        order = [Path(p).name for p, *_ in dataset.samples]
        torch.save({"output": out.float(), "images": order}, folder / "output.pt")
        print(f"official {name}: output {tuple(out.shape)}", flush=True)
    del ATTRIBUTOR, DATASET


def _collate(dataset, items):
    import torch

    fn = getattr(dataset, "collate_fn", None)
    return fn(items) if fn else torch.utils.data.default_collate(items)


def _build(src: Path, name: str, root: Path):
    """(attributor, test dataset) of one official method, offline on CPU."""
    import torch
    from attributors import ATTRIBUTOR
    from dataset.ImageAttributionDataset import DATASET

    config = _official_config(src, name)
    if name == "clip_lr":
        import transformers

        def tiny_clip(*a, **k):
            vision = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 2,
                      "num_attention_heads": 16, "patch_size": 14, "image_size": 224,
                      "hidden_act": "gelu", "layer_norm_eps": 1e-5}
            text = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1,
                    "num_attention_heads": 2}
            return transformers.CLIPModel(transformers.CLIPConfig(
                vision_config=vision, text_config=text, projection_dim=1024))

        transformers.CLIPModel.from_pretrained = tiny_clip
    if name == "patch":
        from backbones.patch_forensics import netutils

        def init_net(net, init_type="xavier", gpu_ids=()):
            net = torch.nn.DataParallel(net, list(gpu_ids)) if gpu_ids else net
            netutils.init_weights(net, init_type)
            return net

        netutils.init_net = init_net
    if name == "ucf":
        original_load = torch.load
        torch.load = lambda *a, **k: {}  # no pretrained Xception file offline
        try:
            model = ATTRIBUTOR[name](config)
        finally:
            torch.load = original_load
    else:
        model = ATTRIBUTOR[name](config)
    if name == "ssp":
        _deterministic_ssp_patch()
    if name == "patchcraft":
        _deterministic_patchcraft()
    dataset = DATASET[name](root_dir=str(root), num_images_per_semantic_per_class=2000,
                            config=config)
    dataset.set_test()
    if name == "repmix":
        import torchvision.transforms as T

        prep = T.Compose([T.Resize(config["img_rsize"]), T.CenterCrop(config["img_csize"])])
        dataset.transform["test"] = [prep] + list(dataset.transform["test"][1:])
    return model, dataset


class _StableNumpy:
    """numpy with a stable argsort: the official PatchCraft's order of equally diverse
    patches is numpy's unstable sort's, which depends on the numpy version and the CPU."""

    def __getattr__(self, name):
        import numpy

        if name == "argsort":
            return lambda a, **k: numpy.argsort(a, kind="stable")
        return getattr(numpy, name)


def _deterministic_patchcraft():
    import importlib

    # the official package is importable under two names (its __init__ extends sys.path):
    # patch both copies of the module
    for name in ("ImageAttributionDataset.dataset_patchcraft",
                 "dataset.ImageAttributionDataset.dataset_patchcraft"):
        pc = importlib.import_module(name)
        pc.random_augmentation = lambda image: image  # its 10 % JPEG / blur / resize
        pc.np = _StableNumpy()


def _deterministic_ssp_patch():
    """SSP's patch choice over the half-overlapping grid (its ``compute``, stable sort)."""
    import utils.ssp.patch as patch
    import utils.ssp.tdataloader as loader

    def patch_img(img, patch_size, height):
        w, h = img.size
        crops = [img.crop((left, top, left + patch_size, top + patch_size))
                 for top in range(0, h - patch_size + 1, patch_size // 2)
                 for left in range(0, w - patch_size + 1, patch_size // 2)]
        crops.sort(key=patch.compute)
        return crops[0]

    patch.patch_img = loader.patch_img = patch_img


def _fit_clip_lr(model) -> dict:
    """Fit the official CLIP-LR head on random images covering the 23 labels; its scaler and
    regression exported as tensors (the official trainer never saves them)."""
    import torch

    g = torch.Generator().manual_seed(7)
    labels = torch.arange(46) % 23
    loader = [{"image": torch.rand(23, 3, 224, 224, generator=g) * 2 - 1,
               "label": labels[k * 23:(k + 1) * 23]} for k in range(2)]
    model.train_linear_probe(loader)
    s, lr = model.scaler, model.linear_probe
    return {"scaler.mean_": torch.as_tensor(s.mean_), "scaler.scale_": torch.as_tensor(s.scale_),
            "linear_probe.coef_": torch.as_tensor(lr.coef_),
            "linear_probe.intercept_": torch.as_tensor(lr.intercept_),
            "linear_probe.classes_": torch.as_tensor(lr.classes_)}


def record_fixture(src: Path, work: Path, target: Path) -> None:
    """tests/fixtures/official_arch.json.gz, facts of the official code for the CI tests:
    every attributor's state-dict names and shapes at full size, its label order, a few
    constant tensors its constructors build, and digests of its test pipelines' pixels."""
    import gzip
    import hashlib

    import numpy as np
    import torch
    import torchvision.transforms as T
    from PIL import Image

    official_side(src, work, [])  # the shims and stubs; no method
    import transformers
    from dataset.ImageAttributionDataset.dataset import model_class_to_label
    import dataset.ImageAttributionDataset.dataset_patchcraft as pc

    laion = {"vision_config": {"hidden_size": 1280, "intermediate_size": 5120,
                               "num_hidden_layers": 32, "num_attention_heads": 16,
                               "patch_size": 14, "image_size": 224},
             "text_config": {"hidden_size": 1024, "intermediate_size": 4096,
                             "num_hidden_layers": 24, "num_attention_heads": 16},
             "projection_dim": 1024}

    def full_clip(*a, **k):  # ViT-H/14's 1B parameters: names and shapes only
        with torch.device("meta"):
            model = transformers.CLIPModel(transformers.CLIPConfig(**laion))
        model.to = lambda *a, **k: model
        return model

    fixture = {"labels": sorted(model_class_to_label, key=model_class_to_label.get),
               "state_dicts": {}, "constants": {}, "pipelines": {}}
    root = _fake_root(work, make_images(work))
    for name in OFFICIAL_NAMES:
        if name == "clip_lr":
            transformers.CLIPModel.from_pretrained = full_clip
            from attributors import ATTRIBUTOR

            model = ATTRIBUTOR[name](_official_config(src, name))
        else:
            model = _build(src, name, root)[0]
        fixture["state_dicts"][name] = {k: list(v.shape) for k, v in model.state_dict().items()}
        print(f"recorded {name}: {len(fixture['state_dicts'][name])} tensors", flush=True)
        sd = model.state_dict()
        if name == "patchcraft":
            fixture["constants"]["patchcraft"] = {k: sd[k].tolist() for k in sd
                                                  if k.startswith("filter.")}
        if name == "hifi_net":
            fixture["constants"]["hifi_net"] = {
                k: sd[k][0, 0].tolist() for k in sd if "laplacian.smoothing" in k}
        del model
    digest = lambda a: hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa
    for i in range(len(IMAGES)):
        img = Image.open(work / f"img{i}.png").convert("RGB")
        center = T.Compose([T.Resize(256), T.CenterCrop(256)])(img)
        poor, rich = pc.split_and_reconstruct_image(np.array(img))  # it returns (p, r)
        tiles = [[int(pc.compute(Image.fromarray(view[r:r + 32, c:c + 32])))
                  for r in range(0, 256, 32) for c in range(0, 256, 32)]
                 for view in (rich, poor)]
        clip_view = T.Compose([T.Resize(384, interpolation=T.InterpolationMode.BICUBIC),
                               T.CenterCrop(384)])(img)
        fixture["pipelines"][f"img{i}"] = {
            "resnet": digest(np.array(T.Compose([T.Resize(256), T.CenterCrop(224)])(img))),
            "center256": digest(np.array(center)), "rich": digest(rich), "poor": digest(poor),
            "dna512": digest(np.array(center.resize([512, 512]))),
            "clip384": digest(np.array(clip_view)),
            "rich_tiles": tiles[0], "poor_tiles": tiles[1]}
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(target, "wt", encoding="utf-8") as f:
        json.dump(fixture, f, sort_keys=True)
    print(f"wrote {target}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, required=True, help="holds src/, the official code")
    p.add_argument("--methods", default=",".join(OFFICIAL_NAMES))
    p.add_argument("--record-fixture", type=Path)
    args = p.parse_args()
    src = args.work / "src"
    if args.record_fixture:
        record_fixture(src, args.work, args.record_fixture)
    else:
        official_side(src, args.work, [n for n in args.methods.split(",") if n])
    return 0


if __name__ == "__main__":
    sys.exit(main())

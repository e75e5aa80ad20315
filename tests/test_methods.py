"""The paper's methods as transformers models (issue 6): shapes, round trips, preprocessing
as each paper has it, training through the harness's presets, and the method's card."""

import json

import numpy as np
import pytest
import torch
import yaml
from scipy.fft import dctn
from transformers import AutoConfig, AutoModelForImageClassification

import imageattributionbench as iab
import methods
from harness import run as harness_run
from helpers import assert_above_chance
from methods.dct import DCTConfig, log_dct_spectrum
from methods.init import TINY, init_checkpoint
from methods.patch_forensics import PatchForensicsConfig, receptive_field
from methods.texture import grid_patches, srm3_kernels, srm_kernels, texture_diversity

NAMES = list(methods.METHODS)


def tiny_model(name: str, seed: int = 0):
    config_class, model_class = methods.METHODS[name].classes()
    torch.manual_seed(seed)
    return model_class(config_class(**TINY[name]))


def test_every_method_is_registered_and_has_a_tiny_variant():
    assert NAMES == ["dct-cnn", "patch-forensics", "dna-det", "repmix", "patchcraft", "pose",
                     "ssp", "defl", "hifi-net", "ucf", "gfd"]
    assert set(TINY) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_loss_and_labels(name):
    model = tiny_model(name).eval()
    out = model(torch.rand(3, 3, 64, 64))
    assert out.logits.shape == (3, len(iab.LABELS)) and torch.isfinite(out.logits).all()
    assert model.config.id2label[0] == "real" and model.config.num_labels == len(iab.LABELS)
    assert model.config.reference and model.config.hyperparameters["lr"] > 0
    model.train()
    labels = torch.tensor([0, 1, 1])
    loss = model(torch.rand(3, 3, 64, 64), labels=labels).loss
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_through_the_auto_classes(name, tmp_path):
    model = tiny_model(name).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert type(AutoConfig.from_pretrained(tmp_path)) is type(model.config)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    x = torch.rand(2, 3, 64, 64)
    torch.testing.assert_close(loaded(x).logits, model(x).logits)


@pytest.mark.parametrize("name", NAMES)
def test_open_set_mask_keeps_training_off_unknown_labels(name):
    model = tiny_model(name).train()
    mask = torch.zeros(len(iab.LABELS), dtype=torch.bool)
    mask[:4] = True
    labels = torch.tensor([0, 1, 2, 3])
    loss = model(torch.rand(4, 3, 64, 64), labels=labels, label_mask=mask).loss
    loss.backward()
    head = {"dct-cnn": "classifier", "patch-forensics": "patch_classifier",
            "dna-det": "classifier", "repmix": "attribution", "patchcraft": "classifier",
            "pose": "classifier", "ssp": "classifier", "defl": "classifier.4",
            "hifi-net": "heads.3.7", "ucf": "head_specific.5",
            "gfd": "generator.classification_head.2"}[name]
    grad = model.get_submodule(head).weight.grad.flatten(1).abs().sum(1)
    assert grad[4:].max() == 0 and grad[:4].max() > 0


# --- preprocessing as each paper has it -------------------------------------------------


def test_dct_is_the_log_magnitude_spectrum_of_the_native_image():
    x = torch.randn(2, 3, 37, 64, dtype=torch.float64)
    ref = np.log(np.abs(dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))) + 1e-6)
    np.testing.assert_allclose(log_dct_spectrum(x, 1e-6).numpy(), ref, atol=1e-8)
    assert DCTConfig().input_policy == "native_crop"


@pytest.mark.parametrize("name,policy", [("dct-cnn", "native_crop"),
                                         ("patch-forensics", "native_crop"),
                                         ("dna-det", "native_crop"), ("repmix", "paper_resnet"),
                                         ("patchcraft", "native_crop"), ("pose", "native_crop"),
                                         ("ssp", "native_crop"), ("defl", "native_crop"),
                                         ("hifi-net", "native_crop"), ("ucf", "native_crop")])
def test_input_policy_recorded_in_the_config(name, policy):
    config_class, _ = methods.METHODS[name].classes()
    assert config_class().input_policy == policy


def test_patch_forensics_outputs_see_only_their_receptive_field():
    config = PatchForensicsConfig()
    assert receptive_field(config) == 43  # xception_block2, as the paper reports
    model = tiny_model("patch-forensics").eval()
    x = torch.rand(1, 3, 128, 128, requires_grad=True)
    patches = model.patch_logits(x)
    patches[0, :, 8, 8].sum().backward()
    rows, cols = np.nonzero(x.grad.abs().sum(1)[0].numpy())
    assert rows.max() - rows.min() + 1 == receptive_field(model.config) == 43
    assert cols.max() - cols.min() + 1 == 43
    # the image's probabilities are the patches' mean softmax
    with torch.no_grad():
        mean = torch.softmax(model.patch_logits(x), dim=1).mean(dim=(-2, -1))
        torch.testing.assert_close(torch.softmax(model(x).logits, -1), mean)


def _numpy_diversity(patch: np.ndarray) -> float:
    p = patch.astype(np.float64)  # (C, P, P)
    return float(np.abs(np.diff(p, axis=2)).sum() + np.abs(np.diff(p, axis=1)).sum()
                 + np.abs(p[:, 1:, 1:] - p[:, :-1, :-1]).sum()
                 + np.abs(p[:, 1:, :-1] - p[:, :-1, 1:]).sum())


def test_texture_diversity_matches_the_four_direction_sum():
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (5, 3, 8, 8))
    got = texture_diversity(torch.as_tensor(patches)).numpy()
    np.testing.assert_allclose(got, [_numpy_diversity(p) for p in patches])
    flat = np.full((3, 8, 8), 7)
    assert texture_diversity(torch.as_tensor(flat)) == 0


def test_srm_filters_are_thirty_distinct_high_pass_kernels():
    k = srm_kernels()
    assert k.shape == (30, 5, 5)
    assert torch.allclose(k.sum(dim=(1, 2)), torch.zeros(30), atol=1e-6)  # constant -> 0
    assert len({tuple(v.flatten().tolist()) for v in k}) == 30
    kv = torch.tensor([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                       [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]]) / 12
    assert any(torch.allclose(v, kv) for v in k)  # Kerr-Vaden's SQUARE 5x5
    three = srm3_kernels()  # SSP: SQUARE 3x3, SQUARE 5x5, horizontal 2nd order
    assert torch.allclose(three[1], kv)
    assert torch.allclose(three[2][2], torch.tensor([0, 0.5, -1, 0.5, 0]))


def _rich_and_poor_reference(image: np.ndarray, patch: int, grid_side: int):
    """The paper's Smash & Reconstruction, written plainly: ascending sort of the grid
    patches; poor = the first third, rich = the last third reversed; each tiled row-major,
    cycling when short."""
    c, h, w = image.shape
    patches = [image[:, r:r + patch, q:q + patch] for r in range(0, h - patch + 1, patch)
               for q in range(0, w - patch + 1, patch)]
    order = sorted(range(len(patches)), key=lambda i: _numpy_diversity(patches[i]))
    k = max(1, len(patches) // 3)
    poor, rich = order[:k], order[-k:][::-1]

    def tile(chosen):
        out = np.zeros((c, grid_side * patch, grid_side * patch))
        for i in range(grid_side * grid_side):
            r, q = divmod(i, grid_side)
            out[:, r * patch:(r + 1) * patch, q * patch:(q + 1) * patch] = \
                patches[chosen[i % len(chosen)]]
        return out

    return tile(rich), tile(poor)


def test_patchcraft_rich_and_poor_images_are_the_extreme_texture_thirds():
    from methods.patchcraft import rich_and_poor

    rng = np.random.default_rng(1)
    # 4 x 4 patches of 8 px whose texture grows with the noise amplitude we give each
    amplitude = rng.permutation(16)
    image = np.zeros((3, 32, 32))
    for i, a in enumerate(amplitude):
        r, c = divmod(i, 4)
        image[:, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = rng.normal(0, a + 0.01, (3, 8, 8))
    x = torch.as_tensor(image[None], dtype=torch.float32)
    rich, poor = rich_and_poor(x, patch=8, grid_side=2)
    ref_rich, ref_poor = _rich_and_poor_reference(image, patch=8, grid_side=2)
    np.testing.assert_allclose(rich[0].numpy(), ref_rich, rtol=1e-6)
    np.testing.assert_allclose(poor[0].numpy(), ref_poor, rtol=1e-6)
    scores = [_numpy_diversity(p) for p in grid_patches(x, 8, 8)[0].numpy()]
    # 16 patches -> the 5 richest and 5 poorest (a third), 4 of each tiled 2 x 2
    assert _numpy_diversity(rich[0, :, :8, :8].numpy()) == max(scores)
    assert _numpy_diversity(poor[0, :, :8, :8].numpy()) == min(scores)


def test_ssp_takes_the_simplest_native_patch():
    from methods.ssp import simplest_patch

    image = torch.rand(1, 3, 64, 64)
    image[:, :, 32:48, 16:32] = 0.5  # one flat 16 px square on the half-overlapping grid
    patch = simplest_patch(image, 16)
    torch.testing.assert_close(patch, image[:, :, 32:48, 16:32])


def test_unknown_method_names_the_valid_ones(tmp_path):
    with pytest.raises(iab.BenchmarkError, match="valid methods: dct-cnn, patch-forensics"):
        init_checkpoint("gfd-net", tmp_path)


# --- training through the harness -------------------------------------------------------


TRAIN = {  # epochs, lr: small models on 96 training images of 4 generators
    "dct-cnn": (12, 0.01), "patch-forensics": (8, 0.01), "dna-det": (8, 0.005),
    "repmix": (10, 0.03), "patchcraft": (10, 0.01), "pose": (8, 0.005), "ssp": (10, 0.01),
    "defl": (8, 0.003), "hifi-net": (8, 0.01), "ucf": (10, 0.01), "gfd": (10, 0.01),
}


# RepMix's tiny variant (7.8k parameters) stays at chance on the colour-calibrated tiny
# generators (issue 15): its training accuracy stays at 25% even under plain cross-entropy, its
# pooled features barely vary across images (std 0.04). A known defect of the tiny variant, kept
# visible: strict, so the day it learns again this fails and the mark goes.
REPMIX_TINY = pytest.param("repmix", marks=pytest.mark.xfail(
    strict=True, reason="tiny RepMix does not learn the colour-calibrated tiny benchmark"))


@pytest.mark.parametrize("name", [REPMIX_TINY if n == "repmix" else n for n in NAMES])
def test_trains_on_the_tiny_benchmark_and_its_card_has_model_index(name, tiny_bench, tmp_path):
    epochs, lr = TRAIN[name]
    out = tmp_path / "out"
    assert harness_run.main(harness_run.parse_args(
        ["--preset", name, "--model", f"init:{name}:tiny", "--protocol", "standard",
         "--dataset", str(tiny_bench), "--epochs", str(epochs), "--batch-size", "16",
         "--lr", str(lr), "--scheduler", "onecycle", "--output-dir", str(out)])) == 0
    (path,) = out.glob("results_*.json")
    results = json.loads(path.read_text())
    test = results["protocols"]["standard"]["splits"]["test"]
    print(f"{name}: test accuracy {test['accuracy']:.3f} of {test['n_samples']}")
    assert_above_chance(test["accuracy"], test["n_samples"], chance=1 / 4)
    assert results["model"]["id"] == f"iab-{name}-tiny"
    record = results["run_config"]["method_record"]
    assert record["input_policy"] == results["run_config"]["preprocess"]["policy"]
    text = (out / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert "model-index" not in meta  # a local build: no leaderboard entries (test_hub_push)
    assert meta["library_name"] == "transformers"
    assert "## Method" in text and record["reference"] in text and "import methods" in text
    reloaded = AutoModelForImageClassification.from_pretrained(out)
    assert reloaded.config.model_type == f"iab-{name}"


# --- the methods' own objectives ---------------------------------------------------------


def test_supervised_contrastive_prefers_label_clusters():
    from methods.dna_det import supervised_contrastive

    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.nn.functional.normalize(torch.tensor(
        [[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]]), dim=1)
    mixed = clustered[[0, 2, 1, 3]]
    assert supervised_contrastive(clustered, labels, 0.07) < \
        supervised_contrastive(mixed, labels, 0.07)
    # two samples of one label, nothing else: the positive is the only other sample
    pair = torch.nn.functional.normalize(torch.randn(2, 4), dim=1)
    assert supervised_contrastive(pair, torch.tensor([0, 0]), 0.5).abs() < 1e-6


def test_pose_triplet_and_augmentation():
    from methods.pose import batch_hard_triplet, random_augmentation

    labels = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [5.1, 0.0]])
    assert batch_hard_triplet(apart, labels, 0.3) == 0
    together = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.1, 0.0], [5.1, 0.0]])
    # hardest positive 5.0 away, nearest negative 0.1: 5.0 - 0.1 + 0.3 for every anchor
    torch.testing.assert_close(batch_hard_triplet(together, labels, 0.3), torch.tensor(5.2))
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    a, b = random_augmentation(x, 0.1), random_augmentation(x, 0.1)
    rms = (a - x).pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.full((2,), 0.1))  # content kept, new traces
    assert (a - b).abs().max() > 0.01  # a fresh augmentation network each call


def test_repmix_gates_real_by_detection():
    model = tiny_model("repmix").eval()
    maps = torch.rand(2, model.config.backbone_spec["hidden_sizes"][-1], 4, 4)
    gated, detection = model.heads(maps)
    e = model.embed(maps.mean(dim=(-2, -1)))
    p = torch.softmax(detection, dim=1)
    raw = model.attribution(e)
    torch.testing.assert_close(gated[:, 0], raw[:, 0] * p[:, 0])  # real x P(real)
    torch.testing.assert_close(gated[:, 1:], raw[:, 1:] * p[:, 1:])  # generators x P(generated)


def test_hierarchy_follows_the_registry_families():
    from methods.hierarchy import GROUPS, group, level_tables

    assert [group(n) for n in ("real", "SD1_5", "FLUX", "PIXART", "janus-pro", "dalle3")] == \
        ["real", "UNet", "MMDiT", "DiT", "autoregressive", "closed"]
    levels = level_tables(dict(enumerate(iab.LABELS)))
    real, sdxl, mid = iab.LABEL_IDS["real"], iab.LABEL_IDS["SDXL"], iab.LABEL_IDS["mid-6.0"]
    assert levels[:, real].tolist() == [0, 0, 0]
    assert levels[:, sdxl].tolist() == [1, 2, GROUPS.index("UNet")]
    assert levels[:, mid].tolist() == [1, 1, GROUPS.index("closed")]


def test_defl_handcrafted_bank_and_dual_margin_loss():
    from scipy.signal import convolve2d

    from methods.defl import directional_filters, dual_margin_contrastive

    bank = directional_filters()
    assert bank.shape == (254, 3, 3) and len({tuple(k.flatten().tolist()) for k in bank}) == 254
    assert (bank[:8].sum(dim=(1, 2)) == 0).all() and (bank[:8] == -1).sum() == 8
    pair = convolve2d(bank[0].double().numpy(), bank[1].double().numpy(), mode="same")
    np.testing.assert_allclose(bank[8].numpy(), pair)  # first composition: filters 1 and 2
    model = tiny_model("defl")
    torch.testing.assert_close(model.directional[0].weight[:, 0] * 3, bank[:8])
    f = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.0, 20.0]])
    labels = torch.tensor([0, 0, 1, 2])
    groups = torch.tensor([0, 0, 0, 1])
    # pairs: (0,1) same label d=1; (0,2) same group d=3 -> 2; (1,2) same group d=sqrt(10)
    # -> 5-sqrt(10); (0,3),(1,3),(2,3) other groups, d >= 17 -> 0
    expected = (1 + 2 + (5 - 10 ** 0.5)) / 6
    torch.testing.assert_close(dual_margin_contrastive(f, labels, groups, (5.0, 10.0)),
                               torch.tensor(expected))


def test_hifi_net_frequency_stem_sees_no_flat_content():
    from methods.hifi_net import laplacian_residuals

    flat = torch.full((1, 4, 32, 32), 0.7)
    assert laplacian_residuals(flat, [2, 4, 8]).abs().max() < 1e-5
    edge = torch.zeros(1, 1, 32, 32)
    edge[..., 16:] = 1.0
    assert laplacian_residuals(edge, [2]).abs().max() > 0.1
    logits = tiny_model("hifi-net").eval().level_logits(torch.rand(2, 3, 64, 64))
    assert [t.shape[1] for t in logits] == [2, 3, 6, len(iab.LABELS)]


def test_ucf_adain_and_decoder():
    from methods.ucf import adain

    content, style = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8) * 3 + 1
    out = adain(content, style)
    torch.testing.assert_close(out.mean((-2, -1)), style.mean((-2, -1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std((-2, -1)), style.std((-2, -1)), atol=1e-3, rtol=1e-3)
    model = tiny_model("ucf").eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    specific, common = model.encode(x)
    content = model.adjust_content(model.content_encoder(pixel_values=x).last_hidden_state)
    image = model.decode(torch.cat([specific, common], 1), content, (64, 64))
    assert image.shape == x.shape and image.abs().max() <= 1


def test_patch_choice_ignores_the_padding_of_small_images():
    """A 40 px image in a 64 px crop: the zero padding (after normalisation -1) is flat, and
    would otherwise be every 'poorest' patch, a resolution shortcut."""
    from methods.patchcraft import rich_and_poor
    from methods.ssp import simplest_patch

    torch.manual_seed(0)
    image = torch.full((1, 3, 64, 64), -1.0)  # what padding is under mean 0.5, std 0.5
    image[:, :, :40, :40] = torch.rand(1, 3, 40, 40) * 2 - 1
    pad = torch.full((1, 3, 1, 1), -1.0)
    _, poor = rich_and_poor(image, patch=8, grid_side=2, pad_value=pad)
    assert not (poor == -1.0).all(dim=1).any()  # no padding pixel in the poor image
    _, poor_blind = rich_and_poor(image, patch=8, grid_side=2)
    assert (poor_blind == -1.0).all()  # without the mask: all padding
    patch = simplest_patch(image, 16, pad)
    assert not (patch == -1.0).all(dim=1).any()
    model = tiny_model("patchcraft")
    torch.testing.assert_close(model.padding_value(image), pad)


def test_pretrained_backbone_and_clip_start_and_stay_frozen(tmp_path):
    """init with Hub weights (here local folders of the same classes): copied in, recorded,
    and DEFL's CLIP stays frozen after from_pretrained (DDP needs every trainable parameter
    used)."""
    from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, ResNetConfig,
                              ResNetModel)

    from methods.init import TINY_RESNET

    torch.manual_seed(1)
    ResNetModel(ResNetConfig(**TINY_RESNET)).save_pretrained(tmp_path / "resnet")
    clip_spec = TINY["defl"]["clip_config"]
    CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_spec)).save_pretrained(tmp_path / "clip")
    out = init_checkpoint("defl", tmp_path / "defl", tiny=True,
                          backbone_weights=str(tmp_path / "resnet"),
                          clip_weights=str(tmp_path / "clip"))
    model = AutoModelForImageClassification.from_pretrained(out)
    source = ResNetModel.from_pretrained(tmp_path / "resnet").state_dict()
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, source[k])
    assert "embedder.embedder.convolution.weight" in source  # the stem DEFL leaves out
    assert model.config.initialised_from == {"backbone": str(tmp_path / "resnet"),
                                             "clip": str(tmp_path / "clip")}
    assert not any(p.requires_grad for p in model.clip.parameters())
    assert all(p.requires_grad for p in model.classifier.parameters())
    with pytest.raises(iab.BenchmarkError, match="no ResNet backbone"):
        init_checkpoint("pose", tmp_path / "pose", tiny=True,
                        backbone_weights=str(tmp_path / "resnet"))


def test_gfd_each_network_learns_from_its_own_terms():
    """The generator's terms reach it through the discriminator and the auxiliary classifier
    but leave their weights alone; every part learns; a batch without a real image trains
    the latent classifier only."""
    model = tiny_model("gfd").train()
    marked = torch.rand(2, 3, 64, 64, requires_grad=True)
    for frozen_net, weight in ((model._disc, model.discriminator[0].weight),
                               (model._aux, model.backbone.embedder.embedder.convolution.weight)):
        to_image, to_weight = torch.autograd.grad(frozen_net(marked, frozen=True).sum(),
                                                  [marked, weight], allow_unused=True)
        assert to_image.abs().sum() > 0 and to_weight is None
    real = model.config.label2id["real"]
    x = torch.rand(4, 3, 64, 64)
    _, loss = model.training_loss(x, torch.tensor([real, 3, 5, real]), None)
    parts = [model.decoder.out.weight, model.discriminator[0].weight, model.aux_head.weight,
             model.generator.classification_head[2].weight]
    assert all(g.abs().sum() > 0 for g in torch.autograd.grad(loss, parts))
    assert not any(p.requires_grad for p in model.perceptual.parameters())
    _, latent = model.training_loss(x, torch.tensor([3, 5, 7, 9]), None)
    grads = torch.autograd.grad(latent, parts, allow_unused=True)
    assert grads[:3] == (None, None, None) and grads[3].abs().sum() > 0

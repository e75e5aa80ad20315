"""GFD: Yang et al., "Learning to Disentangle GAN Fingerprint for Fake Image Attribution",
arXiv 2106.08749, 2021.

A U-Net generator whose encoder's latent code is classified over every label (the prediction)
and whose decoder turns a generated image into its fingerprint. The fingerprint is added to a
real image; a PatchGAN discriminator tells such fingerprinted images from real ones, an
auxiliary classifier (a ResNet-50) attributes them to the fingerprint's source, and a
perceptual term keeps them close to the real image: the fingerprint must carry the source and
little content. The loss: latent cross-entropy + adversarial + auxiliary + perceptual (weights
1, as the paper's code), each network learning only from its own terms.

Departures from the paper's code (its ``official`` variant keeps them, methods/official): its
auxiliary term for the generator classifies the unmodified generated image, which gives the
generator no gradient; here it classifies the fingerprinted image, as the method describes.
Its two stages alternate per batch; here one step updates each network from its own terms
(the others' parameters are used detached). Batches are not real/fake pairs: each generated
image of a batch is paired with a real image of the same batch (none there: latent term
only). The perceptual network is the frozen stem and first stage of the auxiliary ResNet as
initialised (ImageNet via init:gfd), not VGG16, which transformers does not have.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import imageattributionbench as iab
from methods.backbone import RESNET50, feature_size, pooled, resnet
from methods.base import MethodConfig, MethodModel, cross_entropy
from methods.official.simple import GFDEncoder


class GFDConfig(MethodConfig):
    model_type = "iab-gfd"
    reference = ("Yang et al., Learning to Disentangle GAN Fingerprint for Fake Image "
                 "Attribution, arXiv 2106.08749, 2021")
    paper_hyperparameters = {"optimizer": "Adam", "lr": 1e-3, "weight_decay": 0.0,
                             "epochs": 15, "batch_size": 16, "loss_weights": [1, 1, 1, 1],
                             "backbone_init": "microsoft/resnet-50 (ImageNet)"}

    def __init__(self, base_channels: int = 64, discriminator_width: int = 64,
                 backbone_spec=None, **kwargs):
        super().__init__(**kwargs)
        self.base_channels = base_channels
        self.discriminator_width = discriminator_width
        self.backbone_spec = dict(backbone_spec if backbone_spec is not None else RESNET50)


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 2, stride=2), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))


class Decoder(nn.Module):
    """The U-Net decoder: up-convolutions with skip concatenations to a 3-channel output."""

    def __init__(self, base: int):
        super().__init__()
        self.ups = nn.ModuleList([up_block(base * 16, base * 8), up_block(base * 16, base * 4),
                                  up_block(base * 8, base * 2), up_block(base * 4, base)])
        self.out = nn.Conv2d(base * 2, 3, 1)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        x = skips[-1]
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = torch.cat((up(x), skip), dim=1)
        return self.out(x)


def patch_discriminator(width: int) -> nn.Sequential:
    """pix2pix's 3-layer PatchGAN (4x4 convolutions, BN, LeakyReLU 0.2)."""
    layers = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    c = width
    for mult, stride in ((2, 2), (4, 2), (8, 1)):
        layers += [nn.Conv2d(c, width * mult, 4, stride, 1, bias=False),
                   nn.BatchNorm2d(width * mult), nn.LeakyReLU(0.2, True)]
        c = width * mult
    return nn.Sequential(*layers, nn.Conv2d(c, 1, 4, 1, 1))


class GFDForImageClassification(MethodModel):
    config_class = GFDConfig

    def __init__(self, config: GFDConfig):
        super().__init__(config)
        if self.is_official:  # the official network (methods/official) replaces this one
            return
        self.generator = GFDEncoder(config.base_channels, config.num_labels)
        self.decoder = Decoder(config.base_channels)
        self.discriminator = patch_discriminator(config.discriminator_width)
        self.backbone = resnet(config.backbone_spec)  # the auxiliary classifier
        self.aux_head = nn.Linear(feature_size(config.backbone_spec), config.num_labels)
        self.perceptual = resnet(config.backbone_spec)
        self.perceptual.requires_grad_(False)
        self.post_init()

    def after_backbone_weights(self) -> None:
        """The perceptual network: a frozen copy of the auxiliary ResNet as initialised."""
        self.perceptual.load_state_dict(self.backbone.state_dict())

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.generator(pixel_values)

    def _perceptual(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.perceptual(pixel_values=x, output_hidden_states=True).hidden_states
        return hidden[1]  # stem and first stage: low-level appearance

    def _aux(self, x: torch.Tensor, frozen: bool) -> torch.Tensor:
        if not frozen:
            return self.aux_head(pooled(self.backbone, x))
        params = {k: v.detach() for k, v in self.backbone.named_parameters()}
        feats = functional_call(self.backbone, params, kwargs={"pixel_values": x})
        return F.linear(feats.pooler_output.flatten(1), self.aux_head.weight.detach(),
                        self.aux_head.bias.detach())

    def _disc(self, x: torch.Tensor, frozen: bool) -> torch.Tensor:
        if not frozen:
            return self.discriminator(x)
        params = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, params, (x,))

    def training_loss(self, pixel_values, labels, label_mask):
        skips = self.generator.encode(pixel_values)
        logits = self.generator.classification_head(skips[-1])
        loss = cross_entropy(logits, labels, label_mask)
        real_id = self.config.label2id.get(iab.REAL, 0)
        fake, real = labels != real_id, labels == real_id
        if fake.any() and real.any():
            fingerprint = self.decoder([s[fake] for s in skips])
            reals = pixel_values[real]
            partners = reals[torch.arange(int(fake.sum()), device=labels.device) % len(reals)]
            marked = partners + fingerprint
            bce = F.binary_cross_entropy_with_logits
            # the generator's terms, through the other networks' (detached) weights
            d_marked = self._disc(marked, frozen=True)
            loss = loss + bce(d_marked, torch.ones_like(d_marked))
            loss = loss + cross_entropy(self._aux(marked, frozen=True), labels[fake], label_mask)
            loss = loss + F.mse_loss(self._perceptual(marked), self._perceptual(partners))
            # the discriminator's and auxiliary classifier's terms, on detached images
            d_marked, d_real = self._disc(marked.detach(), False), self._disc(reals, False)
            loss = loss + bce(d_marked, torch.zeros_like(d_marked)) + \
                bce(d_real, torch.ones_like(d_real))
            loss = loss + cross_entropy(self._aux(marked.detach(), False), labels[fake],
                                        label_mask)
        return logits, loss

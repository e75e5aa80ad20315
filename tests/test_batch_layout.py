"""The layout of the harness's batches: contiguous NCHW on every CPU.

torch 2.13.0+cpu segfaults on AVX-512 machines in the backward of a strided 1x1 convolution fed
a channels-last batch (an NHWC buffer seen as NCHW). The first test checks the layout itself
and holds on any machine; the second runs that crashing pattern through the harness's own
batch path in a child process, so a regression kills the child (on AVX-512 machines), not the
test session.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import torch

from harness.data import DecodedSplit, Geometry, normalize
from harness.predict import loader

GEO = Geometry(32, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _split(tmp_path, n=12, side=32) -> DecodedSplit:
    path = tmp_path / "split.u8"
    images = np.memmap(path, np.uint8, "w+", shape=(n, side, side, 3))
    images[:] = np.random.default_rng(0).integers(0, 256, images.shape, np.uint8)
    images.flush()
    del images
    mm = np.memmap(path, np.uint8, "r", shape=(n, side, side, 3))
    return DecodedSplit(mm, np.arange(n) % 3, ["cat"] * n, ["SD1_5"] * n, ["x"] * n, [])


def test_normalize_gives_contiguous_nchw_with_the_processor_values():
    batch = np.random.default_rng(1).integers(0, 256, (4, 8, 6, 3), np.uint8)
    x = normalize(batch, GEO)
    assert x.shape == (4, 3, 8, 6) and x.dtype == torch.float32
    assert x.is_contiguous()  # plain NCHW strides
    assert not x.is_contiguous(memory_format=torch.channels_last)
    mean, std = np.array(GEO.mean), np.array(GEO.std)
    expected = ((batch / 255.0 - mean) / std).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-5)


def test_harness_batches_are_contiguous_nchw(tmp_path):
    split = _split(tmp_path)
    for shuffle in (None, 3):
        for pixels, labels, idx in loader(split, GEO, batch_size=5, shuffle_seed=shuffle):
            assert pixels.shape[1:] == (3, 32, 32)
            assert pixels.is_contiguous()
            assert pixels.stride() == (3 * 32 * 32, 32 * 32, 32, 1)


CRASH_PATTERN = textwrap.dedent("""
    import sys
    from pathlib import Path

    import numpy as np
    import torch
    from torch import nn

    from harness.data import DecodedSplit, Geometry
    from harness.predict import loader

    n, side = 32, 112
    path = Path(sys.argv[1]) / "split.u8"
    images = np.memmap(path, np.uint8, "w+", shape=(n, side, side, 3))
    images[:] = np.random.default_rng(0).integers(0, 256, images.shape, np.uint8)
    images.flush()
    split = DecodedSplit(np.memmap(path, np.uint8, "r", shape=(n, side, side, 3)),
                         np.zeros(n, int), [""] * n, [""] * n, [""] * n, [])
    geo = Geometry(side, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 16, 1, 2, bias=False))
    steps = 0
    for _ in range(10):
        for pixels, _, _ in loader(split, geo, batch_size=16, shuffle_seed=0):
            m(pixels).sum().backward()
            steps += 1
    print("steps", steps, torch.backends.cpu.get_cpu_capability())
""")


def test_strided_conv_backward_through_the_harness_batches_survives(tmp_path):
    done = subprocess.run([sys.executable, "-c", CRASH_PATTERN, str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (
        f"the child died with rc {done.returncode} (-11: SIGSEGV, the AVX-512 channels-last "
        f"crash): harness batches must be contiguous NCHW\n{done.stderr[-2000:]}")
    assert done.stdout.split()[:2] == ["steps", "20"]

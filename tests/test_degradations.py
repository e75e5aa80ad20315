"""The six degradations against an independent implementation (tests/reference_degradations)."""

import io

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

import imageattributionbench as iab
import reference_degradations as ref

SIZES = [(37, 23), (64, 64), (5, 3), (1, 1), (130, 7)]


def _image(w, h, seed=0, mode="RGB", smooth=False):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if smooth:  # a photograph-like gradient, on which JPEG keeps the picture
        yy, xx = np.mgrid[0:h, 0:w]
        arr = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1),
                        (xx + yy) * 127 // max(w + h - 2, 1)], -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").convert(mode).save(buf, "PNG")
    return buf.getvalue(), np.asarray(Image.fromarray(arr, "RGB").convert(mode).convert("RGB"))


def _decode(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.format, np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("name,scale", [("down_x2", 0.5), ("down_x4", 0.25)])
def test_down_up_matches_reference_pixel_for_pixel(w, h, name, scale):
    data, arr = _image(w, h)
    fmt, out = _decode(iab.degrade(data, name))
    assert fmt == "PNG" and out.shape == arr.shape
    np.testing.assert_array_equal(out, ref.down_up(arr, scale))


@pytest.mark.parametrize("w,h", SIZES)
@pytest.mark.parametrize("name,radius", [("blur_s3", 3), ("blur_s5", 5)])
def test_blur_matches_reference_pixel_for_pixel(w, h, name, radius):
    data, arr = _image(w, h, seed=1)
    fmt, out = _decode(iab.degrade(data, name))
    assert fmt == "PNG"
    np.testing.assert_array_equal(out, ref.gaussian_blur(arr, radius))


@pytest.mark.parametrize("name,quality", [("jpeg_q65", 65), ("jpeg_q30", 30)])
def test_jpeg_uses_the_quality_tables_and_420_subsampling(name, quality):
    data, arr = _image(64, 48, seed=2, smooth=True)
    out = iab.degrade(data, name)
    with Image.open(io.BytesIO(out)) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (64, 48)
        # PIL reports tables in zigzag order; compare as multisets of the 64 entries.
        assert sorted(im.quantization[0]) == sorted(ref.ijg_luma_table(quality).tolist())
        assert JpegImagePlugin.get_sampling(im) == 2  # 4:2:0
        decoded = np.asarray(im).astype(float)
    mse = np.mean((decoded - arr) ** 2)
    assert 0 < mse < 255**2 / 10**(30 / 10)  # lossy, yet the same picture (PSNR > 30 dB)


def test_lower_jpeg_quality_loses_more():
    data, arr = _image(64, 64, seed=3, smooth=True)
    errs = {}
    for name in ("jpeg_q65", "jpeg_q30"):
        _, out = _decode(iab.degrade(data, name))
        errs[name] = np.mean((out.astype(float) - arr) ** 2)
    assert errs["jpeg_q30"] > errs["jpeg_q65"]


def test_non_rgb_inputs_are_degraded_as_rgb():
    data, arr = _image(20, 10, mode="L")
    fmt, out = _decode(iab.degrade(data, "down_x2"))
    np.testing.assert_array_equal(out, ref.down_up(arr, 0.5))
    data, arr = _image(20, 10, mode="RGBA")
    _, out = _decode(iab.degrade(data, "blur_s3"))
    np.testing.assert_array_equal(out, ref.gaussian_blur(arr, 3))


def test_degrade_all_equals_each_degradation():
    data, _ = _image(33, 17, seed=4)
    assert iab.degrade_all(data) == {n: iab.degrade(data, n) for n in iab.DEGRADATIONS}


def test_down_up_matches_reference_over_random_sizes():
    rng = np.random.default_rng(5)
    for _ in range(40):
        w, h = (int(v) for v in rng.integers(1, 300, 2))
        data, arr = _image(w, h, seed=int(rng.integers(1000)))
        for name, scale in (("down_x2", 0.5), ("down_x4", 0.25)):
            np.testing.assert_array_equal(_decode(iab.degrade(data, name))[1],
                                          ref.down_up(arr, scale), err_msg=f"{w}x{h} {name}")

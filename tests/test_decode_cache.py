"""The harness's decode cache after a kill: the half-written file is removed by the next run
(only when its process is gone), and the next run decodes the split whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from harness import data

# A split of 10 PNGs as harness.data.load_split hands it over (undecoded image bytes).
MAKE_SPLIT = textwrap.dedent("""
    import io

    import numpy as np
    from datasets import Dataset
    from PIL import Image

    def png(seed):
        arr = np.random.default_rng(seed).integers(0, 256, (24, 24, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr, "RGB").save(buf, "PNG")
        return buf.getvalue()

    def split():
        images = [png(i) for i in range(10)]
        return Dataset.from_dict({
            "image": [{"bytes": b, "path": None} for b in images],
            "label": [i % 3 for i in range(10)], "generator": ["real"] * 10,
            "semantic": ["cat"] * 10, "sha256": [str(i) for i in range(10)]})
""")


def _decode_in_child(cache, fault: str | None):
    script = MAKE_SPLIT + textwrap.dedent("""
        from harness import data
        data.decode_split(split(), "key", "native_crop", 16, 1, "fail", progress=False)
    """)
    env = {**os.environ, "IAB_CACHE": str(cache)}
    if fault:
        env["IAB_FAULT"] = fault
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300, cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))


def test_a_kill_during_the_cache_write_is_cleaned_up(tmp_path, monkeypatch):
    killed = _decode_in_child(tmp_path, "harness.decode.chunk")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    folder = tmp_path / "imageattributionbench" / "decoded"
    (left,) = [p.name for p in folder.iterdir()]
    assert left.endswith(".tmp") and ".u8." in left  # the half-written cache file
    # a decode running in another live process keeps its file
    live = folder / f"{'ab' * 12}.u8.{os.getppid()}.tmp"
    live.write_bytes(b"")

    monkeypatch.setenv("IAB_CACHE", str(tmp_path))
    namespace: dict = {}
    exec(MAKE_SPLIT, namespace)
    out = data.decode_split(namespace["split"](), "key", "native_crop", 16, 1, "fail",
                            progress=False)
    assert sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) == [live.name]
    assert out.images.shape == (10, 16, 16, 3) and out.labels.tolist() == [i % 3 for i in
                                                                           range(10)]
    assert np.array_equal(out.images[3], data.crop(namespace["split"]()[3]["image"]["bytes"],
                                                   "native_crop", 16))

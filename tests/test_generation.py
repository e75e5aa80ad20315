"""generation/run.py: accelerate processes, resume after a kill, regeneration, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import imageattributionbench as iab
from generation.regenerate import regenerate, stored_pixels
from generation.writer import ShardWriter, check_image

ROOT = Path(__file__).resolve().parents[1]
RUN = str(ROOT / "generation" / "run.py")
# Small enough to run in seconds on CPU; big enough for several batches per subclass.
JOB = ["--generator", "SD1_5", "--tiny", "--semantics", "cat,dog", "--limit", "5",
       "--images-per-prompt", "2", "--batch-size", "4", "--threads", "1"]


def env(**extra):
    e = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}
    e.pop("ACCELERATE_USE_CPU", None)
    return e


def run_job(out, *args, launcher=(sys.executable,), check=True, extra_env=None):
    done = subprocess.run([*launcher, RUN, *JOB, "--out", str(out), *args],
                          capture_output=True, text=True, env=env(**(extra_env or {})),
                          timeout=600, cwd=ROOT)
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def rows_by_file(out: Path, generator="SD1_5"):
    return {f.relative_to(out / generator).as_posix(): pq.read_table(f).to_pylist()
            for f in sorted((out / generator).rglob("*.parquet"))}


def keyed(files: dict) -> dict[tuple, str]:
    """(prompt_id, image_index) -> sha256, asserting no duplicates."""
    out = {}
    for rows in files.values():
        for r in rows:
            key = (r["prompt_id"], r["image_index"])
            assert key not in out, f"duplicate row {key}"
            out[key] = r["sha256"]
    return out


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    done = run_job(out)
    assert "20 images to make over 1 process(es)" in done.stdout
    return out


def test_rows_record_how_each_image_was_made(single):
    rows = [r for rs in rows_by_file(single).values() for r in rs]
    assert len(rows) == 2 * 5 * 2
    r = next(r for r in rows if r["prompt_id"] == "cat/3" and r["image_index"] == 1)
    assert r["seed"] == iab.image_seed("SD1_5", "cat/3", 1)
    assert r["model_id"] == "tiny-random/SD1_5" and r["model_revision"].startswith("seed-")
    assert (r["pipeline"], r["num_inference_steps"], r["guidance_scale"]) == (
        "StableDiffusionPipeline", 2, 7.5)
    assert (r["width"], r["height"], r["format"]) == (64, 64, "PNG")
    assert r["label"] == iab.label_id("SD1_5") and r["superclass"] == "AnimalFace"
    assert r["prompt"] == __import__("iab.prompts").prompts.official_prompts("cat")[3].text
    assert len({r["sha256"] for r in rows}) == len(rows)  # every image differs


def test_two_accelerate_processes_split_the_work(single, tmp_path):
    launcher = ("accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
                "1", "--mixed_precision", "no", "--dynamo_backend", "no")
    launcher = (str(Path(sys.executable).with_name("accelerate")), *launcher[1:])
    done = run_job(tmp_path, launcher=launcher, extra_env={"ACCELERATE_USE_CPU": "1"})
    assert "over 2 process(es)" in done.stdout
    files = rows_by_file(tmp_path)
    by_rank = {rank: {(r["prompt_id"], r["image_index"]) for f, rs in files.items()
                      if f.split("/")[-1].startswith(f"{rank}-") for r in rs} for rank in (0, 1)}
    assert by_rank[0] and by_rank[1] and not by_rank[0] & by_rank[1]
    # the union is the single-process run, image for image (fixed batches, fixed seeds)
    assert keyed(files) == keyed(rows_by_file(single))


def test_killed_run_resumes_to_the_same_rows(tmp_path):
    more = ["--limit", "30", "--shard-size", "2"]  # 120 images: long enough to be killed
    reference = tmp_path / "uninterrupted"
    run_job(reference, *more)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, RUN, *JOB, *more, "--out", str(out)], env=env(),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(out.rglob("*.parquet"))) >= 3:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the job finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = keyed(rows_by_file(out))
    assert 0 < len(partial) < 120
    done = run_job(out, *more)
    assert f"{120 - len(partial)} images to make" in done.stdout
    assert keyed(rows_by_file(out)) == keyed(rows_by_file(reference))
    again = run_job(out, *more)
    assert "0 images to make" in again.stdout


def test_regenerating_a_row_reproduces_its_image(single):
    rows = [r for rs in rows_by_file(single).values() for r in rs]
    # image 1 of a batch of 4 (cat/0 #0, cat/0 #1, cat/1 #0, cat/1 #1): regenerated alone
    row = next(r for r in rows if r["prompt_id"] == "cat/1" and r["image_index"] == 0)
    diff = np.abs(regenerate(row).astype(int) - stored_pixels(row).astype(int))
    assert diff.max() <= 1


def test_unknown_generator_lists_valid_ones(tmp_path):
    done = subprocess.run([sys.executable, RUN, "--generator", "SD9", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=env(), cwd=ROOT)
    assert done.returncode == 2 and "runnable generators: CogView3_PLUS, FLUX" in done.stderr
    assert "`iab import`" in done.stderr
    assert not any(tmp_path.iterdir())


def test_imported_only_generator_is_refused(tmp_path):
    done = subprocess.run([sys.executable, RUN, "--generator", "mid-6.0", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env(), cwd=ROOT)
    assert done.returncode == 2 and "iab import" in done.stderr and "SDXL" in done.stderr


def test_prompts_file_without_columns(tmp_path):
    bad = tmp_path / "prompts.csv"
    bad.write_text("caption,subclass\na cat,cat\n")
    done = run_job(tmp_path / "out", "--prompts", str(bad), check=False)
    assert done.returncode == 2 and "missing column(s) prompt, semantic" in done.stderr
    assert not (tmp_path / "out").exists()


def test_custom_prompts_file(tmp_path):
    good = tmp_path / "prompts.csv"
    good.write_text("prompt,semantic\na tabby cat on a sofa,cat\na church at dusk,church\n")
    run_job(tmp_path / "out", "--prompts", str(good), "--semantics", "cat,church")
    rows = [r for rs in rows_by_file(tmp_path / "out").values() for r in rs]
    assert {r["prompt"] for r in rows} == {"a tabby cat on a sofa", "a church at dusk"}
    assert all(r["prompt_id"].split("/")[1].startswith("custom-") for r in rows)


def test_output_folder_from_another_config(single, tmp_path):
    done = run_job(single, "--steps", "3", check=False)
    assert done.returncode == 2
    assert "holds images from another generator config (num_inference_steps: folder has 2, " \
           "this run 3)" in done.stderr


def test_missing_api_key_writes_nothing(tmp_path):
    e = env()
    e.pop("OPENAI_API_KEY", None)
    done = subprocess.run([sys.executable, RUN, "--generator", "dalle3", "--semantics", "cat",
                           "--limit", "1", "--out", str(tmp_path / "out")], capture_output=True,
                          text=True, env=e, cwd=ROOT)
    assert done.returncode == 2 and "OPENAI_API_KEY" in done.stderr
    assert not (tmp_path / "out").exists()


def test_image_checks():
    ok = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    assert check_image(ok, 8, 8) is None
    assert check_image(ok, 16, 8) == "wrong size 8x8, expected 16x8"
    nan = ok.copy()
    nan[0, 0, 0] = np.nan
    assert check_image(nan, 8, 8) == "NaN or infinite values"
    assert check_image(np.zeros((8, 8, 3)), 8, 8) == "black image"
    assert check_image(np.full((8, 8, 3), 0.5), 8, 8) == "blank image (one flat colour)"


def test_rejected_images_are_logged_not_written(tmp_path):
    writer = ShardWriter(tmp_path, 0, 10, 1)
    meta = {"generator": "SD1_5", "semantic": "cat", "prompt_id": "cat/0", "prompt": "p",
            "seed": 1, "model_id": "m", "model_revision": None, "pipeline": "P",
            "num_inference_steps": 2, "guidance_scale": 1.0, "width": 8, "height": 8}
    writer.add({**meta, "image_index": 0}, np.zeros((8, 8, 3), np.float32))
    writer.add({**meta, "image_index": 1},
               np.random.default_rng(1).random((8, 8, 3), dtype=np.float32))
    writer.close()
    (shard,) = (tmp_path / "cat").glob("*.parquet")
    assert [r["image_index"] for r in pq.read_table(shard).to_pylist()] == [1]
    log = (tmp_path / "rejects.jsonl").read_text().splitlines()
    assert len(log) == 1 and '"reason": "black image"' in log[0] and writer.rejected == 1

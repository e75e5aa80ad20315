"""Errors that point the way (issue 15, section 3): each message's text and exit status.

Unknown names get a "did you mean"; a config missing from a build lists the build's configs; a
Hub that cannot be reached fails at once naming HF_HUB_OFFLINE (iab.load, publish --dry-run,
which also plans from the local manifest alone); generation/run.py lists only the generators
it can run; every --help shows its defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import imageattributionbench as iab
from iab.build import build
from iab.demo import write_demo_raw
from iab.scripts import run_script

from conftest import SMALL

ROOT = Path(__file__).resolve().parents[1]


def exit_of(main_fn) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a script's main run the way its __main__ runs it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        with pytest.raises(SystemExit) as done:
            run_script(main_fn)
    return done.value.code, out.getvalue(), err.getvalue()


def closed_port_endpoint() -> str:
    """An endpoint on which nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- did you mean -----------------------------------------------------------------------------

@pytest.mark.parametrize("call, words", [
    (lambda: iab.protocol("standrd"), "unknown config 'standrd'; did you mean 'standard'? "
                                      "valid configs: standard, semantic_disjoint"),
    (lambda: iab.protocol("semantic_disjoint_dgo"), "did you mean 'semantic_disjoint_dog'"),
    (lambda: iab.generator("sdxl"), "unknown generator 'sdxl'; did you mean 'SDXL'?"),
    (lambda: iab.superclass_of("ffhq"), "unknown semantic 'ffhq'; did you mean 'FFHQ'?"),
    (lambda: iab.label_id("Real"), "did you mean 'real'?"),
])
def test_unknown_names_suggest_the_closest(call, words):
    with pytest.raises(iab.BenchmarkError) as e:
        call()
    assert words in str(e.value)


def test_no_suggestion_when_nothing_is_close():
    with pytest.raises(iab.BenchmarkError) as e:
        iab.generator("zzzz")
    assert "did you mean" not in str(e.value) and "valid generators: 4o" in str(e.value)


@pytest.mark.parametrize("argv, words", [
    (["--model", "m", "--method", "fintune"],
     "unknown method 'fintune'; did you mean 'finetune'? valid methods: finetune"),
    (["--model", "m", "--protocol", "standrd"],
     "unknown protocol 'standrd'; did you mean 'standard'?"),
    (["--preset", "resnet-50"],
     "unknown preset 'resnet-50'; did you mean 'resnet50' or 'resnet50-ours'?"),
    (["--preset", "patch_forensics"], "did you mean 'patch-forensics' or 'patch-forensics-ours'?"),
])
def test_harness_names_exit_2_with_a_suggestion(argv, words):
    from harness import run as harness_run

    code, _, err = exit_of(lambda: harness_run.main(harness_run.parse_args(argv)))
    assert code == 2 and words in err and "Traceback" not in err


def test_method_init_suggests(tmp_path):
    from methods.init import main

    code, _, err = exit_of(lambda: main(["dna_det", str(tmp_path / "x")]))
    assert code == 2 and "unknown method 'dna_det'; did you mean 'dna-det'?" in err


# --- generation/run.py: runnable generators only ----------------------------------------------

def test_unknown_generator_lists_runnable_ones_and_iab_import():
    from generation import run

    code, _, err = exit_of(lambda: run.main(run.parse_args(["--generator", "SDX", "--out",
                                                            "unused"])))
    assert code == 2
    assert "unknown generator 'SDX'; did you mean 'SDXL'" in err
    runnable = err.split("runnable generators: ")[1].split(";")[0].split(", ")
    assert "SDXL" in runnable and "dalle3" in runnable
    assert "mid-6.0" not in runnable and "4o" not in runnable  # imported only
    assert "the others (4o, grok3" in err and "`iab import`" in err


def test_tiny_needs_a_tiny_pipeline():
    from generation import run

    code, _, err = exit_of(lambda: run.main(run.parse_args(["--generator", "dalle3", "--tiny",
                                                            "--out", "unused"])))
    assert code == 2
    assert err.startswith("error: dalle3 has no tiny pipeline (it runs as api); runnable "
                          "generators with --tiny: ")
    assert "SDXL" in err and "GLM-Image" not in err.split("--tiny: ")[1]


def test_missing_api_key_names_the_variable_not_a_python_argument(monkeypatch):
    from generation.api import api_client

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(iab.BenchmarkError) as e:
        api_client("openai", "dall-e-3")
    text = str(e.value)
    assert "set the environment variable OPENAI_API_KEY" in text
    assert "export OPENAI_API_KEY=" in text and "api_key=" not in text


# --- a config missing from a build ------------------------------------------------------------

@pytest.fixture(scope="module")
def cat_dog_build(tmp_path_factory):
    """A build of two subclasses: no semantic_disjoint_bedroom, _ffhq ... configs."""
    root = tmp_path_factory.mktemp("catdog")
    write_demo_raw(root / "raw", labels=("real", "SD1_5"), semantics=("cat", "dog"),
                   per_fold=SMALL)
    return build([root / "raw"], root / "repo", progress=False)


def test_config_missing_from_a_build_lists_the_builds_configs(cat_dog_build):
    with pytest.raises(iab.BenchmarkError) as e:
        iab.load("semantic_disjoint_ffhq", repo=str(cat_dog_build.out))
    text = str(e.value)
    assert f"{cat_dog_build.out} was built without config 'semantic_disjoint_ffhq'" in text
    assert "its configs: " + ", ".join(cat_dog_build.configs) in text
    assert "BuilderConfig" not in text


# --- the Hub out of reach ---------------------------------------------------------------------

def test_unreachable_hub_fails_fast_naming_hf_hub_offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", closed_port_endpoint())
    started = time.perf_counter()
    with pytest.raises(iab.BenchmarkError) as e:
        iab.load("standard", split="test")
    assert time.perf_counter() - started < 10  # not half a minute of retries
    text = str(e.value)
    assert text.startswith(f"loading {iab.HUB_REPO_ID}: cannot reach the Hub at "
                           f"{constants.ENDPOINT}")
    assert "set HF_HUB_OFFLINE=1" in text and "`iab build`" in text


def test_offline_load_without_a_cached_copy_says_what_to_do(tmp_path):
    # datasets reads HF_HUB_OFFLINE when imported: a fresh interpreter, as a user runs it
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", "import imageattributionbench as iab\n"
                           "try:\n    iab.load('standard', split='test')\n"
                           "except iab.BenchmarkError as e:\n    print(e)\n"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is not in the local cache and HF_HUB_OFFLINE is set" in done.stdout
    assert "unset HF_HUB_OFFLINE" in done.stdout


def test_publish_dry_run_fails_fast_when_the_hub_is_out_of_reach(built, monkeypatch):
    from generation import publish

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    endpoint = closed_port_endpoint()
    started = time.perf_counter()
    code, _, err = exit_of(lambda: publish.main(publish.parse_args(
        [str(built[0]), "--repo-id", "org/bench", "--dry-run", "--endpoint", endpoint])))
    assert time.perf_counter() - started < 30  # verify reads the build; no retries
    assert code == 2 and f"cannot reach the Hub at {endpoint}" in err
    assert "HF_HUB_OFFLINE=1" in err


def test_publish_dry_run_offline_plans_from_the_local_manifest(built, monkeypatch):
    from generation import publish

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, _ = exit_of(lambda: publish.main(publish.parse_args(
        [str(built[0]), "--repo-id", "org/bench", "--dry-run"])))
    files = {p.relative_to(built[0]).as_posix() for p in built[0].rglob("*") if p.is_file()}
    assert code == 0
    assert "HF_HUB_OFFLINE is set: planned from" in out and "not compared" in out
    assert f"would add {len(files)}, replace 0, delete 0" in out
    assert "  + manifest.json" in out


def test_publish_offline_without_dry_run_is_refused(built, monkeypatch):
    from generation import publish

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    code, _, err = exit_of(lambda: publish.main(publish.parse_args(
        [str(built[0]), "--repo-id", "org/bench"])))
    assert code == 2 and "HF_HUB_OFFLINE is set, so nothing can be uploaded" in err


# --- iab info and --help ----------------------------------------------------------------------

def test_info_prints_each_generators_defaults(capsys):
    from iab.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    sdxl = next(line for line in out.splitlines() if line.strip().startswith("11 SDXL:"))
    assert ("diffusers StableDiffusionXLPipeline stabilityai/stable-diffusion-xl-base-1.0, 50 "
            "steps, guidance 5, 1024 px, float16, released 2023-07-26") in sdxl
    assert "12 dalle3: API (openai adapter, model dall-e-3)" in out
    assert "21 mid-5.2: imported images (`iab import`)" in out


def _parsers(parse) -> list[argparse.ArgumentParser]:
    """The parsers a script's parse function builds (its subcommands' too)."""
    seen: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_args

    def spy(self, *args, **kwargs):
        seen.append(self)
        raise SystemExit(0)

    argparse.ArgumentParser.parse_args = spy
    try:
        with pytest.raises(SystemExit):
            parse()
    finally:
        argparse.ArgumentParser.parse_args = original
    out = []
    for p in seen[:1]:
        out.append(p)
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                out += list(action.choices.values())
    return out


def _cli_parsers():
    from generation import caption, publish, real, regenerate
    from generation import run as generation_run
    from harness import paper_table
    from harness import run as harness_run
    from iab import cli
    from leaderboard import app
    from methods import init

    yield "iab", lambda: cli.parser().parse_args([])
    yield "generation/run.py", lambda: generation_run.parse_args([])
    yield "generation/real.py", lambda: real.parse_args([])
    yield "generation/publish.py", lambda: publish.parse_args([])
    yield "generation/caption.py", lambda: caption.parse_args([])
    yield "generation/regenerate.py", lambda: regenerate.main([])
    yield "harness/run.py", lambda: harness_run.parse_args([])
    yield "harness/paper_table.py", lambda: paper_table.parse_args([])
    yield "methods/init.py", lambda: init.main([])
    yield "leaderboard/app.py", lambda: app.parse_args([])


def test_every_help_shows_the_defaults():
    checked, missing = 0, []
    for name, parse in _cli_parsers():
        for parser in _parsers(parse):
            formatter = parser._get_formatter()
            for action in parser._actions:
                if (not action.option_strings or action.help == argparse.SUPPRESS
                        or any(action.default is x for x in (None, False, argparse.SUPPRESS))):
                    continue
                text = formatter._expand_help(action) if action.help else ""
                if "default" not in text.lower():
                    missing.append((name, parser.prog, action.option_strings[-1]))
                checked += 1
    assert not missing
    assert checked > 30


def test_leaderboard_help_description_is_whole_sentences():
    out = io.StringIO()
    from leaderboard import app

    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        app.parse_args(["--help"])
    description = out.getvalue().split("\n\n")[1].replace("\n", " ")
    assert description.startswith("Serve the ImageAttributionBench leaderboard")
    assert description.endswith(".") and "``" not in description

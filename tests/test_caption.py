"""generation/caption.py through a real transformers image-text-to-text pipeline.

The captioner is a tiny Llava (one-layer CLIP vision tower, one-layer Llama) with random weights
and a byte-level tokenizer built in memory, so nothing is downloaded. Random weights answer
gibberish, so end-to-end tests either check the mechanics (what reaches the pipeline, counts,
order) or force the answer text through a logits processor, which still goes through the real
generate and decode.
"""

from __future__ import annotations

import csv
import re

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from tokenizers.pre_tokenizers import ByteLevel  # noqa: E402
from transformers import (CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig,  # noqa: E402
                          LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor,
                          LogitsProcessor, LogitsProcessorList, Qwen2Tokenizer, pipeline)

import imageattributionbench as iab  # noqa: E402
from generation import caption  # noqa: E402
from generation.caption import (INSTRUCTIONS, REASK, CaptionResult,  # noqa: E402
                                caption_images, clean_caption, instruction_for,
                                write_prompt_csv)
from generation.work import load_prompts  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}"
    "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
GENERATION_PROMPT = "assistant: "


def tiny_llava():
    """(model, processor): a random-weight Llava whose tokenizer has one token per byte."""
    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    vocab["<|endoftext|>"] = len(vocab)
    vocab["<image>"] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, bos_token=None,
                               pad_token="<|endoftext|>", eos_token="<|endoftext|>",
                               extra_special_tokens={"image_token": "<image>"})
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 28},
                                            crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               patch_size=14, vision_feature_select_strategy="default",
                               num_additional_image_tokens=1, chat_template=CHAT_TEMPLATE)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=28, patch_size=14,
                                       projection_dim=16),
        text_config=LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=2, max_position_embeddings=2048,
                                pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id, bos_token_id=None),
        image_token_id=vocab["<image>"], vision_feature_select_strategy="default",
        vision_feature_layer=-1)
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():  # larger weights than the default init, so inputs change the answer
        for weight in model.parameters():
            if weight.dim() > 1:
                weight.normal_(std=0.5)
    return model, processor


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # A 16-wide model step is far shorter than waking torch's other threads.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny():
    model, processor = tiny_llava()
    return model, processor


@pytest.fixture
def pipe(tiny):
    """A fresh real pipeline (caption_images sets its padding side) whose inputs are recorded."""
    model, processor = tiny
    processor.tokenizer.padding_side = "right"  # the default; caption_images must fix it
    p = pipeline("image-text-to-text", model=model, processor=processor)
    p.received = []  # the chat of every item the pipeline preprocessed, in order
    preprocess = p.preprocess

    def recording_preprocess(inputs, *args, **kwargs):
        p.received.append(inputs.messages)
        return preprocess(inputs, *args, **kwargs)

    p.preprocess = recording_preprocess
    return p


def images(n):
    """n distinct images; their widths (40, 41, ...) identify them after the pipeline."""
    return [Image.new("RGB", (40 + i, 32), (30 * i % 256, 90, 160)) for i in range(n)]


def texts(chat):
    return [c["text"] for m in chat for c in m["content"] if c["type"] == "text"]


class ScriptedAnswer(LogitsProcessor):
    """Forces each row's answer to ``answer(prompt)`` then end-of-sequence, where ``prompt`` is
    the decoded model input: the answer goes through the real generate and decode."""

    def __init__(self, tokenizer, answer):
        self.tokenizer, self.answer = tokenizer, answer
        self.marker = tokenizer.encode(GENERATION_PROMPT, add_special_tokens=False)
        self.prompts = []  # decoded model inputs seen at the first generated token
        self.scripts = {}  # model input ids -> the answer's token ids

    def __call__(self, input_ids, scores):
        forced = torch.full_like(scores, float("-inf"))
        m = len(self.marker)
        for row, ids in enumerate(input_ids.tolist()):
            # The answer starts after the last generation prompt (a re-ask holds two).
            end = next(k for k in range(len(ids) - m, -1, -1) if ids[k:k + m] == self.marker) + m
            key = tuple(ids[:end])
            if key not in self.scripts:
                prompt = self.tokenizer.decode(ids[:end], skip_special_tokens=True)
                self.prompts.append(prompt)
                script = self.tokenizer.encode(self.answer(prompt), add_special_tokens=False)
                self.scripts[key] = script + [self.tokenizer.eos_token_id]
            script = self.scripts[key]
            forced[row, script[min(len(ids) - end, len(script) - 1)]] = 0.0
        return forced


# ---------------------------------------------------------------------------------------------
# clean_caption
# ---------------------------------------------------------------------------------------------

TWENTY = " ".join(f"w{i}" for i in range(20))


def test_clean_caption_normalises_and_drops_preamble():
    raw = ('  "The image shows   a red bus\n parked beside a stone church on a wet evening, with '
           'warm lights in the windows and a cyclist passing in the rain."  ')
    assert clean_caption(raw) == (
        "A red bus parked beside a stone church on a wet evening, with warm lights in the "
        "windows and a cyclist passing in the rain.")
    assert clean_caption("In this image, " + TWENTY) == "W0 " + TWENTY[3:]
    assert clean_caption("This is an image of " + TWENTY) == "W0 " + TWENTY[3:]
    # Only a leading preamble goes; the same words later stay.
    assert clean_caption(TWENTY + " the image shows") == TWENTY + " the image shows"


def test_clean_caption_word_range():
    assert clean_caption(TWENTY) == TWENTY  # exactly 20 words
    assert clean_caption("iPhone " + TWENTY) == "iPhone " + TWENTY  # case kept
    assert clean_caption(" ".join(["x"] * 19)) is None
    assert clean_caption(" ".join(["x"] * 70)) == " ".join(["x"] * 70)
    assert clean_caption(" ".join(["x"] * 71)) is None  # too long, no sentence to cut at
    assert clean_caption("") is None
    assert clean_caption("The image shows") is None
    assert clean_caption("one two three", min_words=3, max_words=3) == "one two three"


def test_clean_caption_truncates_at_a_sentence_boundary():
    first = " ".join(["a"] * 30) + "."
    second = " ".join(["b"] * 35) + "!"
    third = " ".join(["c"] * 10) + "?"
    # 75 words: the third sentence would pass 70, so the caption ends after the second.
    assert clean_caption(f"{first} {second} {third}") == f"{first} {second}"
    # 30 + 45 words: only the first sentence fits, and it is long enough.
    assert clean_caption(f"{first} " + " ".join(["d"] * 45) + ".") == first
    # 15 + 60 words: what fits (15) is too short, so nothing is kept.
    assert clean_caption(" ".join(["e"] * 14) + " end. " + " ".join(["f"] * 60) + ".") is None


# ---------------------------------------------------------------------------------------------
# instruction_for
# ---------------------------------------------------------------------------------------------


def test_instruction_per_superclass():
    assert set(INSTRUCTIONS) == set(iab.SUPERCLASSES)
    for s in iab.SEMANTICS:
        label = "tabby cat" if s == "ImageNet-1k" else None
        text = instruction_for(s, label)
        assert "{" not in text and "20 to 70 words" in text
        assert text == instruction_for(s, label, min_words=20, max_words=70)
    assert instruction_for("FFHQ") == instruction_for("celebahq")
    assert "face" in instruction_for("FFHQ") and "skin" in instruction_for("FFHQ")
    assert instruction_for("cat") == instruction_for("dog") == instruction_for("wild")
    assert "animal's face" in instruction_for("cat") and "fur" in instruction_for("cat")
    assert instruction_for("bedroom").startswith("Describe the bedroom in the image.")
    assert "church" in instruction_for("church") and "bedroom" not in instruction_for("church")
    assert "people" in instruction_for("classroom")  # scenes leave people out
    assert "objects" in instruction_for("COCO") and "face" not in instruction_for("COCO")
    assert instruction_for("ImageNet-1k", "tabby cat").startswith(
        "Using the label 'tabby cat' as guidance")
    assert "5 to 12 words" in instruction_for("COCO", min_words=5, max_words=12)
    assert len({instruction_for(s, "x" if s == "ImageNet-1k" else None)
                for s in ("FFHQ", "cat", "bedroom", "COCO", "ImageNet-1k")}) == 5


def test_instruction_errors():
    with pytest.raises(iab.BenchmarkError, match="valid semantics: cat, dog, wild"):
        instruction_for("Scene")  # a superclass is not a subclass
    with pytest.raises(iab.BenchmarkError, match="class name"):
        instruction_for("ImageNet-1k")
    with pytest.raises(iab.BenchmarkError, match="class name"):
        instruction_for("ImageNet-1k", "  ")
    with pytest.raises(iab.BenchmarkError, match="only guides ImageNet-1k"):
        instruction_for("cat", "tabby cat")


# ---------------------------------------------------------------------------------------------
# caption_images through the real pipeline
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("semantic", ["FFHQ", "cat", "bedroom", "COCO", "ImageNet-1k"])
def test_each_superclass_instruction_reaches_the_pipeline(pipe, semantic):
    labels = ["tabby cat", "goldfish"] if semantic == "ImageNet-1k" else None
    imgs = images(2)
    # Six byte tokens cannot make 20 words: every answer is rejected, then asked again once.
    results = caption_images(pipe, imgs, semantic, labels, batch_size=2, max_new_tokens=6)
    assert [r.semantic for r in results] == [semantic] * 2
    assert [r.label for r in results] == (labels or [None, None])
    assert all(r.caption is None and r.attempts == 2 for r in results)
    assert all(r.reason == "empty answer" or r.reason.startswith("too short") for r in results)
    first, reask = pipe.received[:2], pipe.received[2:]
    assert len(first) == 2 and len(reask) == 2
    for i, chat in enumerate(first):
        expected = instruction_for(semantic, labels[i] if labels else None)
        assert chat[0]["content"][0]["image"] is imgs[i]
        assert texts(chat) == [expected]
    for i, chat in enumerate(reask):
        assert chat[:1] == first[i]
        assert chat[1]["role"] == "assistant"
        words = re.fullmatch(REASK.format(words=r"(\d+)", min_words=20, max_words=70),
                             chat[2]["content"][0]["text"])
        assert words and int(words.group(1)) < 20


def test_forced_answers_are_cleaned_truncated_reasked_or_rejected(pipe, tmp_path):
    labels = ["goldfish", "tabby", "kimono", "tench", "pelican"]
    first = {
        "goldfish": '"The image shows a goldfish swimming in clear water."',
        "tabby": "A tabby cat sits on a mat. It looks calm. The mat is red and worn out by "
                 "years of use.",
        "kimono": "A kimono.",
        "tench": "A fish.",
        "pelican": "a pelican " * 8,
    }
    second = {"kimono": "A woman wears a red silk kimono in a quiet room.",
              "tench": "A fish.", "pelican": "a pelican " * 8}

    def answer(prompt):
        label = next(lb for lb in labels if f"'{lb}'" in prompt)
        return second[label] if "Rewrite it" in prompt else first[label]

    script = ScriptedAnswer(pipe.processor.tokenizer, answer)
    imgs = images(5)
    imgs[1].save(tmp_path / "tabby.png")
    inputs = [imgs[0], str(tmp_path / "tabby.png"), *imgs[2:]]
    results = caption_images(pipe, inputs, "ImageNet-1k", labels, batch_size=2,
                             max_new_tokens=200, min_words=5, max_words=12,
                             generate_kwargs={"logits_processor": LogitsProcessorList([script])})

    assert [r.label for r in results] == labels
    assert [r.image for r in results] == [None, str(tmp_path / "tabby.png"), None, None, None]
    assert [r.caption for r in results] == [
        "A goldfish swimming in clear water.",
        "A tabby cat sits on a mat. It looks calm.",
        "A woman wears a red silk kimono in a quiet room.",
        None,
        None,
    ]
    assert [r.reason for r in results] == [
        "ok",
        "truncated from 21 words",
        "ok",
        "too short: 2 words (min 5)",
        "too long: 16 words (max 12) and no sentence boundary between 5 and 12 words",
    ]
    assert [r.words for r in results] == [6, 10, 11, 2, 16]
    assert [r.attempts for r in results] == [1, 1, 2, 2, 2]
    assert results[0].raw == first["goldfish"] and results[4].raw == second["pelican"]
    assert [r.ok for r in results] == [True, True, True, False, False]

    # Batches of two: [goldfish, tabby] [kimono, tench] + their re-asks, [pelican] + re-ask.
    asked = [(texts(chat)[0], len(chat)) for chat in pipe.received]
    order = ["goldfish", "tabby", "kimono", "tench", "kimono", "tench", "pelican", "pelican"]
    assert [t for t, _ in asked] == [
        instruction_for("ImageNet-1k", lb, min_words=5, max_words=12) for lb in order]
    assert [n for _, n in asked] == [1, 1, 1, 1, 3, 3, 1, 3]
    assert texts(pipe.received[4]) == [
        texts(pipe.received[2])[0], "A kimono.",
        "Your description has 2 words. Rewrite it as one description of the same image in 5 "
        "to 12 words."]
    assert pipe.received[1][0]["content"][0]["image"].size == (41, 32)  # loaded from the path
    # The model itself saw each instruction through the chat template.
    assert len(script.prompts) == 8
    for prompt, lb in zip(script.prompts, order):
        assert instruction_for("ImageNet-1k", lb, min_words=5, max_words=12) in prompt

    out = tmp_path / "in.csv"
    assert write_prompt_csv([r for r in results if r.ok], out) == 3
    loaded, _ = load_prompts(str(out), ["ImageNet-1k"])
    assert [p.text for p in loaded["ImageNet-1k"]] == [r.caption for r in results[:3]]


def test_batched_answers_match_solo_ones(pipe):
    # Labels of different lengths give prompts of different lengths, so the batch is padded:
    # only left padding leaves each answer as it is alone.
    labels = ["ox", "tabby cat", "great white shark"]
    imgs = images(3)
    solo = caption_images(pipe, imgs, "ImageNet-1k", labels, batch_size=1, max_new_tokens=8,
                          retries=0)
    batched = caption_images(pipe, imgs, "ImageNet-1k", labels, batch_size=3, max_new_tokens=8,
                             retries=0)
    assert pipe.processor.tokenizer.padding_side == "left"
    assert [r.raw for r in batched] == [r.raw for r in solo]
    assert len({r.raw for r in solo}) > 1  # the images and labels do change the answer
    assert [r.attempts for r in batched] == [1, 1, 1]


def test_caption_images_refuses_bad_input_before_asking():
    def never(*args, **kwargs):
        raise AssertionError("the model was called")

    imgs = images(2)
    with pytest.raises(iab.BenchmarkError, match="valid semantics"):
        caption_images(never, imgs, "faces")
    with pytest.raises(iab.BenchmarkError, match="class name"):
        caption_images(never, imgs, "ImageNet-1k")
    with pytest.raises(iab.BenchmarkError, match="class name"):
        caption_images(never, imgs, "ImageNet-1k", ["tabby cat", None])
    with pytest.raises(iab.BenchmarkError, match="1 labels for 2 images"):
        caption_images(never, imgs, "ImageNet-1k", ["tabby cat"])
    with pytest.raises(iab.BenchmarkError, match="only guides ImageNet-1k"):
        caption_images(never, imgs, "cat", ["tabby", "tabby"])
    assert caption_images(never, [], "cat") == []


# ---------------------------------------------------------------------------------------------
# write_prompt_csv
# ---------------------------------------------------------------------------------------------


def result(semantic, text, image="real/cat/0001.jpg", label=None):
    return CaptionResult(image, semantic, label, text, "ok", len(text.split()), 1, text)


def test_write_prompt_csv_round_trip(tmp_path):
    rows = [result("cat", "A grey cat, with \"green\" eyes,\nlooking up."),
            result("cat", "Un chat roux aux yeux dorés.", image=None)]
    out = tmp_path / "sub" / "cat.csv"
    assert write_prompt_csv(rows, out) == 2
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["ImgPath", "Caption", "prompt", "semantic"]
        back = list(reader)
    assert back == [
        {"ImgPath": "real/cat/0001.jpg", "Caption": rows[0].caption, "prompt": rows[0].caption,
         "semantic": "cat"},
        {"ImgPath": "", "Caption": rows[1].caption, "prompt": rows[1].caption,
         "semantic": "cat"},
    ]
    prompts, fingerprint = load_prompts(str(out), ["cat"])
    assert [p.text for p in prompts["cat"]] == [r.caption for r in rows]
    assert all(p.prompt_id.startswith("cat/custom-") for p in prompts["cat"])
    assert len({p.prompt_id for p in prompts["cat"]}) == 2 and len(fingerprint) == 64


def test_write_prompt_csv_imagenet_has_the_official_label_column(tmp_path):
    rows = [result("ImageNet-1k", "A kimono.", "val/n03617480/a.JPEG", "kimono"),
            result("ImageNet-1k", "A tape deck.", "val/n02979186/b.JPEG", "cassette player")]
    out = tmp_path / "imagenet.csv"
    write_prompt_csv(rows, out)
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["ImgPath", "Label", "Caption", "prompt", "semantic"]
        back = list(reader)
    assert [(r["ImgPath"], r["Label"], r["Caption"]) for r in back] == [
        ("val/n03617480/a.JPEG", "kimono", "A kimono."),
        ("val/n02979186/b.JPEG", "cassette player", "A tape deck.")]
    prompts, _ = load_prompts(str(out), ["ImageNet-1k", "cat"])
    assert [p.text for p in prompts["ImageNet-1k"]] == ["A kimono.", "A tape deck."]
    assert prompts["cat"] == []
    # The labels file format of the CLI reads it back by file name.
    assert caption.read_labels(out) == {"a.JPEG": "kimono", "b.JPEG": "cassette player"}


def test_write_prompt_csv_refuses_rejected_rows(tmp_path):
    bad = CaptionResult("x.jpg", "cat", None, None, "too short: 3 words (min 20)", 3, 2, "a b c")
    with pytest.raises(iab.BenchmarkError, match=r"x.jpg\) has no caption \(too short"):
        write_prompt_csv([result("cat", "fine"), bad], tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


# ---------------------------------------------------------------------------------------------
# The CLI, with the tiny model saved to a folder and loaded by path
# ---------------------------------------------------------------------------------------------


def test_cli_reports_rejected_captions(tiny, tmp_path, capsys):
    model, processor = tiny
    model_dir = tmp_path / "tiny-llava"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    folder = tmp_path / "photos"
    (folder / "n01").mkdir(parents=True)
    for i, img in enumerate(images(3)):
        img.save(folder / ("n01" if i == 2 else ".") / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    labels = tmp_path / "labels.csv"
    labels.write_text("ImgPath,Label\n/x/img0.png,ox\nimg1.png,goldfish\nn01/img2.png,tench\n")
    out = tmp_path / "prompts.csv"
    args = caption.parse_args([str(folder), "--semantic", "ImageNet-1k", "--labels", str(labels),
                               "--out", str(out), "--model", str(model_dir), "--device", "cpu",
                               "--max-new-tokens", "4", "--batch-size", "2"])
    # Four byte tokens never make 20 words: nothing is accepted, and every image is reported.
    assert caption.main(args) == 1
    printed = capsys.readouterr().out
    assert "ImageNet-1k: 0/3 captions written" in printed and "3 rejected" in printed
    with out.open(newline="", encoding="utf-8") as f:
        assert list(csv.DictReader(f)) == []
    with (tmp_path / "prompts.csv.rejected.csv").open(newline="", encoding="utf-8") as f:
        rejected = list(csv.DictReader(f))
    assert [(r["ImgPath"], r["Label"], r["attempts"]) for r in rejected] == [
        (str(folder / "img0.png"), "ox", "2"), (str(folder / "img1.png"), "goldfish", "2"),
        (str(folder / "n01" / "img2.png"), "tench", "2")]


def test_cli_refuses_missing_labels(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    images(1)[0].save(folder / "a.png")
    args = caption.parse_args([str(folder), "--semantic", "ImageNet-1k", "--out", "x.csv"])
    with pytest.raises(iab.BenchmarkError, match="need --labels"):
        caption.main(args)
    labels = tmp_path / "labels.csv"
    labels.write_text("ImgPath,Label\nb.png,ox\n")
    args.labels = str(labels)
    with pytest.raises(iab.BenchmarkError, match="1 image\\(s\\) missing .* a.png"):
        caption.main(args)
    args.semantic = "living_room"
    with pytest.raises(iab.BenchmarkError, match="valid semantics"):
        caption.main(args)

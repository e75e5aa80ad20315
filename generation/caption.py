"""Caption new real images into prompts, the way the paper made the official prompt set.

A vision-language model (any ``image-text-to-text`` checkpoint; Qwen2.5-VL by default) is asked
to describe each real image with an instruction chosen by the image's superclass: face-focused
for HumanFace and AnimalFace, scene-focused for Scene, content-focused for COCO, and guided by the
image's class name for ImageNet-1k. Answers are cleaned and must be 20-70 words: a long one is
cut at a sentence boundary, one still outside the range is asked again, and one that still fails
is reported, never kept.

    python generation/caption.py photos/ --semantic cat --out cat_prompts.csv
    python generation/caption.py val/ --semantic ImageNet-1k --labels labels.csv --out in.csv

The CSV has the official columns (ImgPath, Caption, and Label for ImageNet-1k) plus ``prompt`` and
``semantic``, so it works directly as ``generation/run.py --prompts``. From Python:

    from transformers import pipeline
    from generation.caption import caption_images, write_prompt_csv

    pipe = pipeline("image-text-to-text", model="Qwen/Qwen2.5-VL-7B-Instruct")
    results = caption_images(pipe, ["a.jpg", "b.jpg"], "cat")
    write_prompt_csv([r for r in results if r.ok], "cat_prompts.csv")
"""

from __future__ import annotations

import argparse
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import imageattributionbench as iab
from iab.scripts import DefaultsHelpFormatter, run_script

if TYPE_CHECKING:  # only for type hints: PIL and transformers are imported lazily
    from PIL import Image

DEFAULT_MODEL = "Qwen/Qwen2.5-VL-7B-Instruct"
MIN_WORDS = 20
MAX_WORDS = 70
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")

# One instruction per superclass, after the paper's templates. Placeholders: {label} (the
# ImageNet class name), {scene} (the Scene subclass, e.g. bedroom), {min_words}, {max_words}.
INSTRUCTIONS: dict[str, str] = {
    "HumanFace": (
        "Describe the face in the image, focusing on facial features: the shape and appearance "
        "of the eyes, nose, mouth and ears, the colour and texture of the skin, the facial "
        "expression and any visible hair. Keep the description centred on the face, with little "
        "about the background or body. Use {min_words} to {max_words} words."
    ),
    "AnimalFace": (
        "Describe the animal's face in the image, focusing on facial features: the shape and "
        "appearance of the eyes, nose, mouth and ears, the colour and texture of the fur, and the "
        "facial expression. Keep the description centred on the face, with little about the "
        "background or body. Use {min_words} to {max_words} words."
    ),
    "Scene": (
        "Describe the {scene} in the image. Focus on the main elements typical of a {scene}: "
        "objects, layout, colours and lighting. Leave out people and unrelated details. Make the "
        "description visual and vivid, {min_words} to {max_words} words."
    ),
    "COCO": (
        "Describe the content of the image in as much detail as possible, focusing on objects, "
        "setting, colours, actions and mood. Use {min_words} to {max_words} words."
    ),
    "ImageNet-1k": (
        "Using the label '{label}' as guidance, describe the image in as much detail as possible, "
        "focusing on objects, setting, colours, actions and mood, and include what relates to "
        "the label. Use {min_words} to {max_words} words."
    ),
}

# Sent as a second user turn when an answer is outside the word range.
REASK = ("Your description has {words} words. Rewrite it as one description of the same image "
         "in {min_words} to {max_words} words.")

# VLM boilerplate that says nothing about the image ("The image shows a cat" -> "A cat").
_PREAMBLE = re.compile(
    r"^(?:(?:the|this) (?:image|picture|photo(?:graph)?) (?:shows|depicts|features|captures"
    r"|displays|presents|contains|is of)"
    r"|(?:this|it) is an? (?:image|picture|photo(?:graph)?) of"
    r"|(?:in|within) (?:the|this) (?:image|picture|photo(?:graph)?),?)\s+",
    re.IGNORECASE,
)
_QUOTES = "\"'“”‘’`"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def instruction_for(semantic: str, label: str | None = None, *, min_words: int = MIN_WORDS,
                    max_words: int = MAX_WORDS) -> str:
    """The instruction sent to the captioner for one image of a subclass (``cat``, ``bedroom``,
    ``ImageNet-1k``...). ImageNet-1k needs the image's class name as ``label``; other subclasses
    take none."""
    superclass = iab.superclass_of(semantic)  # an unknown name lists the valid ones
    if superclass == "ImageNet-1k":
        if not label or not label.strip():
            raise iab.BenchmarkError("ImageNet-1k captions are guided by the image's class name; "
                                     "give its label (e.g. 'tabby cat')")
    elif label is not None:
        raise iab.BenchmarkError(f"a label only guides ImageNet-1k captions, not {semantic!r}; "
                                 "leave it out")
    return INSTRUCTIONS[superclass].format(label=(label or "").strip(), scene=semantic,
                                           min_words=min_words, max_words=max_words)


def _clean(text: str, min_words: int, max_words: int) -> tuple[str | None, str, int]:
    """(caption or None, reason, word count) for one raw answer."""
    text = " ".join(text.split()).strip(_QUOTES).strip()
    stripped = _PREAMBLE.sub("", text, count=1)
    if stripped != text:  # "The image shows a cat" -> "A cat"
        text = stripped[:1].upper() + stripped[1:]
    words = len(text.split())
    if words == 0:
        return None, "empty answer", 0
    if words < min_words:
        return None, f"too short: {words} words (min {min_words})", words
    if words <= max_words:
        return text, "ok", words
    # Too long: keep the most whole sentences that fit, so the prompt never ends mid-sentence.
    kept, count = [], 0
    for sentence in _SENTENCE_END.split(text):
        n = len(sentence.split())
        if count + n > max_words:
            break
        kept.append(sentence)
        count += n
    if count >= min_words:
        return " ".join(kept), f"truncated from {words} words", count
    return None, (f"too long: {words} words (max {max_words}) and no sentence boundary between "
                  f"{min_words} and {max_words} words"), words


def clean_caption(text: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> str | None:
    """A model's answer as a prompt, or None when it cannot be one.

    Strips surrounding quotes, collapses whitespace, drops a leading "The image shows"-style
    preamble (capitalising what follows), and cuts an answer over ``max_words`` after its last
    whole sentence that fits. None when the result has fewer than ``min_words`` words or no
    sentence boundary gives ``min_words``..``max_words``.
    """
    return _clean(text, min_words, max_words)[0]


@dataclass(frozen=True)
class CaptionResult:
    """The outcome for one image: ``caption`` is None when it was rejected (see ``reason``)."""

    image: str | None  # the path given, or a PIL image's filename (None for an in-memory image)
    semantic: str
    label: str | None
    caption: str | None
    reason: str  # "ok", "truncated from N words", or why it was rejected
    words: int  # of the caption; of the cleaned last answer when rejected
    attempts: int  # how many times the model was asked
    raw: str  # the model's last answer, as generated

    @property
    def ok(self) -> bool:
        return self.caption is not None


def _load_image(image: str | Path | Image.Image) -> Image.Image:
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    with Image.open(image) as im:
        # RGB for every processor: palette, RGBA and greyscale files all occur among real photos.
        return im.convert("RGB")


def _image_name(image: str | Path | Image.Image) -> str | None:
    if isinstance(image, (str, Path)):
        return str(image)
    return getattr(image, "filename", None) or None  # "" for an image made in memory


def _answer_text(output: Any) -> str:
    """The generated text of one pipeline output (a record, or a list of one record)."""
    if isinstance(output, list):
        output = output[0]
    text = output["generated_text"]
    if isinstance(text, list):  # a whole chat came back: the answer is its last message
        text = text[-1]["content"]
        if isinstance(text, list):
            text = " ".join(c.get("text", "") for c in text)
    return text


def _use_left_padding(pipe: Any) -> None:
    # The pipeline pads a batch on the tokenizer's side; a decoder-only model generating after
    # right padding continues from pad tokens, so batched answers would differ from solo ones.
    for tokenizer in (getattr(pipe, "tokenizer", None),
                      getattr(getattr(pipe, "processor", None), "tokenizer", None)):
        if tokenizer is not None:
            tokenizer.padding_side = "left"


def caption_images(pipe: Any, images: Sequence[str | Path | Image.Image], semantic: str,
                   labels: Sequence[str | None] | None = None, *, batch_size: int = 8,
                   max_new_tokens: int = 120, min_words: int = MIN_WORDS,
                   max_words: int = MAX_WORDS, retries: int = 1,
                   generate_kwargs: dict | None = None, progress: bool = False
                   ) -> list[CaptionResult]:
    """Caption ``images`` (paths or PIL images) of one subclass with an ``image-text-to-text``
    pipeline; one result per image, in order.

    ``labels`` (one per image) are required for ImageNet-1k and refused otherwise. An answer
    outside ``min_words``..``max_words`` after :func:`clean_caption` is asked again, up to
    ``retries`` times, as a follow-up turn quoting its word count. Decoding is greedy unless
    ``generate_kwargs`` says otherwise. Images are loaded ``batch_size`` at a time; batching
    sets the pipeline tokenizer's padding side to left.
    """
    iab.superclass_of(semantic)
    if labels is None:
        labels = [None] * len(images)
    if len(labels) != len(images):
        raise iab.BenchmarkError(f"{len(labels)} labels for {len(images)} images; give one "
                                 "label per image")
    if batch_size < 1 or retries < 0 or not 0 < min_words <= max_words:
        raise iab.BenchmarkError("need batch_size >= 1, retries >= 0 and "
                                 "0 < min_words <= max_words")
    instructions = [instruction_for(semantic, label, min_words=min_words, max_words=max_words)
                    for label in labels]  # checks every label before any model call
    # Greedy by default so that the same model and images give the same prompts.
    gen = {"do_sample": False, **(generate_kwargs or {})}
    if batch_size > 1:
        _use_left_padding(pipe)

    def ask(chats: list[list[dict]]) -> list[str]:
        outputs = pipe(text=chats, batch_size=batch_size, max_new_tokens=max_new_tokens,
                       return_full_text=False, generate_kwargs=dict(gen))
        return [_answer_text(o) for o in outputs]

    bar = None
    if progress:
        from iab.progress import progress as progress_bar

        bar = progress_bar(total=len(images), unit="image", desc=f"captioning {semantic}")
    results: list[CaptionResult] = []
    for start in range(0, len(images), batch_size):
        chunk = range(start, min(start + batch_size, len(images)))
        chats = [[{"role": "user", "content": [
            {"type": "image", "image": _load_image(images[i])},
            {"type": "text", "text": instructions[i]}]}] for i in chunk]
        raws = ask(chats)
        done = [_clean(r, min_words, max_words) for r in raws]
        attempts = [1] * len(chats)
        for _retry in range(retries):
            again = [j for j, (caption, _, _) in enumerate(done) if caption is None]
            if not again:
                break
            followups = [chats[j] + [
                {"role": "assistant", "content": [{"type": "text", "text": raws[j]}]},
                {"role": "user", "content": [{"type": "text", "text": REASK.format(
                    words=done[j][2], min_words=min_words, max_words=max_words)}]},
            ] for j in again]
            for j, raw in zip(again, ask(followups)):
                raws[j], done[j] = raw, _clean(raw, min_words, max_words)
                attempts[j] += 1
        for j, i in enumerate(chunk):
            caption, reason, words = done[j]
            results.append(CaptionResult(_image_name(images[i]), semantic, labels[i], caption,
                                         reason, words, attempts[j], raws[j]))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return results


def write_prompt_csv(rows: Iterable[CaptionResult], path: str | Path) -> int:
    """Write accepted captions as a prompts CSV; returns the number of rows.

    Columns: ImgPath, Label (only when a row has one, i.e. ImageNet-1k), Caption as in the
    official files, then ``prompt`` and ``semantic`` for ``generation/run.py --prompts``. A
    rejected result (no caption) is refused: filter with ``r.ok`` and report the others.
    """
    rows = list(rows)
    for i, r in enumerate(rows):
        if r.caption is None:
            raise iab.BenchmarkError(f"row {i} ({r.image}) has no caption ({r.reason}); write "
                                     "only results with .ok and report the rejected ones")
        iab.superclass_of(r.semantic)
    with_label = any(r.label is not None for r in rows)
    columns = ["ImgPath"] + (["Label"] if with_label else []) + ["Caption", "prompt", "semantic"]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            row = {"ImgPath": r.image or "", "Caption": r.caption, "prompt": r.caption,
                   "semantic": r.semantic}
            if with_label:
                row["Label"] = r.label or ""
            writer.writerow(row)
    return len(rows)


def find_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (subfolders included), in sorted path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise iab.BenchmarkError(f"image folder {str(folder)!r} not found")
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_labels(path: str | Path) -> dict[str, str]:
    """File name -> class name from a CSV with columns ImgPath and Label (an official
    ImageNet-1k prompt file qualifies). Images are matched by file name, as the official
    prompts are."""
    path = Path(path)
    if not path.is_file():
        raise iab.BenchmarkError(f"labels file {str(path)!r} not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("ImgPath", "Label") if c not in (reader.fieldnames or [])]
        if missing:
            raise iab.BenchmarkError(f"{path}: missing column(s) {', '.join(missing)}; a labels "
                                     "file needs ImgPath and Label")
        out: dict[str, str] = {}
        for i, row in enumerate(reader):
            name = row["ImgPath"].replace("\\", "/").rsplit("/", 1)[-1]
            if out.get(name, row["Label"]) != row["Label"]:
                raise iab.BenchmarkError(f"{path}, row {i}: {name} has two labels, "
                                         f"{out[name]!r} and {row['Label']!r}")
            out[name] = row["Label"]
    return out


def load_captioner(model: str, device: str | None = None, dtype: str = "auto") -> Any:
    """An ``image-text-to-text`` pipeline for a Hub id or local folder (GPU when there is one)."""
    import torch
    from transformers import pipeline

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return pipeline("image-text-to-text", model=model, device=device,
                    dtype=dtype if dtype == "auto" else getattr(torch, dtype))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter,
        description="Caption real images into a prompts CSV (official columns plus prompt, "
                    "semantic) with a vision-language model.")
    what = p.add_argument_group("what to caption")
    what.add_argument("images", metavar="IMAGE_FOLDER",
                      help="folder of real images (subfolders included)")
    what.add_argument("--semantic", required=True,
                      help=f"the images' subclass: {', '.join(iab.SEMANTICS)}")
    what.add_argument("--labels", help="ImageNet-1k: CSV with ImgPath and Label (class name), "
                                       "matched by file name")
    what.add_argument("--out", required=True, help="prompts CSV to write")
    how = p.add_argument_group("how")
    how.add_argument("--model", default=DEFAULT_MODEL,
                     help=f"image-text-to-text Hub id or folder (default {DEFAULT_MODEL})")
    how.add_argument("--batch-size", type=int, default=8, help="images per model call")
    how.add_argument("--max-new-tokens", type=int, default=120, help="default 120")
    how.add_argument("--retries", type=int, default=1,
                     help="times an answer outside 20-70 words is asked again (default 1)")
    how.add_argument("--device", help="e.g. cuda, cuda:1, cpu (default: cuda when available)")
    how.add_argument("--dtype", default="auto",
                     choices=("auto", "float32", "float16", "bfloat16"),
                     help="weights dtype of the captioning model")
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.max_new_tokens < 1 or args.retries < 0:
        p.error("--batch-size and --max-new-tokens must be at least 1, --retries at least 0")
    return args


def main(args: argparse.Namespace) -> int:
    """Caption, write ``--out`` and, when some fail, ``<out>.rejected.csv``. Exit status 1 when
    no caption was accepted."""
    iab.superclass_of(args.semantic)
    paths = find_images(args.images)
    if not paths:
        raise iab.BenchmarkError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {args.images}")
    labels = None
    if args.labels:
        by_name = read_labels(args.labels)
        unlabelled = [p.name for p in paths if p.name not in by_name]
        if unlabelled:
            raise iab.BenchmarkError(f"{len(unlabelled)} image(s) missing from {args.labels}, "
                                     f"e.g. {', '.join(unlabelled[:3])}")
        labels = [by_name[p.name] for p in paths]
    elif iab.superclass_of(args.semantic) == "ImageNet-1k":
        raise iab.BenchmarkError("ImageNet-1k captions need --labels (CSV with ImgPath, Label)")

    pipe = load_captioner(args.model, args.device, args.dtype)
    results = caption_images(pipe, [str(p) for p in paths], args.semantic, labels,
                             batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                             retries=args.retries, progress=True)
    accepted = [r for r in results if r.ok]
    out = Path(args.out)
    write_prompt_csv(accepted, out)
    truncated = sum(r.reason != "ok" for r in accepted)
    print(f"{args.semantic}: {len(accepted)}/{len(results)} captions written to {out} "
          f"({truncated} cut at a sentence boundary)")
    rejected = [r for r in results if not r.ok]
    if rejected:
        report = out.with_name(out.name + ".rejected.csv")
        with report.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["ImgPath", "Label", "reason", "attempts", "answer"])
            for r in rejected:
                writer.writerow([r.image, r.label or "", r.reason, r.attempts, r.raw])
        print(f"{len(rejected)} rejected (listed in {report}):")
        for r in rejected[:10]:
            print(f"  {r.image}: {r.reason}")
        if len(rejected) > 10:
            print(f"  ... and {len(rejected) - 10} more")
    return 0 if accepted else 1


if __name__ == "__main__":
    run_script(lambda: main(parse_args()))

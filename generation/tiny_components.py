"""The parts tiny pipelines are assembled from: real tokenizer classes over in-memory
vocabularies, tiny transformers text encoders, VAE and UNet, and the seeded build context.

Every part is the real class with a tiny config and random weights (see ``generation.tiny``).
"""

from __future__ import annotations

import contextlib
import string
from typing import Iterator

TINY_RESOLUTION = 64

# Every tokenizer truncates, so captions of any length fit; small limits keep calls fast.
CLIP_MAX_LENGTH = 77
MAX_SEQUENCE_LENGTH = 32

# A Qwen3-style chat template, short: Z-Image and FLUX.2 [klein] wrap each prompt in it.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


# ---------------------------------------------------------------------------------------------
# Tokenizers: real classes over in-memory vocabularies (one token per character or byte)
# ---------------------------------------------------------------------------------------------


def byte_alphabet() -> list[str]:
    from tokenizers.pre_tokenizers import ByteLevel

    return sorted(ByteLevel.alphabet())


def clip_tokenizer():
    from transformers import CLIPTokenizer

    # Byte-level BPE without merges: each byte a token, word ends marked as CLIP marks them.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in byte_alphabet():
            vocab[c + suffix] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=CLIP_MAX_LENGTH)


def t5_tokenizer():
    from transformers import T5Tokenizer

    chars = [c for c in string.printable if not c.isspace()]
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [("\u2581" + c, -2.5) for c in chars] + [(c, -3.0) for c in chars]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=MAX_SEQUENCE_LENGTH)


def qwen_tokenizer():
    from transformers import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(byte_alphabet())}
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    for s in specials:
        vocab[s] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], additional_special_tokens=specials[1:])
    tok.chat_template = CHAT_TEMPLATE
    return tok


def fast_byte_tokenizer(prefix: list[str], pad: str, **kwargs):
    """A byte-level PreTrainedTokenizerFast that starts every text with ``prefix`` tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(byte_alphabet())}
    for s in [pad, *prefix]:
        vocab[s] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single=" ".join(prefix + ["$A"]), special_tokens=[(s, vocab[s]) for s in prefix],
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token=pad, **kwargs)


def glm_tokenizer():
    # GLM-4 starts every text with [gMASK]<sop>. CogView4 relies on it: an empty negative prompt
    # would otherwise encode to zero tokens. GLM pads on the left.
    return fast_byte_tokenizer(
        ["[gMASK]", "<sop>"], pad="<|endoftext|>", eos_token="<|endoftext|>",
        additional_special_tokens=["[gMASK]", "<sop>"], padding_side="left",
    )


def llama_tokenizer():
    return fast_byte_tokenizer(
        ["<|begin_of_text|>"], pad="<|end_of_text|>", bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>", model_max_length=MAX_SEQUENCE_LENGTH,
    )


# ---------------------------------------------------------------------------------------------
# Shared components
# ---------------------------------------------------------------------------------------------


def clip_text(tokenizer, with_projection: bool = False):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, projection_dim=32,
        max_position_embeddings=CLIP_MAX_LENGTH, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)


def t5_encoder(tokenizer, d_model: int = 32):
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(
        vocab_size=len(tokenizer), d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
        relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
    ))


def qwen3(tokenizer, causal_lm: bool, num_layers: int = 2, hidden_size: int = 32):
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=37,
        num_hidden_layers=num_layers, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        pad_token_id=tokenizer.pad_token_id, max_position_embeddings=512,
    )
    return (Qwen3ForCausalLM if causal_lm else Qwen3Model)(config)


def vae(latent_channels: int, flow: bool = False):
    from diffusers import AutoencoderKL

    # Four blocks, so latents are 1/8 of the image as in the real VAEs: with fewer, the denoiser
    # sees 64x64 latents and gets slow.
    kwargs = dict(shift_factor=0.0609, scaling_factor=1.5035, use_quant_conv=False,
                  use_post_quant_conv=False) if flow else {}
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 8, 8, 8),
        layers_per_block=1, norm_num_groups=4, latent_channels=latent_channels,
        sample_size=TINY_RESOLUTION, **kwargs,
    )


LATENT = TINY_RESOLUTION // 8


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Build float32 on CPU from ``torch.manual_seed(seed)``, leaving the caller's RNG as it was."""
    import torch

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        with torch.random.fork_rng(devices=[]), torch.device("cpu"):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_default_dtype(default_dtype)


def ready(pipe):
    import torch

    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # dropout off: T5 would otherwise make images depend on the call
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------
# One builder per diffusers pipeline class
# ---------------------------------------------------------------------------------------------


def unet(cross_attention_dim: int, sdxl: bool = False):
    from diffusers import UNet2DConditionModel

    extra = dict(
        addition_embed_type="text_time", addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32, transformer_layers_per_block=(1, 2),
    ) if sdxl else {}
    return UNet2DConditionModel(
        sample_size=LATENT, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8, attention_head_dim=(2, 4),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim, **extra,
    )


def bert_tokenizer():
    from transformers import BertTokenizer

    chars = [c for c in string.printable if not c.isspace() and not c.isupper()]
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    return BertTokenizer(vocab={w: i for i, w in enumerate(words)},
                         model_max_length=CLIP_MAX_LENGTH)

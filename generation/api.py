"""Image-generation APIs for the generators we cannot run locally (``Generator.runs == "api"``).

One client per generator, made from its registry entry::

    g = iab.generator("dalle3")
    client = api_client(g.api, g.api_model, requests_per_minute=5)
    png = client.generate("a cat on a sofa", seed=123, width=1024, height=1024)
    meta = client.request_params(seed=123, width=1024, height=1024)  # what was sent, to record

``generate`` returns the image bytes exactly as the provider sent them (base64-decoded, never
re-encoded). Transient failures (HTTP 429/5xx, connection errors, timeouts) are retried with
exponential backoff and jitter, honouring ``Retry-After``; other errors fail at once with the
provider's message. A refused prompt raises ``PromptRefused`` so a job can record and skip it.

Adapters (``ADAPTERS``): ``openai`` (OpenAI Images API, key ``OPENAI_API_KEY``), ``gemini``
(Gemini API generateContent, key ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``), ``seedream``
(BytePlus ModelArk, key ``ARK_API_KEY``) and ``openai_compatible`` (an OpenAI-format images
endpoint such as the proxy the paper's code used, key ``OPENAI_API_KEY`` or ``API_KEY``, no
default host). ``base_url`` is the host without the version path, e.g.
``https://api.openai.com``. ``options`` are further request fields sent with every request
(a profile's, e.g. DALL-E 3's ``style`` and ``quality``).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import logging
import math
import os
import random
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable

import httpx

from imageattributionbench import BenchmarkError

log = logging.getLogger(__name__)

ADAPTERS = ("openai", "gemini", "seedream", "openai_compatible")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The sizes each OpenAI model accepts; anything else is a 400 that would cost a round trip.
OPENAI_SIZES: dict[str, tuple[str, ...]] = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536"),
    "gpt-image-1.5": ("1024x1024", "1536x1024", "1024x1536"),
}
# Gemini takes no size: with a text-only prompt it returns its default 1024x1024 square.
GEMINI_SIZES = ("1024x1024",)
# Seedream 4.0's rule for an explicit "WxH": total pixels and aspect ratio within these bounds.
SEEDREAM_MIN_PIXELS = 1280 * 720
SEEDREAM_MAX_PIXELS = 4096 * 4096
SEEDREAM_MAX_ASPECT = 16
# Seedream 3.0 (seedream-3-0-t2i): any WxH with 512x512 <= W*H <= 2048x2048.
SEEDREAM3_PIXELS = (512 * 512, 2048 * 2048)
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0
# The longest Retry-After honoured; a provider asking for more (a daily quota spent) gets no
# retry: the request fails at once, and the job stops or goes on (generation/run.py).
RETRY_AFTER_MAX_S = 120.0


class ImageAPIError(RuntimeError):
    """The provider did not return an image; ``status`` is the last HTTP status (or None)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class PromptRefused(ImageAPIError):
    """The provider refused the prompt (a safety or content-policy block); retrying won't help."""


class ImageAPI:
    """A client for one model of one provider. Use ``api_client`` to make one.

    ``adapter``, ``model`` and ``base_url`` say where requests go; ``request_params`` says what a
    ``generate`` call sends (size string, seed or None where the API takes none).
    """

    adapter = ""
    provider = ""
    key_env: tuple[str, ...] = ()
    default_base = ""
    takes_seed = False

    def __init__(self, model: str, *, base_url: str | None, api_key: str | None,
                 requests_per_minute: float | None, max_retries: int, timeout: float,
                 sleep: Callable[[float], None], clock: Callable[[], float],
                 options: dict | None = None):
        self.model = model
        self.options = dict(options or {})
        self.base_url = (base_url or self.default_base).rstrip("/")
        self.max_retries = max_retries
        self.requests_per_minute = requests_per_minute
        self._sleep = sleep
        self._clock = clock
        self._sent: deque[float] = deque()
        key = api_key or next((os.environ[v] for v in self.key_env if os.environ.get(v)), None)
        if not key:
            names = self.key_env[0] + (f" (or {', '.join(self.key_env[1:])})"
                                       if len(self.key_env) > 1 else "")
            raise BenchmarkError(f"no API key for {model} (the {self.adapter!r} adapter): "
                                 f"set the environment variable {names}, e.g. `export "
                                 f"{self.key_env[0]}=...`, and rerun")
        # Kept only to scrub it from provider messages before they reach an error or a log.
        self._key = key
        self._http = httpx.Client(base_url=self.base_url, headers=self._auth(key),
                                  timeout=timeout, verify=_ssl_context())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    def __enter__(self) -> ImageAPI:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- what an adapter defines ---------------------------------------------------------------

    def _auth(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def _size(self, width: int, height: int) -> str | None:
        raise NotImplementedError

    def _request(self, prompt: str, params: dict) -> tuple[str, dict]:
        raise NotImplementedError

    def _image(self, payload: dict) -> bytes:
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------------

    def request_params(self, *, seed: int | None, width: int, height: int) -> dict:
        """What ``generate`` sends for these arguments: adapter, model, size string, seed.

        ``size`` is None where the API takes no size and ``seed`` is None where it takes no
        seed. An unsupported size is a BenchmarkError listing the valid ones.
        """
        return {"adapter": self.adapter, "model": self.model, "size": self._size(width, height),
                "seed": seed if self.takes_seed else None}

    def generate(self, prompt: str, *, seed: int | None, width: int, height: int) -> bytes:
        """One image for ``prompt``, as the provider encoded it (PNG, JPEG, ...).

        Any answer that holds no image (an error status, a body of another shape, data that
        is not base64) raises ImageAPIError; a refused prompt, PromptRefused.
        """
        params = self.request_params(seed=seed, width=width, height=height)
        path, body = self._request(prompt, params)
        payload = self._post(path, {**body, **self.options})
        if not isinstance(payload, dict):
            raise ImageAPIError(f"{self.provider} returned JSON that is not an object "
                                f"({type(payload).__name__}) for {self.model!r}")
        try:
            return self._image(payload)
        except (AttributeError, TypeError, KeyError, IndexError) as e:
            # an answer of a shape the adapter does not know: a changed or broken API
            raise ImageAPIError(f"{self.provider} returned a response of an unexpected shape "
                                f"for {self.model!r} ({type(e).__name__}: {e})") from None

    def _post(self, path: str, body: dict) -> dict:
        attempts = self.max_retries + 1
        last, status = "", None
        for attempt in range(1, attempts + 1):
            self._throttle()
            retry_after = None
            try:
                response = self._http.post(path, json=body)
            except httpx.TransportError as e:
                last, status = f"{type(e).__name__}: {self._scrub(str(e))}", None
            else:
                status = response.status_code
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError:
                        raise ImageAPIError(f"{self.provider} returned HTTP {status} with a body "
                                            "that is not JSON", status) from None
                code, message = self._error(response)
                if status not in RETRY_STATUSES:
                    kind = PromptRefused if _is_refusal(code) else ImageAPIError
                    raise kind(f"{self.provider} rejected the request for {self.model!r} "
                               f"(HTTP {status}): {message}", status)
                last = f"HTTP {status}: {message}"
                retry_after = _retry_after(response)
                if retry_after is not None and retry_after > RETRY_AFTER_MAX_S:
                    raise ImageAPIError(
                        f"{self.provider} {self.model!r}: {last}; it asks to retry after "
                        f"{retry_after:.0f} s, longer than the {RETRY_AFTER_MAX_S:.0f} s this "
                        "client waits (a spent quota?): rerun later, the job resumes", status)
            if attempt == attempts:
                break
            delay = retry_after if retry_after is not None else _backoff(attempt)
            log.warning("%s %s: %s; retry %d/%d in %.1f s", self.provider, self.model, last,
                        attempt, self.max_retries, delay)
            self._sleep(delay)
        raise ImageAPIError(f"{self.provider} {self.model!r}: gave up after {attempts} attempts "
                            f"(max_retries={self.max_retries}); last error: {last}", status)

    def _throttle(self) -> None:
        """Sleep until a request fits in the rolling minute; then count it."""
        if self.requests_per_minute is None:
            return
        # A whole number of requests per window: at most rpm per minute, also for rpm < 1.
        rpm = self.requests_per_minute
        per_window = max(1, math.floor(rpm))
        window = 60.0 if rpm >= 1 else 60.0 / rpm
        now = self._clock()
        while self._sent and self._sent[0] <= now - window:
            self._sent.popleft()
        if len(self._sent) >= per_window:
            self._sleep(self._sent[0] + window - now)
            now = self._clock()
            self._sent.popleft()
        self._sent.append(now)

    def _error(self, response: httpx.Response) -> tuple[str | None, str]:
        """The provider's error code and message, from {"error": {"message": ...}} when present."""
        try:
            err = response.json().get("error") or {}
            code, message = err.get("code"), err.get("message")
        except (ValueError, AttributeError):
            code, message = None, None
        if not message:
            message = response.text[:500] or response.reason_phrase
        return (str(code) if code is not None else None), self._scrub(str(message))

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***")

    def _decode(self, b64: object) -> bytes:
        if not isinstance(b64, str) or not b64:
            raise ImageAPIError(f"{self.provider} returned no image data for {self.model!r}")
        try:
            return base64.b64decode(b64, validate=True)
        except binascii.Error as e:
            raise ImageAPIError(f"{self.provider} returned image data that is not base64: "
                                f"{e}") from None


class OpenAIImages(ImageAPI):
    """OpenAI Images API: POST /v1/images/generations."""

    adapter, provider = "openai", "OpenAI"
    key_env = ("OPENAI_API_KEY",)
    default_base = "https://api.openai.com"

    def __init__(self, model: str, **kwargs):
        if model not in OPENAI_SIZES:
            raise BenchmarkError(f"OpenAI model {model!r} has no known sizes; known models: "
                                 f"{', '.join(OPENAI_SIZES)} (add its sizes to OPENAI_SIZES)")
        super().__init__(model, **kwargs)

    def _size(self, width: int, height: int) -> str:
        return _listed_size(self.model, width, height, OPENAI_SIZES[self.model])

    def _request(self, prompt: str, params: dict) -> tuple[str, dict]:
        body = {"model": self.model, "prompt": prompt, "n": 1, "size": params["size"]}
        # gpt-image models always return base64 and reject response_format.
        if self.model.startswith("dall-e"):
            body["response_format"] = "b64_json"
        return "/v1/images/generations", body

    def _image(self, payload: dict) -> bytes:
        return self._decode(_b64_json(payload))


class SeedreamImages(ImageAPI):
    """BytePlus ModelArk (Seedream), OpenAI-compatible: POST /api/v3/images/generations."""

    adapter, provider = "seedream", "BytePlus ModelArk"
    key_env = ("ARK_API_KEY",)
    default_base = "https://ark.ap-southeast.bytepluses.com"
    takes_seed = True

    def _size(self, width: int, height: int) -> str:
        pixels, ratio = width * height, max(width, height) / max(1, min(width, height))
        if self.model.startswith("seedream-3-0"):
            low, high = SEEDREAM3_PIXELS
            if width <= 0 or height <= 0 or not low <= pixels <= high:
                raise BenchmarkError(f"size {width}x{height} is not supported by "
                                     f"{self.model!r}: valid sizes are WxH with 512x512 <= "
                                     "W*H <= 2048x2048, e.g. 1024x1024")
            return f"{width}x{height}"
        if (width <= 0 or height <= 0 or not SEEDREAM_MIN_PIXELS <= pixels <= SEEDREAM_MAX_PIXELS
                or ratio > SEEDREAM_MAX_ASPECT):
            raise BenchmarkError(
                f"size {width}x{height} is not supported by {self.model!r}: valid sizes are WxH "
                f"with 1280x720 <= W*H <= 4096x4096 and aspect ratio between 1:16 and 16:1, "
                f"e.g. 1024x1024, 2048x2048, 2560x1440")
        return f"{width}x{height}"

    def _request(self, prompt: str, params: dict) -> tuple[str, dict]:
        body = {"model": self.model, "prompt": prompt, "size": params["size"],
                "response_format": "b64_json", "watermark": False}
        if params["seed"] is not None:
            body["seed"] = params["seed"]
        return "/api/v3/images/generations", body

    def _image(self, payload: dict) -> bytes:
        return self._decode(_b64_json(payload))


class GeminiImages(ImageAPI):
    """Gemini API: POST /v1beta/models/{model}:generateContent with an IMAGE response modality."""

    adapter, provider = "gemini", "Gemini API"
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    default_base = "https://generativelanguage.googleapis.com"
    takes_seed = True

    def _auth(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def _size(self, width: int, height: int) -> None:
        _listed_size(self.model, width, height, GEMINI_SIZES)
        return None

    def _request(self, prompt: str, params: dict) -> tuple[str, dict]:
        config: dict = {"responseModalities": ["TEXT", "IMAGE"]}
        if params["seed"] is not None:
            config["seed"] = params["seed"]
        return (f"/v1beta/models/{self.model}:generateContent",
                {"contents": [{"parts": [{"text": prompt}]}], "generationConfig": config})

    def _image(self, payload: dict) -> bytes:
        candidates = _list(payload.get("candidates"))
        first = _obj(candidates[0]) if candidates else {}
        parts = [_obj(p) for p in _list(_obj(first.get("content")).get("parts"))]
        for part in parts:
            inline = _obj(part.get("inlineData") or part.get("inline_data"))
            mime = inline.get("mimeType") or inline.get("mime_type") or ""
            # Thinking models may send draft images marked as thoughts before the final one.
            if isinstance(mime, str) and mime.startswith("image/") and not part.get("thought"):
                return self._decode(inline.get("data"))
        block = _obj(payload.get("promptFeedback")).get("blockReason")
        finish = first.get("finishReason")
        text = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str)).strip()
        why = (f"blockReason={block}" if block else
               f"finishReason={finish}" if finish else "no image part in the response")
        raise PromptRefused(f"{self.provider} {self.model!r} refused the prompt ({why})"
                            + (f"; it said: {text[:300]}" if text else ""))


class OpenAICompatibleImages(ImageAPI):
    """An OpenAI-format images endpoint on another host (a proxy): POST /v1/images/generations
    with model, prompt, n and size, the image back as b64_json. The paper's code reached its
    newer API models this way (new_gen_image.py, base URL from OPENAI_BASE_URL)."""

    adapter, provider = "openai_compatible", "OpenAI-compatible endpoint"
    key_env = ("OPENAI_API_KEY", "API_KEY")

    def __init__(self, model: str, *, base_url: str | None, **kwargs):
        if not base_url:
            raise BenchmarkError(f"the {self.adapter!r} adapter has no default host: give the "
                                 "endpoint with --api-base-url (the paper's code read "
                                 "OPENAI_BASE_URL), e.g. https://proxy.example.com")
        base = base_url.rstrip("/")
        super().__init__(model, base_url=base[:-3] if base.endswith("/v1") else base, **kwargs)

    def _size(self, width: int, height: int) -> str:
        if width <= 0 or height <= 0:
            raise BenchmarkError(f"size {width}x{height} is not a valid image size")
        return f"{width}x{height}"

    def _request(self, prompt: str, params: dict) -> tuple[str, dict]:
        return "/v1/images/generations", {"model": self.model, "prompt": prompt, "n": 1,
                                          "size": params["size"],
                                          "response_format": "b64_json"}

    def _image(self, payload: dict) -> bytes:
        return self._decode(_b64_json(payload))


_CLASSES: dict[str, type[ImageAPI]] = {
    "openai": OpenAIImages, "gemini": GeminiImages, "seedream": SeedreamImages,
    "openai_compatible": OpenAICompatibleImages}


def api_client(adapter: str, model: str, *, base_url: str | None = None,
               api_key: str | None = None, requests_per_minute: float | None = None,
               max_retries: int = 6, timeout: float = 120, sleep=time.sleep,
               clock=time.monotonic, options: dict | None = None) -> ImageAPI:
    """A client for ``model`` through ``adapter`` (one of ``ADAPTERS``).

    The key comes from ``api_key`` or the adapter's environment variable; a missing key is a
    BenchmarkError before any request. ``requests_per_minute`` caps requests (retries included)
    per rolling minute; ``sleep`` and ``clock`` are injectable so tests never wait.
    """
    if adapter not in _CLASSES:
        raise BenchmarkError(f"unknown API adapter {adapter!r}; valid adapters: "
                             f"{', '.join(ADAPTERS)}")
    if requests_per_minute is not None and not requests_per_minute > 0:
        raise BenchmarkError(f"requests_per_minute must be > 0 (or None for no limit), got "
                             f"{requests_per_minute!r}")
    if not isinstance(max_retries, int) or max_retries < 0:
        raise BenchmarkError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    if not timeout > 0:
        raise BenchmarkError(f"timeout must be > 0 seconds, got {timeout!r}")
    return _CLASSES[adapter](model, base_url=base_url, api_key=api_key,
                             requests_per_minute=requests_per_minute, max_retries=max_retries,
                             timeout=timeout, sleep=sleep, clock=clock, options=options)


@functools.cache
def _ssl_context():
    # Loading the CA bundle takes ~0.1 s; one context serves every client.
    return httpx.create_ssl_context()


def _listed_size(model: str, width: int, height: int, valid: tuple[str, ...]) -> str:
    size = f"{width}x{height}"
    if size not in valid:
        raise BenchmarkError(f"size {size} is not supported by {model!r}; valid sizes: "
                             f"{', '.join(valid)}")
    return size


def _obj(value: object) -> dict:
    """``value`` if it is a JSON object, else an empty one: answers are parsed by shape."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _b64_json(payload: dict) -> object:
    """The first image of an OpenAI-style response: {"data": [{"b64_json": ...}]}."""
    data = payload.get("data")
    first = data[0] if isinstance(data, list) and data else None
    return first.get("b64_json") if isinstance(first, dict) else None


def _is_refusal(code: str | None) -> bool:
    # OpenAI: content_policy_violation (DALL-E), moderation_blocked (gpt-image);
    # ModelArk: InputTextSensitiveContentDetected, OutputImageSensitiveContentDetected, ...
    return bool(code) and (code in ("content_policy_violation", "moderation_blocked")
                           or "SensitiveContentDetected" in code)


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds, or an HTTP date); None when absent or
    unreadable."""
    text = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def _backoff(attempt: int) -> float:
    # Exponential with jitter in [half, full] so parallel workers don't retry in lockstep.
    full = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    return full * random.uniform(0.5, 1.0)

"""The image-API adapters against a local stub of each provider, over real HTTP on loopback."""

from __future__ import annotations

import base64
import logging
import socket

import pytest

import imageattributionbench as iab
from api_stub import PNG, ApiStub, Reply, gemini_image_blocked, gemini_prompt_blocked
from generation.api import ImageAPIError, PromptRefused, api_client

KEYS = {"OPENAI_API_KEY": "sk-test-openai", "GEMINI_API_KEY": "gm-test-gemini",
        "ARK_API_KEY": "ark-test-seedream"}
# adapter, model, a supported size: one per model the registry sends to an API, and more.
CASES = {
    "dall-e-3": ("openai", "dall-e-3", (1792, 1024)),
    "gpt-image-1": ("openai", "gpt-image-1", (1536, 1024)),
    "gemini": ("gemini", "gemini-2.5-flash-image", (1024, 1024)),
    "seedream": ("seedream", "seedream-4-0-250828", (2048, 2048)),
}


class FakeTime:
    """An injected clock and sleep: sleeping records the seconds and moves the clock on."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def keys(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


@pytest.fixture
def stub():
    with ApiStub() as s:
        yield s


@pytest.fixture
def fake():
    return FakeTime()


@pytest.fixture
def make(stub, fake):
    """A client for a CASES entry pointed at the stub, with fake time; closed after the test."""
    made = []

    def _make(case: str, **kwargs):
        adapter, model, _ = CASES[case]
        kwargs.setdefault("base_url", stub.url)
        client = api_client(adapter, model, sleep=fake.sleep, clock=fake.clock, **kwargs)
        made.append(client)
        return client

    yield _make
    for client in made:
        client.close()


def gen(client, case: str, seed: int | None = 7) -> bytes:
    w, h = CASES[case][2]
    return client.generate("a red bicycle", seed=seed, width=w, height=h)


# --- the documented request and response -----------------------------------------------------

def test_openai_dalle3_request_and_bytes(stub, make):
    client = make("dall-e-3")
    assert gen(client, "dall-e-3") == PNG
    (req,) = stub.requests
    assert req.path == "/v1/images/generations"
    assert req.headers["authorization"] == "Bearer sk-test-openai"
    assert req.body == {"model": "dall-e-3", "prompt": "a red bicycle", "n": 1,
                        "size": "1792x1024", "response_format": "b64_json"}
    assert client.request_params(seed=7, width=1792, height=1024) == {
        "adapter": "openai", "model": "dall-e-3", "size": "1792x1024", "seed": None}


def test_openai_gpt_image_1_sends_no_response_format(stub, make):
    client = make("gpt-image-1")
    assert gen(client, "gpt-image-1") == PNG
    (req,) = stub.requests
    assert req.path == "/v1/images/generations"
    assert req.headers["authorization"] == "Bearer sk-test-openai"
    assert req.body == {"model": "gpt-image-1", "prompt": "a red bicycle", "n": 1,
                        "size": "1536x1024"}


def test_gemini_request_and_bytes(stub, make):
    client = make("gemini")
    assert gen(client, "gemini", seed=7) == PNG
    (req,) = stub.requests
    assert req.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert req.headers["x-goog-api-key"] == "gm-test-gemini"
    assert "authorization" not in req.headers
    assert req.body == {"contents": [{"parts": [{"text": "a red bicycle"}]}],
                        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                                             "seed": 7}}
    assert client.request_params(seed=7, width=1024, height=1024) == {
        "adapter": "gemini", "model": "gemini-2.5-flash-image", "size": None, "seed": 7}


def test_seedream_request_and_bytes(stub, make):
    client = make("seedream")
    assert gen(client, "seedream", seed=7) == PNG
    (req,) = stub.requests
    assert req.path == "/api/v3/images/generations"
    assert req.headers["authorization"] == "Bearer ark-test-seedream"
    assert req.body == {"model": "seedream-4-0-250828", "prompt": "a red bicycle",
                        "size": "2048x2048", "response_format": "b64_json", "seed": 7,
                        "watermark": False}


@pytest.mark.parametrize("case", ["gemini", "seedream"])
def test_no_seed_sent_when_none(stub, make, case):
    gen(make(case), case, seed=None)
    body = stub.requests[0].body
    assert "seed" not in body and "seed" not in body.get("generationConfig", {})


def test_bytes_are_returned_untouched(make):
    # Not a PNG at all: a re-encoding client would fail or change these bytes.
    odd = b"\xff\xd8\xff\xe0 not really a jpeg \x00\x01"
    with ApiStub(image=odd) as other:
        for case in CASES:
            assert gen(make(case, base_url=other.url), case) == odd


def test_gemini_key_falls_back_to_google_api_key(stub, make, monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", "google-fallback")
    gen(make("gemini"), "gemini")
    assert stub.requests[0].headers["x-goog-api-key"] == "google-fallback"


def test_explicit_key_wins_over_environment(stub, make):
    gen(make("dall-e-3", api_key="sk-explicit"), "dall-e-3")
    assert stub.requests[0].headers["authorization"] == "Bearer sk-explicit"


def test_registry_api_generators_all_have_a_client():
    api_gens = [g for g in iab.GENERATORS if g.runs == "api"]
    assert {g.api for g in api_gens} == {"openai", "gemini", "seedream"}
    for g in api_gens:
        with api_client(g.api, g.api_model, api_key="k") as client:
            assert (client.adapter, client.model) == (g.api, g.api_model)


# --- retries ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_429_retries_honouring_retry_after(stub, make, fake, case):
    stub.fail(429, retry_after=2)
    assert gen(make(case), case) == PNG
    assert len(stub.requests) == 2
    assert stub.requests[0].body == stub.requests[1].body
    assert fake.sleeps == [pytest.approx(2.0)]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_transient_5xx_then_success(stub, make, fake, status):
    stub.fail(status, times=2)
    assert gen(make("seedream"), "seedream") == PNG
    assert len(stub.requests) == 3
    # Exponential backoff with jitter: attempt k waits within [2**(k-1) / 2, 2**(k-1)] s.
    assert len(fake.sleeps) == 2
    assert 0.5 <= fake.sleeps[0] <= 1.0 and 1.0 <= fake.sleeps[1] <= 2.0


@pytest.mark.parametrize("case", ["dall-e-3", "gemini"])
def test_500s_until_max_retries_give_a_clear_error(stub, make, fake, case):
    stub.fail(500, times=10, error="the server had an error")
    with pytest.raises(ImageAPIError, match="after 4 attempts") as info:
        gen(make(case, max_retries=3), case)
    assert "HTTP 500" in str(info.value) and "the server had an error" in str(info.value)
    assert info.value.status == 500
    assert len(stub.requests) == 4
    assert len(fake.sleeps) == 3
    for k, s in enumerate(fake.sleeps):
        assert 2 ** k / 2 <= s <= 2 ** k


@pytest.mark.parametrize("case", list(CASES))
def test_400_fails_at_once_with_provider_message(stub, make, fake, case):
    stub.fail(400, error="Invalid value for 'size': bogus.", times=3)
    with pytest.raises(ImageAPIError, match="Invalid value for 'size': bogus.") as info:
        gen(make(case), case)
    assert not isinstance(info.value, PromptRefused)
    assert info.value.status == 400
    assert len(stub.requests) == 1
    assert fake.sleeps == []


def test_openai_content_policy_is_a_refusal(stub, make):
    stub.fail(400, error="Your request was rejected by the safety system.",
              code="content_policy_violation")
    with pytest.raises(PromptRefused, match="safety system"):
        gen(make("dall-e-3"), "dall-e-3")
    assert len(stub.requests) == 1


def test_connection_refused_is_retried_then_reported(make, fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound but not listening: refused
        with pytest.raises(ImageAPIError, match=r"after 3 attempts.*ConnectError"):
            gen(make("gpt-image-1", base_url=dead, max_retries=2), "gpt-image-1")
    assert len(fake.sleeps) == 2


def test_timeout_is_retried(stub, make, fake):
    stub.script(Reply(delay=1.0))
    assert gen(make("gemini", timeout=0.2), "gemini") == PNG
    assert len(stub.requests) == 2
    assert len(fake.sleeps) == 1


# --- refused before any request -------------------------------------------------------------

@pytest.mark.parametrize("case, env", [("dall-e-3", "OPENAI_API_KEY"),
                                       ("gpt-image-1", "OPENAI_API_KEY"),
                                       ("gemini", "GEMINI_API_KEY"),
                                       ("seedream", "ARK_API_KEY")])
def test_missing_key_names_the_variable(stub, make, monkeypatch, case, env):
    for name in KEYS:
        monkeypatch.delenv(name)
    with pytest.raises(iab.BenchmarkError, match=env):
        make(case)
    assert stub.requests == []


def test_missing_gemini_key_mentions_the_fallback(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY")
    with pytest.raises(iab.BenchmarkError, match="GEMINI_API_KEY.*GOOGLE_API_KEY"):
        api_client("gemini", "gemini-2.5-flash-image")


@pytest.mark.parametrize("case, size, valid", [
    ("dall-e-3", (512, 512), "1024x1024, 1792x1024, 1024x1792"),
    ("gpt-image-1", (1792, 1024), "1024x1024, 1536x1024, 1024x1536"),
    ("gemini", (512, 512), "1024x1024"),
    ("seedream", (512, 512), "1280x720 <= W\\*H <= 4096x4096"),
    ("seedream", (8192, 400), "aspect ratio"),
])
def test_unsupported_size_lists_the_valid_ones(stub, make, case, size, valid):
    client = make(case)
    with pytest.raises(iab.BenchmarkError, match=valid):
        client.generate("p", seed=1, width=size[0], height=size[1])
    assert stub.requests == []


def test_unknown_adapter_and_model_list_the_valid_ones():
    with pytest.raises(iab.BenchmarkError, match="openai, gemini, seedream"):
        api_client("midjourney", "v6", api_key="k")
    with pytest.raises(iab.BenchmarkError, match="dall-e-3, gpt-image-1"):
        api_client("openai", "dall-e-4", api_key="k")


# --- Gemini refusals --------------------------------------------------------------------------

@pytest.mark.parametrize("body, reason", [
    (gemini_prompt_blocked("SAFETY"), "blockReason=SAFETY"),
    (gemini_image_blocked("IMAGE_SAFETY", "I can't make that image."), "finishReason=IMAGE_SAFETY"),
    (gemini_image_blocked("SAFETY"), "finishReason=SAFETY"),
])
def test_gemini_safety_block_says_refused(stub, make, fake, body, reason):
    stub.script(Reply(body=body))
    with pytest.raises(PromptRefused, match="refused") as info:
        gen(make("gemini"), "gemini")
    assert reason in str(info.value)
    assert len(stub.requests) == 1 and fake.sleeps == []


def test_gemini_skips_thought_images(stub, make):
    draft = base64.b64encode(b"draft image").decode()
    final = base64.b64encode(PNG).decode()
    stub.script(Reply(body={"candidates": [{"finishReason": "STOP", "content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": draft}, "thought": True},
        {"text": "Here it is."},
        {"inlineData": {"mimeType": "image/png", "data": final}}]}}]}))
    assert gen(make("gemini"), "gemini") == PNG


# --- rate limit -------------------------------------------------------------------------------

def test_rate_limit_sleeps_until_the_minute_rolls(stub, make, fake):
    client = make("dall-e-3", requests_per_minute=2)
    gen(client, "dall-e-3")
    gen(client, "dall-e-3")
    assert fake.sleeps == []
    gen(client, "dall-e-3")
    assert fake.sleeps == [pytest.approx(60.0)]
    gen(client, "dall-e-3")  # the window now holds one request: room for another
    assert len(fake.sleeps) == 1
    gen(client, "dall-e-3")
    assert fake.sleeps == [pytest.approx(60.0)] * 2
    assert len(stub.requests) == 5


def test_rate_limit_window_is_rolling(stub, make, fake):
    client = make("seedream", requests_per_minute=2)
    gen(client, "seedream")
    fake.now += 45
    gen(client, "seedream")
    gen(client, "seedream")  # the first request leaves the window 15 s from now
    assert fake.sleeps == [pytest.approx(15.0)]


def test_retries_count_against_the_rate_limit(stub, make, fake):
    stub.fail(503, retry_after=0)
    client = make("gemini", requests_per_minute=2)
    gen(client, "gemini")
    gen(client, "gemini")
    assert fake.sleeps == [0, pytest.approx(60.0)]


# --- secrets --------------------------------------------------------------------------------

def test_key_never_in_errors_or_logs(stub, make, caplog):
    key = KEYS["OPENAI_API_KEY"]
    caplog.set_level(logging.DEBUG)
    stub.fail(500, error=f"upstream saw key {key}")
    stub.fail(401, error=f"Incorrect API key provided: {key}.")
    client = make("gpt-image-1")
    with pytest.raises(ImageAPIError) as info:
        gen(client, "gpt-image-1")
    assert "Incorrect API key provided" in str(info.value)
    assert key not in str(info.value) and key not in repr(client)
    assert "upstream saw key" in caplog.text and key not in caplog.text


# --- answers of the wrong shape, long Retry-After ---------------------------------------------

@pytest.mark.parametrize("case, body, message", [
    ("dall-e-3", [1, 2, 3], "JSON that is not an object"),
    ("dall-e-3", "just a string", "JSON that is not an object"),
    ("dall-e-3", {"data": [1]}, "no image data"),
    ("seedream", {"data": [{"b64_json": 5}]}, "no image data"),
    ("gpt-image-1", {"data": [{"b64_json": "%%%"}]}, "not base64"),
    ("gemini", {"candidates": ["x"]}, "no image part"),
    ("gemini", {"candidates": [{"content": {"parts": ["x", {"inlineData": "y"}]}}]},
     "no image part"),
    ("gemini", {"candidates": [{"content": {"parts": [{"inlineData": {
        "mimeType": "image/png", "data": ["not", "text"]}}]}}]}, "no image data"),
    ("gemini", {"candidates": {"content": 1}, "promptFeedback": [1]}, "no image part"),
])
def test_an_answer_of_the_wrong_shape_is_an_api_error(stub, make, case, body, message):
    stub.script(Reply(body=body))
    with pytest.raises(ImageAPIError, match=message):
        gen(make(case), case)


def test_a_retry_after_over_the_cap_fails_at_once(stub, make, fake):
    stub.fail(429, retry_after=86400, error="daily quota exceeded")
    with pytest.raises(ImageAPIError, match=r"daily quota exceeded; it asks to retry after "
                                            r"86400 s, longer than the 120 s") as info:
        gen(make("dall-e-3"), "dall-e-3")
    assert info.value.status == 429 and fake.sleeps == [] and len(stub.requests) == 1


def test_a_retry_after_http_date_is_honoured(stub, make, fake):
    from email.utils import format_datetime
    from datetime import datetime, timedelta, timezone

    when = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    stub.script(Reply(429, error="slow down", headers={"Retry-After": when}))
    assert gen(make("gemini"), "gemini") == PNG
    assert len(fake.sleeps) == 1 and 20 <= fake.sleeps[0] <= 30

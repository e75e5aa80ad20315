"""A local stand-in for the image APIs: OpenAI Images, Gemini generateContent, ModelArk Seedream.

``ApiStub`` serves on a free 127.0.0.1 port in a background thread, answers each provider's
endpoint in that provider's documented format with a real PNG, records every request, and can be
scripted to fail::

    with ApiStub() as stub:
        stub.script(Reply(429, retry_after=2), Reply(400, error="bad prompt"))
        ...  # point a client at stub.url, then look at stub.requests
"""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image


def _png() -> bytes:
    img = Image.new("RGB", (8, 8))
    img.putdata([(x * 32, y * 32, 128) for y in range(8) for x in range(8)])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


PNG = _png()

GEMINI_PATH = re.compile(r"/v1beta/models/(?P<model>[^/:]+):generateContent")
# What the real APIs put in their error bodies' status/type fields, by HTTP status.
_GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                  503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass
class Recorded:
    """One request as the stub saw it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: object


@dataclass
class Reply:
    """A scripted answer. ``error`` makes a provider-format error body; ``body`` replaces the
    whole JSON body; neither gives the provider's normal image response."""

    status: int = 200
    error: str | None = None
    code: str | None = None
    body: object = None
    retry_after: float | None = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


def gemini_prompt_blocked(reason: str = "SAFETY") -> dict:
    """A Gemini answer for a prompt blocked before generation: no candidates."""
    return {"promptFeedback": {"blockReason": reason, "safetyRatings": [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]}}


def gemini_image_blocked(reason: str = "IMAGE_SAFETY", text: str | None = None) -> dict:
    """A Gemini answer whose candidate stopped for safety: no image part."""
    candidate: dict = {"finishReason": reason, "index": 0}
    if text:
        candidate["content"] = {"role": "model", "parts": [{"text": text}]}
    return {"candidates": [candidate]}


class ApiStub:
    """The three providers' endpoints on ``url``; ``requests`` lists what arrived, in order."""

    def __init__(self, image: bytes = PNG):
        self.image = image
        self.requests: list[Recorded] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # A short poll interval so shutdown() in each test's teardown takes milliseconds.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,),
                                        daemon=True)
        self._thread.start()

    def __enter__(self) -> ApiStub:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order; after them, the normal image answer."""
        with self._lock:
            self._replies.extend(replies)

    def fail(self, status: int, times: int = 1, **kwargs) -> None:
        """The next ``times`` requests get ``status`` (with a provider-format error body)."""
        kwargs.setdefault("error", f"stub error {status}")
        self.script(*(Reply(status, **kwargs) for _ in range(times)))

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self._replies.popleft() if self._replies else Reply()

    # -- the providers' formats ----------------------------------------------------------------

    def success(self, provider: str, body: dict) -> dict:
        b64 = base64.b64encode(self.image).decode("ascii")
        created = int(time.time())
        if provider == "openai":
            item = {"b64_json": b64}
            if str(body.get("model", "")).startswith("dall-e-3"):
                item["revised_prompt"] = body.get("prompt")
            return {"created": created, "data": [item]}
        if provider == "seedream":
            return {"model": body.get("model"), "created": created,
                    "data": [{"b64_json": b64, "size": body.get("size")}],
                    "usage": {"generated_images": 1, "output_tokens": 4096,
                              "total_tokens": 4096}}
        return {"candidates": [{"content": {"role": "model", "parts": [
                    {"text": "Here is the image you asked for."},
                    {"inlineData": {"mimeType": "image/png", "data": b64}}]},
                    "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1290},
                "modelVersion": "stub"}

    @staticmethod
    def error_body(provider: str, status: int, message: str, code: str | None) -> dict:
        if provider == "gemini":
            return {"error": {"code": status, "message": message,
                              "status": code or _GEMINI_STATUS.get(status, "UNKNOWN")}}
        if provider == "seedream":
            return {"error": {"code": code or "InvalidParameter", "message": message,
                              "param": "", "type": "BadRequest"}}
        return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": code}}


def _provider(path: str) -> str | None:
    if path == "/v1/images/generations":
        return "openai"
    if path == "/api/v3/images/generations":
        return "seedream"
    return "gemini" if GEMINI_PATH.fullmatch(path) else None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY each keep-alive
    # request waits ~40 ms on delayed ACKs.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        stub: ApiStub = self.server.stub
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        request = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                           body)
        reply = stub._next(request)
        provider = _provider(self.path)
        if reply.delay:
            time.sleep(reply.delay)
        if provider is None:
            self._send(404, {"error": {"message": f"no route for {self.path}"}}, {})
            return
        status, out = reply.status, reply.body
        if out is None and reply.error is not None:
            out = stub.error_body(provider, status, reply.error, reply.code)
        elif out is None:
            out = stub.success(provider, body if isinstance(body, dict) else {})
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers["Retry-After"] = f"{reply.retry_after:g}"
        self._send(status, out, headers)

    def _send(self, status: int, payload: object, headers: dict[str, str]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left: that is what a delayed reply tests

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's signature)
        pass  # keep pytest output clean

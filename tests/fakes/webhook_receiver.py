"""A local receiver of outbound webhooks: an HTTP server on loopback that verifies every request with the
``standardwebhooks`` library (as an integrator would), records it, and answers with the next queued
status (200 when none is queued)."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    verified: bool
    payload: Any = None


@dataclass
class WebhookReceiver:
    secret: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: deque[int] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        return f"http://{host}:{port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload, verified = None, False
                if receiver.secret:
                    try:
                        payload = Webhook(receiver.secret).verify(body, headers)
                        verified = True
                    except WebhookVerificationError:
                        verified = False
                with receiver._lock:
                    status = receiver.answers.popleft() if receiver.answers else 200
                    receiver.requests.append(Received(headers, body, status, verified, payload))
                out = b'{"ok": true}' if status < 300 else b'{"error": "receiver says no"}'
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def payloads(self) -> list[Any]:
        return [json.loads(r.body) for r in self.requests]

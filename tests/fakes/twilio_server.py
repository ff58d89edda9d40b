"""A local fake of Twilio's REST API (Messages) that the real ``twilio`` SDK talks to.

It checks HTTP Basic auth, answers like Twilio (201 with a message resource, or Twilio's error JSON),
and, like Twilio, later POSTs signed status callbacks (sent, then delivered) to the message's
StatusCallback URL. Tests steer failures by destination number or by queueing HTTP errors.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.request_validator import RequestValidator

INVALID_NUMBER = "+15005550001"  # Twilio's magic test number for "invalid To"
OPTED_OUT_NUMBER = "+15005550009"
UNDELIVERABLE_NUMBER = "+15005550004"  # accepted, then "undelivered" with 30003

PERMANENT = {
    INVALID_NUMBER: (21211, "The 'To' number is not a valid phone number."),
    OPTED_OUT_NUMBER: (21610, "Attempt to send to unsubscribed recipient"),
}


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    callback_delay: float = 0.05
    messages: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    send_callbacks: bool = False  # on in end-to-end tests, where a live server can take them
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle
    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                self._json(404, {"code": 20404, "message": "not found", "status": 404})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.callbacks.clear()
            self.fail_next.clear()
            self.send_callbacks = False

    # -- API
    def _handle(self, h: Any) -> None:
        path = urllib.parse.urlparse(h.path).path
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            h._json(401, {"code": 20003, "message": "Authenticate", "more_info": "", "status": 401})
            return
        if path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            h._json(404, {"code": 20404, "message": f"{path} not found", "status": 404})
            return
        length = int(h.headers.get("Content-Length") or 0)
        form = {
            k: v[-1]
            for k, v in urllib.parse.parse_qs(h.rfile.read(length).decode(), keep_blank_values=True).items()
        }
        with self._lock:
            injected = self.fail_next.pop(0) if self.fail_next else None
        if injected is not None:
            code = 20429 if injected == 429 else 20500
            h._json(
                injected,
                {
                    "code": code,
                    "message": "Too Many Requests" if injected == 429 else "Internal error",
                    "more_info": "",
                    "status": injected,
                },
            )
            self.messages.append({"rejected": injected, **form})
            return
        if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")):
            h._json(400, {"code": 21604, "message": "A 'To' and a 'From' are required", "status": 400})
            return
        if form["To"] in PERMANENT:
            code, message = PERMANENT[form["To"]]
            h._json(400, {"code": code, "message": message, "more_info": "", "status": 400})
            self.messages.append({"rejected": code, **form})
            return
        sid = "SM" + secrets.token_hex(16)
        body = form.get("Body", "")
        resource = {
            "sid": sid,
            "account_sid": self.account_sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": body,
            "status": "queued" if not form.get("MessagingServiceSid") else "accepted",
            "num_segments": str(max(1, -(-len(body) // 160))),
            "num_media": "0",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
        }
        self.messages.append({"sid": sid, **form})
        h._json(201, resource)
        if self.send_callbacks and form.get("StatusCallback"):
            final = "undelivered" if form["To"] == UNDELIVERABLE_NUMBER else "delivered"
            threading.Thread(target=self._callbacks, args=(form, sid, final), daemon=True).start()

    def _callbacks(self, form: dict[str, str], sid: str, final: str) -> None:
        for status in ("sent", final):
            time.sleep(self.callback_delay)
            params = {
                "ApiVersion": "2010-04-01",
                "MessageStatus": status,
                "SmsStatus": status,
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": self.account_sid,
                "From": form.get("From", ""),
                "To": form["To"],
            }
            if status in ("delivered", "undelivered"):
                params["RawDlrDoneDate"] = time.strftime("%y%m%d%H%M", time.gmtime())
            if status == "undelivered":
                params["ErrorCode"] = "30003"
            self.post_signed(form["StatusCallback"], params)

    def post_signed(self, url: str, params: dict[str, str]) -> int:
        """POST a form to ``url`` signed the way Twilio signs webhooks; returns the HTTP status."""
        status = post_twilio_webhook(url, params, self.auth_token)
        self.callbacks.append((url, params, status))
        return status


def twilio_signature(url: str, params: dict[str, str], auth_token: str) -> str:
    return RequestValidator(auth_token).compute_signature(url, params)


def post_twilio_webhook(
    url: str, params: dict[str, str], auth_token: str, signature: str | None = None
) -> int:
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("X-Twilio-Signature", signature or twilio_signature(url, params, auth_token))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)

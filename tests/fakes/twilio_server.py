"""A local fake of Twilio's REST API (Messages, Calls, Media, Recordings) that the real ``twilio`` SDK
talks to, and of Twilio's voice engine for inbound calls.

It checks HTTP Basic auth, answers like Twilio (201 with a message or call resource, or Twilio's error
JSON), and, like Twilio, later POSTs signed status callbacks to the resource's StatusCallback URL
(messages: sent, then delivered; calls: initiated, ringing, answered, completed, and the same for a
``<Dial><Number statusCallback>`` leg). Media and recordings are served behind Basic auth.
:meth:`FakeTwilio.inbound_call` plays a caller: it requests the Voice URL and executes the TwiML it
gets back (Say, Gather, Dial, Record, Hangup), posting every request Twilio would, signed.
Tests steer failures by destination number or by queueing HTTP errors.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from twilio.request_validator import RequestValidator

INVALID_NUMBER = "+15005550001"  # Twilio's magic test number for "invalid To"
OPTED_OUT_NUMBER = "+15005550009"
UNDELIVERABLE_NUMBER = "+15005550004"  # accepted, then "undelivered" with 30003
BUSY_NUMBER = "+15005550005"  # calls to it end "busy"
NO_ANSWER_NUMBER = "+15005550007"  # calls to it end "no-answer"
# Bytes served for media and recordings: small, recognisable.
FAKE_JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42fake-mp4"
FAKE_MP3 = b"ID3\x03\x00fake-mp3-voicemail"

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
    calls: list[dict[str, Any]] = field(default_factory=list)
    callbacks: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    media_requests: list[tuple[str, bool]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    # Numbers starting with this are refused as invalid (21211), like INVALID_NUMBER (error-rate tests).
    invalid_prefix: str = ""
    # Seconds to wait before answering the next Messages requests (after accepting them, callbacks
    # included): a client timeout then leaves the sender unsure whether the message went out.
    stall_next: list[float] = field(default_factory=list)
    call_duration: int = 42
    send_callbacks: bool = False  # on in end-to-end tests, where a live server can take them
    # A slow provider: seconds between accepting a message (it exists at Twilio) and answering.
    response_delay: float = 0.0
    # A flaky provider: this share of message requests answered 429 or 503 with ``Retry-After``.
    fail_rate: float = 0.0
    retry_after: str = "1"
    # Accepted message resources by sid, as the Messages list (GET) returns them.
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    list_requests: list[dict[str, str]] = field(default_factory=list)
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
                fake._serve_media(self)

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
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
            self.calls.clear()
            self.media_requests.clear()
            self.callbacks.clear()
            self.fail_next.clear()
            self.invalid_prefix = ""
            self.resources.clear()
            self.list_requests.clear()
            self.stall_next.clear()
            self.send_callbacks = False
            self.response_delay = 0.0
            self.fail_rate = 0.0
            self.retry_after = "1"

    # -- API
    def _handle(self, h: Any) -> None:
        path = urllib.parse.urlparse(h.path).path
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if h.headers.get("Authorization") != expected:
            h._json(401, {"code": 20003, "message": "Authenticate", "more_info": "", "status": 401})
            return
        length = int(h.headers.get("Content-Length") or 0)
        multi = urllib.parse.parse_qs(h.rfile.read(length).decode(), keep_blank_values=True)
        form: dict[str, Any] = {k: v[-1] for k, v in multi.items()}
        if path == f"/2010-04-01/Accounts/{self.account_sid}/Calls.json":
            self._create_call(h, form, multi)
            return
        if path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            h._json(404, {"code": 20404, "message": f"{path} not found", "status": 404})
            return
        if "MediaUrl" in multi:
            form["MediaUrl"] = multi["MediaUrl"]
        with self._lock:
            injected = self.fail_next.pop(0) if self.fail_next else None
            if injected is None and self.fail_rate and random.random() < self.fail_rate:
                injected = random.choice((429, 503))
        if injected is not None:
            code = 20429 if injected == 429 else 20500
            # Like Twilio's edge, a 429 or 503 says when to come back (RFC 9110 Retry-After, seconds).
            headers = {"Retry-After": self.retry_after} if self.fail_rate and injected in (429, 503) else {}
            self.messages.append({"rejected": injected, "at": time.monotonic(), **form})
            h._json(
                injected,
                {
                    "code": code,
                    "message": "Too Many Requests" if injected == 429 else "Internal error",
                    "more_info": "",
                    "status": injected,
                },
                headers,
            )
            return
        if not form.get("To") or not (form.get("From") or form.get("MessagingServiceSid")):
            h._json(400, {"code": 21604, "message": "A 'To' and a 'From' are required", "status": 400})
            return
        if form["To"] in PERMANENT or (self.invalid_prefix and form["To"].startswith(self.invalid_prefix)):
            code, message = PERMANENT.get(form["To"], PERMANENT[INVALID_NUMBER])
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
            "num_segments": str(segment_count(body)),
            "num_media": str(len(multi.get("MediaUrl", []))),
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "price": None,
            "error_code": None,
            "error_message": None,
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "date_updated": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "date_sent": None,
        }
        # The message exists at Twilio from here on, whether or not the client hears the answer.
        with self._lock:
            self.resources[sid] = resource
            self.messages.append({"sid": sid, "at": time.monotonic(), **form})
            stall = self.stall_next.pop(0) if self.stall_next else 0.0
        if self.response_delay or stall:
            time.sleep(self.response_delay + stall)
        try:
            h._json(201, resource)
        except OSError:
            return  # the client is gone (a killed worker)
        if self.send_callbacks and form.get("StatusCallback"):
            final = "undelivered" if form["To"] == UNDELIVERABLE_NUMBER else "delivered"
            threading.Thread(target=self._callbacks, args=(form, sid, final), daemon=True).start()

    def _callbacks(self, form: dict[str, str], sid: str, final: str) -> None:
        for status in ("sent", final):
            time.sleep(self.callback_delay)
            with self._lock:
                resource = self.resources.get(sid)
                if resource is not None:
                    resource["status"] = status
                    if status == "sent":
                        resource["date_sent"] = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
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

    # -- the Messages list (GET Messages.json): filtered by To, From and DateSent, newest first
    def _list_messages(self, h: Any, query: dict[str, str]) -> None:
        self.list_requests.append(query)
        with self._lock:
            found = [
                r
                for r in self.resources.values()
                if (not query.get("To") or r["to"] == query["To"])
                and (not query.get("From") or r["from"] == query["From"])
            ]
        # DateSent filters compare the day (Twilio's documented YYYY-MM-DD granularity); a message not
        # sent yet has no DateSent and no DateSent filter matches it.
        for key, keep in (("DateSent>", lambda d, q: d >= q), ("DateSent<", lambda d, q: d <= q)):
            if query.get(key):
                day = query[key][:10]
                found = [r for r in found if r["date_sent"] and keep(_rfc2822_day(r["date_sent"]), day)]
        found.reverse()  # newest first, as Twilio lists them
        size = min(int(query.get("PageSize") or 50), 1000)
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        h._json(
            200,
            {
                "messages": found[:size],
                "end": min(len(found), size) - 1,
                "first_page_uri": f"{base}?PageSize={size}&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{base}?PageSize={size}&Page=0",
            },
        )

    # -- media and recordings (GET, behind Basic auth like Twilio's)
    def _serve_media(self, h: Any) -> None:
        parsed = urllib.parse.urlparse(h.path)
        path = parsed.path
        if path == f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            if h.headers.get("Authorization") != expected:
                h._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            self._list_messages(h, dict(urllib.parse.parse_qsl(parsed.query)))
            return
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        authorized = h.headers.get("Authorization") == expected
        self.media_requests.append((path, authorized))
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/"
        if not path.startswith(prefix) or not ("/Media/" in path or "/Recordings/" in path):
            h._json(404, {"code": 20404, "message": f"{path} not found", "status": 404})
            return
        if not authorized:
            h._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return
        if "/Recordings/" in path:
            data, content_type = FAKE_MP3, "audio/mpeg"
        elif path.endswith("1"):
            data, content_type = FAKE_MP4, "video/mp4"
        else:
            data, content_type = FAKE_JPEG, "image/jpeg"
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def media_url(self, message_sid: str, n: int) -> str:
        return f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Messages/{message_sid}/Media/ME{n:031d}{n}"

    # -- calls (Calls API)
    def _create_call(self, h: Any, form: dict[str, str], multi: dict[str, list[str]]) -> None:
        if not form.get("To") or not form.get("From"):
            h._json(400, {"code": 21201, "message": "'To' and 'From' are required", "status": 400})
            return
        if bool(form.get("Url")) == bool(form.get("Twiml")):
            h._json(400, {"code": 21205, "message": "exactly one of Url and Twiml", "status": 400})
            return
        if form["To"] == INVALID_NUMBER:
            h._json(400, {"code": 21211, "message": "Invalid 'To' Phone Number", "status": 400})
            self.calls.append({"rejected": 21211, **form})
            return
        with self._lock:
            injected = self.fail_next.pop(0) if self.fail_next else None
        if injected is not None:
            h._json(
                injected,
                {"code": 20429 if injected == 429 else 20500, "message": "error", "status": injected},
            )
            self.calls.append({"rejected": injected, **form})
            return
        sid = "CA" + secrets.token_hex(16)
        self.calls.append({"sid": sid, **form, "StatusCallbackEvent": multi.get("StatusCallbackEvent", [])})
        h._json(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": form["To"],
                "from": form["From"],
                "status": "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{sid}.json",
            },
        )
        if self.send_callbacks and form.get("StatusCallback"):
            threading.Thread(target=self._call_callbacks, args=(form, sid), daemon=True).start()

    def _call_params(
        self, sid: str, status: str, frm: str, to: str, direction: str, **extra: str
    ) -> dict[str, str]:
        return {
            "CallSid": sid,
            "AccountSid": self.account_sid,
            "From": frm,
            "To": to,
            "Caller": frm,
            "Called": to,
            "CallStatus": status,
            "Direction": direction,
            "ApiVersion": "2010-04-01",
            **extra,
        }

    @staticmethod
    def _final_status(number: str) -> str:
        return {BUSY_NUMBER: "busy", NO_ANSWER_NUMBER: "no-answer"}.get(number, "completed")

    def _call_callbacks(self, form: dict[str, str], sid: str) -> None:
        """An outbound API call: the callee answers (unless busy/no-answer), the TwiML runs, it ends."""
        final = self._final_status(form["To"])
        url, to, frm = form["StatusCallback"], form["To"], form["From"]
        time.sleep(self.callback_delay)
        self.post_signed(url, self._call_params(sid, "initiated", frm, to, "outbound-api"))
        self.post_signed(url, self._call_params(sid, "ringing", frm, to, "outbound-api"))
        if final == "completed":
            self.post_signed(url, self._call_params(sid, "in-progress", frm, to, "outbound-api"))
            for number in ET.fromstring(form["Twiml"]).iter("Number"):  # noqa: S314 - TwiML we generated, in tests
                self._dial_leg(number, parent_sid=sid, caller=form["From"])
        extra = {"CallDuration": str(self.call_duration if final == "completed" else 0)}
        self.post_signed(url, self._call_params(sid, final, frm, to, "outbound-api", **extra))

    def _dial_leg(self, number: ET.Element, *, parent_sid: str, caller: str) -> str:
        """One ``<Number>`` of a ``<Dial>``: report its progress to its statusCallback; its final status."""
        to = (number.text or "").strip()
        final = self._final_status(to)
        callback = number.get("statusCallback")
        events = (number.get("statusCallbackEvent") or "completed").split()
        leg_sid = "CA" + secrets.token_hex(16)
        progress = [("initiated", "initiated"), ("ringing", "ringing")]
        if final == "completed":
            progress.append(("answered", "in-progress"))
        for event, status in [*progress, ("completed", final)]:
            if callback and event in events:
                extra = {"ParentCallSid": parent_sid}
                if event == "completed":
                    extra["CallDuration"] = str(self.call_duration if final == "completed" else 0)
                self.post_signed(
                    callback, self._call_params(leg_sid, status, caller, to, "outbound-dial", **extra)
                )
        return final

    def inbound_call(
        self,
        voice_url: str,
        *,
        caller: str,
        called: str,
        status_callback: str = "",
        digits: str = "",
        transcript: str = "",
        recording_seconds: int = 12,
    ) -> str:
        """Play a caller dialling ``called``: run the TwiML of ``voice_url`` as Twilio would, then
        report the call's end to ``status_callback`` (the number's status URL). Returns the CallSid."""
        sid = "CA" + secrets.token_hex(16)
        base = self._call_params(sid, "ringing", caller, called, "inbound")
        twiml = self._fetch_twiml(voice_url, base)
        base["CallStatus"] = "in-progress"
        for _ in range(10):  # each TwiML document may hand over to another (an action URL)
            next_doc: tuple[str, dict[str, str]] | None = None
            for verb in list(twiml):
                if verb.tag == "Gather":
                    if digits:
                        next_doc = (verb.get("action", voice_url), {**base, "Digits": digits})
                        break
                elif verb.tag == "Dial":
                    results = [self._dial_leg(n, parent_sid=sid, caller=caller) for n in verb.iter("Number")]
                    answered = "completed" in results
                    dial = {"DialCallStatus": "completed" if answered else (results or ["no-answer"])[-1]}
                    if answered:
                        dial["DialCallDuration"] = str(self.call_duration)
                    if verb.get("action"):
                        next_doc = (verb.get("action", ""), {**base, **dial})
                    break
                elif verb.tag == "Record":
                    next_doc = self._record(verb, base, recording_seconds, transcript)
                    break
                elif verb.tag == "Hangup":
                    break
            if next_doc is None:
                break
            twiml = self._fetch_twiml(*next_doc)
        if status_callback:
            self.post_signed(
                status_callback, {**base, "CallStatus": "completed", "CallDuration": str(self.call_duration)}
            )
        return sid

    def _record(
        self, verb: ET.Element, base: dict[str, str], seconds: int, transcript: str
    ) -> tuple[str, dict[str, str]] | None:
        recording_sid = "RE" + secrets.token_hex(16)
        url = f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"
        recording = {"RecordingUrl": url, "RecordingDuration": str(seconds), "RecordingSid": recording_sid}
        callback = verb.get("recordingStatusCallback")
        if callback:
            self.post_signed(
                callback,
                {
                    "AccountSid": self.account_sid,
                    "CallSid": base["CallSid"],
                    "RecordingStatus": "completed",
                    "RecordingChannels": "1",
                    "RecordingSource": "RecordVerb",
                    **recording,
                },
            )
        if verb.get("transcribe") == "true" and verb.get("transcribeCallback"):
            self.post_signed(
                verb.get("transcribeCallback", ""),
                {
                    "AccountSid": self.account_sid,
                    "CallSid": base["CallSid"],
                    "TranscriptionSid": "TR" + secrets.token_hex(16),
                    "TranscriptionStatus": "completed",
                    "TranscriptionText": transcript,
                    "TranscriptionUrl": f"{url}/Transcriptions",
                    **recording,
                },
            )
        if verb.get("action"):
            return verb.get("action", ""), {**base, **recording, "Digits": "hangup"}
        return None

    def _fetch_twiml(self, url: str, params: dict[str, str]) -> ET.Element:
        status, body = post_twilio_webhook_for_body(url, params, self.auth_token)
        self.callbacks.append((url, params, status))
        if status != 200:
            raise AssertionError(f"voice webhook {url} answered {status}: {body[:300]!r}")
        return ET.fromstring(body)  # noqa: S314 - TwiML from the server under test

    def post_signed(self, url: str, params: dict[str, str]) -> int:
        """POST a form to ``url`` signed the way Twilio signs webhooks; returns the HTTP status."""
        status = post_twilio_webhook(url, params, self.auth_token)
        self.callbacks.append((url, params, status))
        return status


# GSM 03.38 basic set; the extension set costs two septets each (PROTOCOLS.md D).
_GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = "^{}\\[~]|€\f"


def segment_count(body: str) -> int:
    """Segments Twilio bills: GSM-7 160 (153 when split), else UCS-2 70 (67 when split) code units."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        units, single, multi = sum(2 if c in _GSM_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // multi)


def _rfc2822_day(value: str) -> str:
    from email.utils import parsedate_to_datetime

    return parsedate_to_datetime(value).strftime("%Y-%m-%d")


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


def post_twilio_webhook_for_body(url: str, params: dict[str, str], auth_token: str) -> tuple[int, bytes]:
    """Like :func:`post_twilio_webhook`, returning the status and the response body (TwiML)."""
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    req.add_header("X-Twilio-Signature", twilio_signature(url, params, auth_token))
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()

"""A local fake of SendGrid's v3 Mail Send that the real ``sendgrid`` SDK talks to.

It checks the Bearer key, validates the payload the way SendGrid does (400 with SendGrid's
``{"errors": [{"message", "field", "help"}]}`` on violations; PROTOCOLS.md H), answers 202 with an
``X-Message-Id`` header, can be told to answer 429/5xx next, and, like SendGrid, can later POST signed
Event Webhook batches (processed, delivered) to a configured URL, echoing custom args (the request's
merged with each personalization's) as top-level keys. It counts accepted requests and personalizations
(``requests``, ``personalizations``) and expands each personalization's substitutions (``mails()``).
Email Activity (``GET /v3/messages``) finds sent mail by custom arg and recipient.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}
BOUNCING_ADDRESS = "bounce@example.net"  # accepted, then a hard bounce event


def _error(message: str, field_name: str | None = None) -> dict[str, Any]:
    return {"message": message, "field": field_name, "help": None}


def _valid_email(value: Any) -> bool:
    return isinstance(value, str) and value.count("@") == 1 and "." in value.rpartition("@")[2]


def mail_send_errors(payload: Any) -> list[dict[str, Any]]:
    """SendGrid's checks on a v3 mail/send body, as far as the docs describe them."""
    if not isinstance(payload, dict):
        return [_error("Bad Request")]
    errors = []
    sender = payload.get("from")
    if not isinstance(sender, dict) or not _valid_email(sender.get("email")):
        errors.append(_error("The from object must be provided for every email send.", "from"))
    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        errors.append(
            _error(
                "The personalizations field is required and must have at least one personalization.",
                "personalizations",
            )
        )
        personalizations = []
    total = 0
    for n, p in enumerate(personalizations):
        if not isinstance(p, dict) or not isinstance(p.get("to"), list) or not p["to"]:
            errors.append(
                _error(
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    f"personalizations.{n}.to",
                )
            )
            continue
        seen: set[str] = set()
        for kind in ("to", "cc", "bcc"):
            for m, recipient in enumerate(p.get(kind) or []):
                total += 1
                address = str(recipient.get("email") or "") if isinstance(recipient, dict) else ""
                if not _valid_email(address):
                    errors.append(
                        _error("Does not contain a valid address.", f"personalizations.{n}.{kind}.{m}.email")
                    )
                elif address.lower() in seen:
                    errors.append(
                        _error(
                            "Each email address in the personalization block should be unique "
                            "between to, cc, and bcc.",
                            f"personalizations.{n}.{kind}",
                        )
                    )
                else:
                    seen.add(address.lower())
        substitutions = p.get("substitutions") or {}
        if not isinstance(substitutions, dict) or not all(isinstance(v, str) for v in substitutions.values()):
            errors.append(_error("Substitutions must be strings.", f"personalizations.{n}.substitutions"))
        elif sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items()) > 10_000:
            errors.append(
                _error(
                    "The total size of substitutions may not exceed 10,000 bytes per personalization.",
                    f"personalizations.{n}.substitutions",
                )
            )
        p_args = p.get("custom_args") or {}
        if not isinstance(p_args, dict) or not all(isinstance(v, str) for v in p_args.values()):
            errors.append(_error("Custom args values must be strings.", f"personalizations.{n}.custom_args"))
        for name in p.get("headers") or {}:
            if name.lower() in RESERVED_HEADERS:
                errors.append(
                    _error(
                        f"The header {name} is reserved and cannot be set.", f"personalizations.{n}.headers"
                    )
                )
        if not payload.get("subject") and not p.get("subject") and not payload.get("template_id"):
            errors.append(
                _error(
                    "The subject is required. You can get around this requirement if you use a "
                    "template with a subject defined or if every personalization has a subject "
                    "defined.",
                    "subject",
                )
            )
    if total > 1000:
        errors.append(_error("The total number of recipients must be less than 1000.", "personalizations"))
    content = payload.get("content")
    if not payload.get("template_id"):
        if not isinstance(content, list) or not content:
            errors.append(
                _error(
                    "Unless a valid template_id is provided, the content parameter is required.", "content"
                )
            )
        else:
            types = [c.get("type") if isinstance(c, dict) else None for c in content]
            for n, c in enumerate(content):
                if not isinstance(c, dict) or not c.get("type") or not c.get("value"):
                    errors.append(
                        _error(
                            "The content value must be a string at least one character in length.",
                            f"content.{n}.value",
                        )
                    )
            if "text/plain" in types and types[0] != "text/plain":
                errors.append(
                    _error(
                        "If present, text/plain content must be first, followed by any other content.",
                        "content",
                    )
                )
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        errors.append(_error("Invalid type. Expected: object, given: array.", "headers"))
    else:
        for name in headers:
            if name.lower() in RESERVED_HEADERS:
                errors.append(_error(f"The header {name} is reserved and cannot be set.", "headers"))
    custom_args = payload.get("custom_args") or {}
    if not isinstance(custom_args, dict) or not all(isinstance(v, str) for v in custom_args.values()):
        errors.append(_error("Custom args values must be strings.", "custom_args"))
    elif len(json.dumps(custom_args).encode()) > 10_000:
        errors.append(_error("The custom_args field must be less than 10,000 bytes.", "custom_args"))
    reply_to = payload.get("reply_to")
    if reply_to is not None and (not isinstance(reply_to, dict) or not _valid_email(reply_to.get("email"))):
        errors.append(_error("The reply_to email does not contain a valid address.", "reply_to.email"))
    return errors


def keypair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key, and its public half as SendGrid shows it (base64 SubjectPublicKeyInfo)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


def event_signature(private: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    return base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def signed_event_headers(private: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": event_signature(private, timestamp, body),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def post_events(url: str, events: list[dict[str, Any]], private: ec.EllipticCurvePrivateKey) -> int:
    body = (json.dumps(events) + "\r\n").encode()
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    for name, value in signed_event_headers(private, body).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@dataclass
class FakeSendGrid:
    api_key: str
    callback_delay: float = 0.05
    messages: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, Any]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    event_webhook_url: str = ""  # set in end-to-end tests, where a live server takes the events
    events_posted: list[tuple[list[dict[str, Any]], int]] = field(default_factory=list)
    activity_queries: list[str] = field(default_factory=list)
    url: str = ""
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: keypair()[0])
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def public_key_b64(self) -> str:
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def start(self) -> FakeSendGrid:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._activity(self)

            def _json(
                self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if body is not None:
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

    @property
    def requests(self) -> int:
        """Mail Send requests accepted (202)."""
        return len(self.messages)

    @property
    def personalizations(self) -> int:
        """Personalizations across every accepted request (one per recipient for our sends)."""
        return sum(len(m["personalizations"]) for m in self.messages)

    def mails(self) -> list[dict[str, Any]]:
        """Every accepted personalization as the mail its recipient gets: ``to``, ``subject``,
        ``headers``, ``custom_args`` (the request's merged with the personalization's), ``text`` and
        ``html`` with the substitutions applied, and the request's ``x_message_id``."""
        out = []
        for sent in list(self.messages):
            contents = {c["type"]: c["value"] for c in sent.get("content") or []}
            for p in sent["personalizations"]:
                subs = p.get("substitutions") or {}

                def apply(text: str, subs: dict[str, str] = subs) -> str:
                    for key, value in subs.items():
                        text = text.replace(key, value)
                    return text

                for recipient in p["to"]:
                    out.append(
                        {
                            "to": recipient["email"],
                            "subject": apply(p.get("subject") or sent.get("subject") or ""),
                            "headers": {**(sent.get("headers") or {}), **(p.get("headers") or {})},
                            "custom_args": {
                                **(sent.get("custom_args") or {}),
                                **(p.get("custom_args") or {}),
                            },
                            "text": apply(contents.get("text/plain", "")),
                            "html": apply(contents.get("text/html", "")),
                            "reply_to": (sent.get("reply_to") or {}).get("email", ""),
                            "x_message_id": sent["x_message_id"],
                        }
                    )
        return out

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.rejected.clear()
            self.fail_next.clear()
            self.events_posted.clear()
            self.activity_queries.clear()
            self.event_webhook_url = ""

    def _handle(self, h: Any) -> None:
        path = urllib.parse.urlparse(h.path).path
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            h._json(
                401, {"errors": [_error("The provided authorization grant is invalid, expired, or revoked")]}
            )
            return
        if path != "/v3/mail/send":
            h._json(404, {"errors": [_error(f"{path} not found")]})
            return
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self._lock:
            injected = self.fail_next.pop(0) if self.fail_next else None
        if injected is not None:
            message = "too many requests" if injected == 429 else "internal error"
            headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "60"}
            self.rejected.append((injected, raw))
            h._json(injected, {"errors": [{"message": message, "field": None, "help": None}]}, headers)
            return
        try:
            payload = json.loads(raw)
        except ValueError:
            self.rejected.append((400, raw))
            h._json(400, {"errors": [_error("Bad Request")]})
            return
        errors = mail_send_errors(payload)
        if errors:
            self.rejected.append((400, payload))
            h._json(400, {"errors": errors})
            return
        message_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        self.messages.append({"x_message_id": message_id, **payload})
        h._json(202, None, {"X-Message-Id": message_id})
        if self.event_webhook_url:
            threading.Thread(target=self._events, args=(payload, message_id), daemon=True).start()

    def _activity(self, h: Any) -> None:
        """Email Activity (``GET /v3/messages?query=…&limit=…``) for the two query terms we use:
        ``unique_args['<name>']="<value>"`` and ``to_email="<address>"``, joined by AND."""
        parsed = urllib.parse.urlparse(h.path)
        if parsed.path != "/v3/messages":
            h._json(404, {"errors": [_error("not found")]})
            return
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            h._json(401, {"errors": [_error("authorization required")]})
            return
        params = dict(urllib.parse.parse_qsl(parsed.query))
        query = params.get("query", "")
        self.activity_queries.append(query)
        args = dict(re.findall(r"unique_args\['(\w+)'\]=\"([^\"]*)\"", query))
        to = re.findall(r"to_email=\"([^\"]*)\"", query)
        found = []
        for sent in list(self.messages):
            for p in sent["personalizations"]:
                custom = {**(sent.get("custom_args") or {}), **(p.get("custom_args") or {})}
                recipients = [r["email"] for r in p["to"]]
                if not (
                    all(custom.get(k) == v for k, v in args.items()) and all(t in recipients for t in to)
                ):
                    continue
                found.append(
                    {
                        "from_email": sent["from"]["email"],
                        "msg_id": f"{sent['x_message_id']}.filterdrecv-fake-1-0.0",
                        "subject": p.get("subject") or sent.get("subject", ""),
                        "to_email": recipients[0],
                        "status": "processed",
                        "opens_count": 0,
                        "clicks_count": 0,
                        "last_event_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    }
                )
        h._json(200, {"messages": found[: int(params.get("limit") or 10)]})

    def _events(self, payload: dict[str, Any], message_id: str) -> None:
        for p in payload["personalizations"]:
            # A personalization's custom args override the request's (SendGrid merges them).
            custom_args = {**(payload.get("custom_args") or {}), **(p.get("custom_args") or {})}
            for recipient in p["to"]:
                final = "bounce" if recipient["email"] == BOUNCING_ADDRESS else "delivered"
                for kind in ("processed", final):
                    time.sleep(self.callback_delay)
                    event = {
                        "email": recipient["email"],
                        "timestamp": int(time.time()),
                        "event": kind,
                        "sg_event_id": base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("="),
                        "sg_message_id": f"{message_id}.filterdrecv-fake-1-{secrets.token_hex(4)}.0",
                        "smtp-id": f"<{message_id}@ismtpd-fake>",
                        **custom_args,
                        **(
                            {"type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 no such user"}
                            if kind == "bounce"
                            else {}
                        ),
                    }
                    status = post_events(self.event_webhook_url, [event], self.private_key)
                    self.events_posted.append(([event], status))


# ---------------------------------------------------------------- Inbound Parse posts and channels

BOUNDARY = "xYzZY"


def multipart_body(
    fields: dict[str, str | bytes], files: dict[str, tuple[str, str, bytes]] | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body the way SendGrid's Inbound Parse posts one (CRLF, boundary xYzZY)."""
    out = bytearray()
    for name, value in fields.items():
        data = value if isinstance(value, bytes) else value.encode()
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data + b"\r\n"
        )
    for name, (filename, content_type, data) in (files or {}).items():
        out += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={BOUNDARY}"


def sample_to_crlf(text: str) -> bytes:
    """Sample multipart bodies are stored with LF; real HTTP multipart uses CRLF."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


INBOUND_USER = "sendgrid-parse"
INBOUND_PASSWORD = "parse-password-0123456789"


def sendgrid_channel(workspace: Any, fake: FakeSendGrid, address: str = "", **config: Any) -> Any:
    from engagement.models import Channel

    return Channel.objects.create(
        workspace=workspace,
        kind="email",
        provider="sendgrid",
        name="Support email",
        address=address or f"support-{secrets.token_hex(3)}@mail.example.com",
        config={
            "api_key": fake.api_key,
            "api_base_url": fake.url,
            "from_name": "Demo Support",
            "inbound_domain": "inbound.example.com",
            "inbound_basic_auth": {"username": INBOUND_USER, "password": INBOUND_PASSWORD},
            "event_webhook_public_key": fake.public_key_b64,
            **config,
        },
    )

"""Inbound email (SendGrid Inbound Parse, raw MIME) against the bare view, on the real ASGI server.

Scenarios, each after its own warm-up, over the same keep-alive connections and concurrency, measured in
interleaved rounds:

* ``bare_get`` — ``GET /healthz``: the bare Django view, the baseline.
* ``email``    — ``POST /webhooks/sendgrid/<token>/inbound/`` as Inbound Parse posts in raw mode:
  multipart/form-data (CRLF, boundary ``xYzZY``) with the whole message in the ``email`` field plus
  ``to``/``from``/``subject``/``envelope``/``charsets``/``SPF``/``dkim``/``spam_score``, and the channel's
  HTTP Basic credentials in ``Authorization``. Each message (built with the stdlib ``email`` package) is
  about 200 KB: text/plain + text/html alternative and one ~150 KB PDF attachment (base64), a distinct
  Message-ID each, From drawn from a pool of addresses (new and returning customers).

Every request is built before the clock starts. Afterwards the database must hold exactly one inbound
Interaction, one ProviderEvent (processed) and one Attachment (with its file) per Message-ID sent.

The measured count is small (inbound email is ~100x the work of a bare GET): ``min(--requests, 300)``
emails and ``min(--warmup, 30)`` warm-up emails; the baseline gets ``--requests`` requests.
"""

from __future__ import annotations

import base64
import json
import random
import shutil
import tempfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from bench import harness
from bench.bench_webhook_sms import baseline_of
from bench.harness import BenchResult, Context

EMAIL_REQUESTS = 300
EMAIL_WARMUP = 30
INBOUND_USER = "bench-parse"
INBOUND_PASSWORD = "bench-parse-password-0123456789"
CHANNEL_ADDRESS = "support@mail.bench.example.com"
FROM_POOL = [f"Customer {n} <customer{n}@example.org>" for n in range(100)]
ATTACHMENT_BYTES = 110 * 1024  # its base64 (76-character lines) is ~150 KB
QUOTED_LINES = 100  # order lines, quoted again below the reply: text + HTML ~45 KB
BOUNDARY = "xYzZY"  # what SendGrid uses
NEVER_MATCHES = "bench-keyword-that-no-message-contains"
AIM_PCT = 20.0


def _seed() -> dict[str, Any]:
    from engagement.models import AutomationRule, Channel, Workspace
    from engagement.models.automation import MatchType, Trigger

    workspace = Workspace.objects.create(name="Bench email", slug="bench-email")
    channel = Channel.objects.create(
        workspace=workspace,
        kind="email",
        provider="sendgrid",
        name="Bench support email",
        address=CHANNEL_ADDRESS,
        # No API key and an API base nobody listens on: nothing can reach real SendGrid.
        config={
            "api_key": "",
            "api_base_url": "http://127.0.0.1:9",
            "inbound_domain": "inbound.bench.example.com",
            "inbound_basic_auth": {"username": INBOUND_USER, "password": INBOUND_PASSWORD},
        },
    )
    AutomationRule.objects.create(
        workspace=workspace,
        name="bench: enabled, never matches",
        enabled=True,
        trigger=Trigger.MESSAGE_RECEIVED,
        match_type=MatchType.KEYWORD,
        keywords=NEVER_MATCHES,
        template="this reply is never sent",
    )
    return {"workspace_id": workspace.pk, "channel_id": channel.pk, "token": channel.webhook_token}


def _mime_message(n: int, sender: str, message_id: str, rng: random.Random) -> bytes:
    """A realistic ~200 KB mail: text + HTML alternative, one PDF attachment, the usual headers."""
    msg = EmailMessage(policy=SMTP)  # CRLF line endings, as the Parse webhook forwards it
    msg["Return-Path"] = f"<{sender.split('<')[1]}"
    msg["Received"] = (
        "from mail-relay.example.org (mail-relay.example.org [203.0.113.25]) by mx.sendgrid.net "
        f"with ESMTPS id bench{n:06d} for <{CHANNEL_ADDRESS}>; Sun, 22 Nov 2026 10:00:00 +0000 (UTC)"
    )
    msg["From"] = sender
    msg["To"] = f"Support <{CHANNEL_ADDRESS}>"
    msg["Subject"] = f"Invoice question #{n}: the attached statement does not match my order"
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{message_id}>"
    msg["MIME-Version"] = "1.0"
    msg["X-Mailer"] = "Bench Mail 1.0"
    name = sender.split(" <")[0]
    # Order lines and the quoted earlier exchange make up the bulk of the text, as in a real reply.
    order_lines = [
        f"  {i:>3}. Item {rng.randrange(10_000, 99_999)}, quantity {rng.randrange(1, 9)}, "
        f"unit price {rng.randrange(100, 99_999) / 100:.2f} EUR, as listed on the statement"
        for i in range(QUOTED_LINES)
    ]
    text = (
        f"Hello,\n\nI am writing about order {n}. The attached statement lists a charge I do not "
        "recognise; could you check it and tell me what it is for?\n\nThe order, for reference:\n"
        + "\n".join(order_lines)
        + f"\n\nThank you,\n{name}\n\nOn Fri, 20 Nov 2026, Support <{CHANNEL_ADDRESS}> wrote:\n"
        + "\n".join(f"> {line}" for line in order_lines)
        + "\n"
    )
    msg.set_content(text)
    paragraphs = "".join(f'<tr><td style="padding:2px 8px">{line}</td></tr>' for line in order_lines)
    msg.add_alternative(
        f"<html><body><p>Hello,</p><p>I am writing about order <b>{n}</b>. The attached statement lists a "
        "charge I do not recognise; could you check it and tell me what it is for?</p>"
        f"<table>{paragraphs}</table><p>Thank you,<br>{name}</p>"
        f'<blockquote type="cite"><table>{paragraphs}</table></blockquote></body></html>',
        subtype="html",
    )
    pdf = b"%PDF-1.7\n" + rng.randbytes(ATTACHMENT_BYTES - 9)
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"statement-{n}.pdf")
    return msg.as_bytes()


def _multipart(fields: dict[str, bytes]) -> bytes:
    out = bytearray()
    for name, value in fields.items():
        out += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    out += f"--{BOUNDARY}--\r\n".encode()
    return bytes(out)


def _basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{INBOUND_USER}:{INBOUND_PASSWORD}".encode()).decode()


def _email_requests(
    server: harness.Server, token: str, count: int, rng: random.Random, seen: set[str], label: str
) -> tuple[list[bytes], list[str], dict[str, int]]:
    """``count`` Inbound Parse posts with distinct Message-IDs; returns them, their ids and a tally."""
    path = f"/webhooks/sendgrid/{token}/inbound/"
    host = f"{server.host}:{server.port}"
    requests, ids = [], []
    tally = {"new_sender": 0, "returning_sender": 0}
    for n in range(count):
        sender = rng.choice(FROM_POOL)
        address = sender.split("<")[1].rstrip(">")
        tally["returning_sender" if address in seen else "new_sender"] += 1
        seen.add(address)
        message_id = f"bench-{label}-{n}-{rng.getrandbits(64):016x}@mail-relay.example.org"
        subject = f"Invoice question #{n}: the attached statement does not match my order"
        fields = {
            "dkim": b"{@example.org : pass}",
            "email": _mime_message(n, sender, message_id, rng),
            "to": f"Support <{CHANNEL_ADDRESS}>".encode(),
            "from": sender.encode(),
            "sender_ip": b"203.0.113.25",
            "spam_report": b"",
            "envelope": json.dumps({"to": [CHANNEL_ADDRESS], "from": address}).encode(),
            "subject": subject.encode(),
            "spam_score": b"0.1",
            "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}).encode(),
            "SPF": b"pass",
        }
        body = _multipart(fields)
        headers = {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "Authorization": _basic_auth(),
        }
        requests.append(harness.http_request("POST", path, host, headers=headers, body=body))
        ids.append(message_id)
    return requests, ids, tally


def _database_check(
    workspace_id: int, channel_id: int, message_ids: list[str], media_root: Path
) -> dict[str, Any]:
    """One inbound Interaction, one ProviderEvent and one Attachment (its file on disk, its size) per
    Message-ID sent; nothing outbound. Scoped to this benchmark's workspace and channel."""
    from django.db.models import Count

    from channels_inbound.models import ProviderEvent
    from engagement.models import Attachment, Interaction

    inbound = Interaction.objects.filter(channel_id=channel_id, direction="inbound")
    per_id = dict(
        inbound.filter(email_message_id__in=message_ids)
        .values_list("email_message_id")
        .annotate(n=Count("id"))
        .values_list("email_message_id", "n")
    )
    attachments = Attachment.objects.filter(interaction__channel_id=channel_id)
    per_interaction = dict(
        attachments.values_list("interaction_id").annotate(n=Count("id")).values_list("interaction_id", "n")
    )
    interaction_ids = list(inbound.values_list("id", flat=True))
    files_ok = sum(
        1
        for name, size in attachments.values_list("file", "size")
        if (media_root / name).is_file() and (media_root / name).stat().st_size == size
    )
    distinct = len(set(message_ids))
    events = ProviderEvent.objects.filter(channel_id=channel_id)
    check = {
        "distinct_message_ids_sent": distinct,
        "interactions_inbound": inbound.count(),
        "ids_with_exactly_one_interaction": sum(1 for n in per_id.values() if n == 1),
        "ids_missing": sum(1 for mid in set(message_ids) if mid not in per_id),
        "ids_duplicated": sum(1 for n in per_id.values() if n != 1),
        "interactions_with_exactly_one_attachment": sum(
            1 for iid in interaction_ids if per_interaction.get(iid) == 1
        ),
        "attachments": len(per_interaction) and sum(per_interaction.values()),
        "attachment_files_ok": files_ok,
        "interactions_outbound": Interaction.objects.filter(
            workspace_id=workspace_id, direction="outbound"
        ).count(),
        "provider_events": events.count(),
        "provider_events_unprocessed": events.filter(processed_at__isnull=True).count(),
    }
    check["ok"] = (
        check["ids_missing"] == 0
        and check["ids_duplicated"] == 0
        and check["interactions_inbound"] == distinct
        and check["interactions_with_exactly_one_attachment"] == distinct
        and check["attachments"] == distinct
        and check["attachment_files_ok"] == distinct
        and check["interactions_outbound"] == 0
        and check["provider_events"] == distinct
        and check["provider_events_unprocessed"] == 0
    )
    return check


def _line(name: str, s: dict[str, Any], cpu: dict[str, Any], mb_s: float | None = None) -> str:
    lat = s["latency_ms"]
    spread = "/".join(map(str, s["connections_per_worker"])) or "?"
    rate = f"   {mb_s:>5.1f} MB/s" if mb_s is not None else ""
    return (
        f"  {name:<20} {s['rps']:>8.1f} req/s   p50 {lat['p50']:>7.2f} ms   p99 {lat['p99']:>7.2f} ms{rate}"
        f"   CPU/req server {cpu['server_cpu_ms_per_request']:>6.2f} ms"
        f" + postgres {cpu['postgres_cpu_ms_per_request']:>5.2f} ms"
        f"   ({s['completed']} in {s['elapsed_s']:.1f} s, errors {s['errors']}, connections/worker {spread})"
    )


def _cpu_line(name: str, c: dict[str, Any]) -> str:
    workers = " + ".join(f"{v:.1f}" for v in c["server_cpu_s_by_pid"].values()) or "-"
    return (
        f"  {name:<20} wall {c['wall_s']:>6.1f}   server {c['server_cpu_s']:>6.1f} ({workers})"
        f"   postgres {c['postgres_cpu_s']:>5.1f}   loadgen {c['loadgen_cpu_s']:>4.1f}"
        f"   other {c['other_cpu_s']:>5.1f}   machine busy {c['machine_busy_pct']}%"
    )


def _chunks(items: list[bytes], rounds: int) -> list[tuple[int, list[bytes]]]:
    size = -(-len(items) // rounds)
    return [(start, items[start : start + size]) for start in range(0, len(items), size)]


def run(ctx: Context) -> BenchResult:
    seeded = _seed()
    rng = random.Random(20261123)  # the same senders and attachments every run
    errors: list[str] = []
    n_email, n_warm = min(ctx.requests, EMAIL_REQUESTS), min(ctx.warmup, EMAIL_WARMUP)
    rounds = max(1, min(ctx.rounds, n_email))
    background = harness.machine_busy_pct()
    media_root = Path(tempfile.mkdtemp(prefix="bench-email-media-"))
    env = {**ctx.server_env, "MEDIA_ROOT": str(media_root)}
    try:
        with (
            harness.app_server(
                env, kind=harness.PRODUCT_HTTP_KIND, workers=ctx.workers, name="product-email-inbound"
            ) as server,
            harness.baseline_servers(
                env, workers=ctx.workers, product=server, name="baseline-email"
            ) as bases,
        ):
            seen: set[str] = set()
            harness.log(f"email: building {n_warm} + {n_email} Inbound Parse posts")
            warm_reqs, warm_ids, _ = _email_requests(server, seeded["token"], n_warm, rng, seen, "warm")
            reqs, ids, tally = _email_requests(server, seeded["token"], n_email, rng, seen, "run")
            bodies = [len(r) for r in reqs]
            mime_sizes = [r.index(b'name="to"') - r.index(b'name="email"') for r in reqs[:5]]
            plan: dict[str, tuple[harness.Server, list[bytes], list[bytes]]] = {}
            for kind, other in bases.items():
                bare = harness.http_request("GET", "/healthz", f"{other.host}:{other.port}")
                plan[f"bare:{kind}"] = (other, [bare] * ctx.warmup, [bare] * ctx.requests)
            plan["email"] = (server, warm_reqs, reqs)
            results: dict[str, harness.LoadResult] = {}
            usage: dict[str, harness.CpuUsage] = {}
            email_ok: list[str] = []

            def measure(
                name: str, target: harness.Server, label: str, requests: list[bytes]
            ) -> tuple[harness.LoadResult, harness.CpuUsage]:
                result, used = harness.run_load(
                    name, target, requests, concurrency=ctx.concurrency, max_seconds=ctx.max_seconds
                )
                if result.errors():
                    errors.append(
                        f"{name} {label}: {result.errors()} errors, e.g. {result.error_samples[:2]}"
                    )
                return result, used

            for name, (target, warm, _) in plan.items():
                harness.log(f"{name}: warm-up, {len(warm)} requests")
                warm_result, _ = measure(name, target, "warm-up", warm)
                if name == "email":
                    email_ok += [warm_ids[i] for i in warm_result.ok_indices]
            for number in range(rounds):
                for name, (target, _, measured) in plan.items():
                    chunks = _chunks(measured, rounds)
                    if number >= len(chunks):
                        continue
                    start, chunk = chunks[number]
                    harness.log(
                        f"round {number + 1}/{rounds}: {name}, {len(chunk)} requests x{ctx.concurrency}"
                    )
                    result, used = measure(name, target, f"round {number + 1}", chunk)
                    if name == "email":
                        email_ok += [ids[start + i] for i in result.ok_indices]
                    results[name] = results[name] + result if name in results else result
                    usage[name] = usage[name] + used if name in usage else used
            server_log = server.log_tail(15)

        scenarios = {name: harness.summarize(r) for name, r in results.items()}
        cpu = {name: usage[name].as_dict(results[name].completed) for name in results}
        check = _database_check(seeded["workspace_id"], seeded["channel_id"], warm_ids + ids, media_root)
        check["emails_answered_200"] = len(email_ok)
        check["emails_sent"] = len(warm_ids) + len(ids)
        if check["emails_answered_200"] != check["emails_sent"]:
            check["ok"] = False
        if not check["ok"]:
            errors.append(f"database check failed: {check}")
    finally:
        shutil.rmtree(media_root, ignore_errors=True)

    def pct(a: float, b: float) -> float:
        return round(100.0 * a / b, 2) if b else 0.0

    baseline = baseline_of(scenarios, cpu)
    bare_rps, email_rps = baseline["rps"], scenarios["email"]["rps"]
    ratio = pct(email_rps, bare_rps)
    round_ratios = [
        pct(e, b) for e, b in zip(scenarios["email"]["round_rps"], baseline["round_rps"], strict=True)
    ]
    mean_body = sum(bodies) / len(bodies)
    mb_s = email_rps * mean_body / 1e6

    def cpu_ms(name: str) -> float:
        return float(cpu[name]["server_cpu_ms_per_request"])

    def total_ms(name: str) -> float:
        return cpu_ms(name) + float(cpu[name]["postgres_cpu_ms_per_request"])

    cpu_ratio = pct(cpu_ms(baseline["scenario"]), cpu_ms("email"))
    total_cpu_ratio = pct(total_ms(baseline["scenario"]), total_ms("email"))
    met = ratio >= AIM_PCT
    data = {
        "config": {
            "email_requests": n_email,
            "email_warmup": n_warm,
            "bare_requests": ctx.requests,
            "bare_warmup": ctx.warmup,
            "rounds": rounds,
            "concurrency": ctx.concurrency,
            "workers": ctx.workers,
            "product_http_server": harness.PRODUCT_HTTP_KIND,
            "database_pool_max": ctx.server_env.get("DATABASE_POOL_MAX"),
            "debug": ctx.server_env.get("DEBUG"),
            "mean_request_bytes": round(mean_body),
            "mime_message_bytes_sample": mime_sizes,
            "from_pool": len(FROM_POOL),
            "email_senders": tally,
            "machine_busy_pct_before_start": background,
        },
        "baseline": baseline,
        "scenarios": scenarios,
        "cpu": cpu,
        "aim_pct": AIM_PCT,
        "aim_met": met,
        "email_mb_per_s": round(mb_s, 2),
        "ratio_pct": ratio,
        "ratio_per_round_pct": round_ratios,
        "server_cpu_ratio_pct": cpu_ratio,
        "server_and_postgres_cpu_ratio_pct": total_cpu_ratio,
        "database_check": check,
    }
    lines = [
        f"email_inbound: {n_email} emails ({ctx.requests} bare GETs) in {rounds} interleaved rounds after "
        f"{n_warm} ({ctx.warmup}) warm-up, {ctx.concurrency} keep-alive connections, "
        f"{ctx.workers} workers per server; product HTTP on {harness.PRODUCT_HTTP_KIND}",
        f"  each email: SendGrid Inbound Parse raw mode, {mean_body / 1024:.0f} KB request "
        f"(MIME message ~{sum(mime_sizes) / len(mime_sizes) / 1024:.0f} KB: text + HTML + one "
        f"{ATTACHMENT_BYTES / 1024:.0f} KB PDF as base64), Basic auth, distinct Message-ID",
        f"  machine busy before start: {background}%  (other load on this machine skews requests/s)",
        *(_line(name, scenarios[name], cpu[name]) for name in scenarios if name.startswith("bare:")),
        _line("email", scenarios["email"], cpu["email"], mb_s),
        f"  baseline: the fastest bare view of this run = {baseline['kind']} {bare_rps:.1f} req/s",
        f"  email senders: {tally['new_sender']} new, {tally['returning_sender']} returning "
        f"(pool of {len(FROM_POOL)})",
        "",
        f"  email_rps / baseline_rps = {email_rps:.1f} / {bare_rps:.1f} = {ratio:.2f}%"
        f"   (per round: {', '.join(f'{r:.2f}%' for r in round_ratios)})",
        f"  Aim: at least {AIM_PCT:.0f}% of the baseline's rate -> {'MET' if met else 'NOT MET'}",
        f"  the same by CPU per request (baseline / email), which other load disturbs less: server "
        f"{cpu_ratio:.2f}%, server + postgres {total_cpu_ratio:.2f}%",
        "",
        "  CPU seconds while measuring (server: its workers; postgres: backends of the bench database):",
        *(_cpu_line(name, c) for name, c in cpu.items()),
        "",
        f"  database check: {check['distinct_message_ids_sent']} distinct Message-IDs sent, "
        f"{check['emails_answered_200']} answered 200, {check['interactions_inbound']} inbound Interactions, "
        f"{check['ids_with_exactly_one_interaction']} with exactly one, {check['ids_missing']} missing, "
        f"{check['ids_duplicated']} duplicated; {check['interactions_with_exactly_one_attachment']} with "
        f"exactly one Attachment ({check['attachment_files_ok']} files on disk with the right size); "
        f"{check['provider_events']} ProviderEvents ({check['provider_events_unprocessed']} unprocessed); "
        f"{check['interactions_outbound']} outbound -> {'OK' if check['ok'] else 'FAILED'}",
    ]
    if errors and server_log:
        lines += ["", "  server log (tail):", *("    " + line for line in server_log.splitlines())]
    return BenchResult(name="email_inbound", data=data, report="\n".join(lines), errors=errors)

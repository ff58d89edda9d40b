"""Campaign fan-out, each against a baseline measured in the same run.

* ``email`` — 100,000 queued campaign emails (``BENCH_CAMPAIGN_EMAILS``; written by SQL straight into the
  product's tables: customers, email identities, marketing opt-ins, one running campaign run, the queued
  interactions) sent by the product's batch path (``outbound_email_batch_send``: claim 1,000 under SKIP
  LOCKED, consent re-check, envelope, one Mail Send request through the ``sendgrid`` SDK to the fake
  SendGrid in this process, the outcome recorded set-based) until none is left — against a raw ``COPY``
  of the same rows (recipient, subject, text, HTML) into a scratch table. Aim: ≥ 10% of COPY's speed.
  Errors: a recipient not sent exactly once (personalizations counted at the fake, ``iid`` unique).
* ``sms`` — a real SMS campaign (launch → scheduler ticks → guard pipeline → outbox → send task, eager in
  this process; ``BENCH_CAMPAIGN_SMS_TICKERS`` threads tick side by side, 6 by default, as a worker's
  threads do when beat's ticks overlap) to ``BENCH_CAMPAIGN_SMS`` recipients on a channel configured at
  50 messages per second, to the fake Twilio, which stamps each accepted request. Reported: the rate
  between the first and the last send against the cap (aim ≥ 90%), and the busiest one-second window
  (aim ≤ cap + 5%). Bounded by ``BENCH_CAMPAIGN_SMS_SECONDS``; what was sent by then is what is measured.

Nothing asserts a timing; ratios are results.
"""

from __future__ import annotations

import io
import os
import threading
import time
from typing import Any

from bench import harness
from bench.harness import BenchResult, Context

EMAILS = int(os.environ.get("BENCH_CAMPAIGN_EMAILS", "100000"))
SMS = int(os.environ.get("BENCH_CAMPAIGN_SMS", "600"))
SMS_SECONDS = float(os.environ.get("BENCH_CAMPAIGN_SMS_SECONDS", "120"))
SMS_CAP = 50.0
SMS_TICKERS = int(os.environ.get("BENCH_CAMPAIGN_SMS_TICKERS", "6"))


def _email_fixture(raw: Any, workspace_id: int, channel_id: int, run_id: int, campaign_id: int) -> float:
    n = EMAILS
    t0 = time.perf_counter()
    with raw.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence('customers_customer', 'id')")
        sequence = cur.fetchone()[0]
        cur.execute("SELECT nextval(%s)", [sequence])
        base = int(cur.fetchone()[0])
        cur.execute("SELECT setval(%s, %s)", [sequence, base + n])
        args = {"base": base, "ws": workspace_id, "n": n, "ch": channel_id, "run": run_id, "c": campaign_id}
        cur.execute(
            "INSERT INTO customers_customer (id, workspace_id, display_name, attributes, tags, timezone,"
            " preferred_channel, created_at, updated_at)"
            " SELECT %(base)s + g, %(ws)s, 'Person ' || g, '{}'::jsonb, '[\"promo\"]'::jsonb, '', '',"
            " now(), now()"
            " FROM generate_series(0, %(n)s - 1) AS g",
            args,
        )
        cur.execute(
            "INSERT INTO customers_identity (workspace_id, customer_id, kind, value, verified, first_channel,"
            " first_seen_at, last_channel, last_seen_at)"
            " SELECT %(ws)s, %(base)s + g, 'email', 'p' || g || '@bench.example', true, 'email', now(),"
            " 'email', now() FROM generate_series(0, %(n)s - 1) AS g",
            args,
        )
        cur.execute(
            "INSERT INTO customers_consentevent (workspace_id, customer_id, channel, purpose, status, source,"
            " address, evidence, occurred_at, created_at)"
            " SELECT %(ws)s, %(base)s + g, 'email', 'marketing', 'opted_in', 'import', '', '{}'::jsonb,"
            " now() - interval '1 day', now() FROM generate_series(0, %(n)s - 1) AS g",
            args,
        )
        cur.execute(
            "INSERT INTO engagement_interaction (workspace_id, customer_id, channel_id, direction, kind,"
            " body, customer_address, status, status_changed_at, next_attempt_at, send_attempts, segments,"
            " provider_message_id, idempotency_key, email_message_id, error_code, error_message, metadata,"
            " call_outcome, created_at)"
            " SELECT %(ws)s, %(base)s + g, %(ch)s, 'outbound', 'message',"
            " 'Hi Person ' || g || ', 20%% off this weekend.', 'p' || g || '@bench.example', 'queued', now(),"
            " now() - interval '1 minute', 0, 1, '', 'campaign:' || %(run)s || ':' || (%(base)s + g), '',"
            " '', '', jsonb_build_object('purpose', 'marketing', 'campaign_id', %(c)s, 'campaign_run_id',"
            " %(run)s, 'email', jsonb_build_object('subject', 'Spring sale, Person ' || g, 'html',"
            " '<p>Hi Person ' || g || ', 20%% off this weekend.</p>')), '', now()"
            " FROM generate_series(0, %(n)s - 1) AS g",
            args,
        )
        for table in ("customers_customer", "customers_consentevent", "engagement_interaction"):
            cur.execute(f"ANALYZE {table}")
    return time.perf_counter() - t0


def _copy_baseline(raw: Any, channel_id: int) -> float:
    """COPY of the same rows (recipient, subject, text, HTML) into a scratch table, timed."""
    with raw.cursor() as cur:
        cur.execute(
            "SELECT customer_address, metadata->'email'->>'subject', body, metadata->'email'->>'html'"
            " FROM engagement_interaction WHERE channel_id = %s",
            [channel_id],
        )
        rows = cur.fetchall()
        cur.execute("DROP TABLE IF EXISTS bench_copy")
        cur.execute("CREATE UNLOGGED TABLE bench_copy (address text, subject text, body text, html text)")
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(str(v).replace("\\", "\\\\").replace("\t", " ") for v in row) + "\n")
        data = buffer.getvalue()
        t0 = time.perf_counter()
        with cur.copy("COPY bench_copy FROM STDIN") as copy:
            copy.write(data)
        elapsed = time.perf_counter() - t0
        cur.execute("DROP TABLE bench_copy")
    return elapsed


def _email(errors: list[str]) -> tuple[dict[str, Any], list[str]]:
    from django.db import connection
    from django.utils import timezone

    from channels_outbound.services import outbound_email_batch_send
    from engagement.models import Campaign, CampaignRun, Channel, Segment, Workspace
    from tests.fakes.sendgrid_server import FakeSendGrid

    fake = FakeSendGrid(api_key="SG.bench-key.0123456789").start()
    try:
        workspace = Workspace.objects.create(name="Bench campaigns email", slug="bench-campaigns-email")
        channel = Channel.objects.create(
            workspace=workspace,
            kind="email",
            provider="sendgrid",
            name="News",
            address="news@bench.example",
            config={"api_key": fake.api_key, "api_base_url": fake.url, "inbound_domain": "in.bench.example"},
        )
        segment = Segment.objects.create(
            workspace=workspace, name="Everyone", rules={"type": "and", "rules": []}
        )
        campaign = Campaign.objects.create(
            workspace=workspace, name="Bench", segment=segment, channel_ids=[channel.pk], state="running"
        )
        run = CampaignRun.objects.create(
            campaign=campaign, workspace=workspace, occurrence=timezone.now(), started_at=timezone.now()
        )
        connection.ensure_connection()
        raw = connection.connection
        harness.log(f"campaigns: loading {EMAILS} queued campaign emails")
        load_s = _email_fixture(raw, workspace.pk, channel.pk, run.pk, campaign.pk)
        copy_s = _copy_baseline(raw, channel.pk)
        harness.log(f"campaigns: loaded in {load_s:.1f} s; COPY of the same rows {copy_s:.2f} s")
        t0 = time.perf_counter()
        sent = requests = 0
        while True:
            report = outbound_email_batch_send(channel=channel)
            if not report.claimed:
                break
            sent += report.sent
            requests += report.requests
        fanout_s = time.perf_counter() - t0
        iids = {p["custom_args"]["iid"] for m in fake.messages for p in m["personalizations"]}
        if fake.personalizations != EMAILS or len(iids) != EMAILS or sent != EMAILS:
            errors.append(
                f"email: {EMAILS} queued, {sent} recorded sent, {fake.personalizations} personalizations, "
                f"{len(iids)} distinct ids"
            )
        ratio = copy_s / fanout_s if fanout_s else float("nan")
        data = {
            "emails": EMAILS,
            "requests": fake.requests,
            "largest_request": max((len(m["personalizations"]) for m in fake.messages), default=0),
            "fanout_seconds": round(fanout_s, 2),
            "per_second": round(EMAILS / fanout_s, 1),
            "copy_seconds": round(copy_s, 3),
            "speed_vs_copy": round(ratio, 3),
            "aim_met": ratio >= 0.10,
        }
        lines = [
            f"  email   {EMAILS:,} recipients in {fake.requests} Mail Send requests "
            f"(≤ {data['largest_request']} personalizations each): {fanout_s:.1f} s "
            f"({data['per_second']:,.0f}/s); COPY of the same rows {copy_s:.2f} s → {ratio:.1%} of COPY's "
            f"speed (aim ≥ 10%: {'met' if data['aim_met'] else 'missed'})"
        ]
        return data, lines
    finally:
        fake.stop()


def _sms(errors: list[str]) -> tuple[dict[str, Any], list[str]]:
    from django import db
    from django.conf import settings

    from config.celery import app as celery_app
    from customers.models import ConsentEvent, Customer, Identity
    from engagement.campaigns.sending import campaigns_tick
    from engagement.campaigns.services import campaign_create, campaign_launch
    from engagement.models import CampaignRecipient, CampaignSettings, Channel, Workspace
    from engagement.segments.services import segment_create
    from tests.fakes.twilio_server import FakeTwilio

    fake = FakeTwilio(account_sid="AC" + "b" * 32, auth_token="bench-auth-token-0123456789").start()
    eager, inline = celery_app.conf.task_always_eager, settings.OUTBOX_RELAY_INLINE
    celery_app.conf.task_always_eager = True
    settings.OUTBOX_RELAY_INLINE = True
    try:
        from django.utils import timezone

        workspace = Workspace.objects.create(name="Bench campaigns sms", slug="bench-campaigns-sms")
        CampaignSettings.objects.create(workspace=workspace, quiet_hours_enabled=False)
        channel = Channel.objects.create(
            workspace=workspace,
            kind="sms",
            provider="twilio",
            name="Promo",
            address="+15005550006",
            config={
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "api_base_url": fake.url,
                "rate_per_second": SMS_CAP,
            },
        )
        now = timezone.now()
        people = Customer.objects.bulk_create(
            [Customer(workspace=workspace, display_name=f"P {i}", tags=["promo"]) for i in range(SMS)]
        )
        Identity.objects.bulk_create(
            [
                Identity(
                    workspace=workspace,
                    customer=c,
                    kind="phone",
                    value=f"+1202777{i:04d}",
                    first_seen_at=now,
                    last_seen_at=now,
                )
                for i, c in enumerate(people)
            ]
        )
        ConsentEvent.objects.bulk_create(
            [
                ConsentEvent(
                    workspace=workspace,
                    customer=c,
                    channel="sms",
                    purpose="marketing",
                    status="opted_in",
                    source="import",
                    occurred_at=now,
                )
                for c in people
            ]
        )
        segment = segment_create(
            workspace=workspace,
            name="promo",
            rules={"type": "and", "rules": [{"type": "tag", "value": "promo"}]},
        )
        campaign = campaign_create(
            workspace=workspace,
            name="Bench SMS",
            segment=segment,
            channel_ids=[channel.pk],
            content={
                "sms": {"body": "Hi {{ first_name | default('there') }}, 20% off. Reply STOP to opt out"}
            },
        )
        campaign_launch(campaign=campaign)
        deadline = time.monotonic() + SMS_SECONDS

        def ticker() -> None:
            # One worker thread of the scheduler: ticks back to back (beat fires every second and a tick
            # may use its 2-second budget, so in production ticks overlap the same way).
            try:
                while time.monotonic() < deadline:
                    campaigns_tick(budget_seconds=2)
                    if not CampaignRecipient.objects.filter(
                        campaign=campaign, state__in=["pending", "held", "claimed"]
                    ).exists():
                        break
            finally:
                db.connection.close()

        threads = [threading.Thread(target=ticker, name=f"tick-{i}") for i in range(SMS_TICKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stamps = sorted(m["at"] for m in fake.messages if "sid" in m)
        sids = [m["To"] for m in fake.messages if "sid" in m]
        if len(sids) != len(set(sids)):
            errors.append(f"sms: {len(sids) - len(set(sids))} recipients got two messages")
        span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        rate = (len(stamps) - 1) / span if span else 0.0
        busiest = 0
        j = 0
        for i, start in enumerate(stamps):
            while j < len(stamps) and stamps[j] < start + 1.0:
                j += 1
            busiest = max(busiest, j - i)
        data = {
            "recipients": SMS,
            "sent": len(stamps),
            "cap_per_second": SMS_CAP,
            "rate_per_second": round(rate, 1),
            "share_of_cap": round(rate / SMS_CAP, 3),
            "busiest_second": busiest,
            "aim_met": rate >= 0.9 * SMS_CAP and busiest <= SMS_CAP * 1.05,
        }
        lines = [
            f"  sms     {len(stamps)} of {SMS} sent in {span:.1f} s at a cap of {SMS_CAP:g}/s: {rate:.1f}/s "
            f"({rate / SMS_CAP:.0%} of the cap), busiest one-second window {busiest} (aim ≥ 90% and ≤ "
            f"{SMS_CAP * 1.05:g}: {'met' if data['aim_met'] else 'missed'})"
        ]
        return data, lines
    finally:
        celery_app.conf.task_always_eager = eager
        settings.OUTBOX_RELAY_INLINE = inline
        fake.stop()


def run(ctx: Context) -> BenchResult:
    errors: list[str] = []
    data: dict[str, Any] = {}
    lines = ["campaigns — fan-out against baselines measured in the same run"]
    for name, scenario in (("email", _email), ("sms", _sms)):
        harness.log(f"campaigns: {name}")
        found, report = scenario(errors)
        data[name] = found
        lines += report
    return BenchResult(name="campaigns", data=data, report="\n".join(lines), errors=errors)

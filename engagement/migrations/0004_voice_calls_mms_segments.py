# Voice calls (outcome, duration, who answered), SMS segments, agents' phones and on-duty flag,
# call triggers and a reply channel for automation rules.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("engagement", "0003_interaction_email_message_id"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="automationrule",
            name="reply_channel",
            field=models.ForeignKey(
                blank=True,
                help_text="Send the reply on this channel (e.g. SMS after a missed call). Empty: the same channel",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="engagement.channel",
            ),
        ),
        migrations.AlterField(
            model_name="automationrule",
            name="trigger",
            field=models.CharField(
                choices=[
                    ("message.received", "An inbound message arrives"),
                    ("conversation.opened", "A new conversation opens"),
                    ("call.missed", "An inbound call ends without an agent answering"),
                    ("voicemail.received", "A caller leaves a voicemail"),
                ],
                default="message.received",
                max_length=40,
            ),
        ),
        migrations.AddField(
            model_name="interaction",
            name="answered_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="interaction",
            name="call_outcome",
            field=models.CharField(
                blank=True,
                choices=[
                    ("answered", "Answered"),
                    ("missed", "Missed"),
                    ("busy", "Busy"),
                    ("voicemail", "Voicemail"),
                    ("failed", "Failed"),
                ],
                default="",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="interaction",
            name="duration_seconds",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="interaction",
            name="segments",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="membership",
            name="on_duty",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="membership",
            name="phone",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
    ]

"""Channel.config's secret keys encrypted at rest (engagement/credentials.py), existing rows included."""

import json

from django.db import migrations

import engagement.credentials
from engagement.credentials import config_decrypt, config_encrypt


def _rewrite(apps, schema_editor, transform):
    # Raw rows: the stored JSON is read and written as it is, whatever the model field does.
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT id, config FROM engagement_channel")
        rows = cursor.fetchall()
        for pk, config in rows:
            value = json.loads(config) if isinstance(config, str) else config
            if not isinstance(value, dict):
                continue
            new = transform(value)
            if new != value:
                cursor.execute(
                    "UPDATE engagement_channel SET config = %s::jsonb WHERE id = %s", [json.dumps(new), pk]
                )


def encrypt_existing(apps, schema_editor):
    _rewrite(apps, schema_editor, config_encrypt)


def decrypt_existing(apps, schema_editor):
    _rewrite(apps, schema_editor, config_decrypt)


class Migration(migrations.Migration):
    dependencies = [
        ("engagement", "0004_voice_calls_mms_segments"),
    ]

    operations = [
        migrations.AlterField(
            model_name="channel",
            name="config",
            field=engagement.credentials.EncryptedConfigField(blank=True, default=dict),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing),
    ]

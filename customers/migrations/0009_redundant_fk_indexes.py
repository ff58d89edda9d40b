"""Drop the foreign keys' own indexes where another index leads with the same column (issue 10:
fewer index writes per imported or first-contact customer, identity and consent row).

Only the indexes go: the constraints stay as they are (an AlterField would drop and re-add each
foreign key, validating the whole table again)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0008_search_trigram"),
        ("engagement", "0011_api_key_scopes_idempotency"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "customers_consentevent_customer_id_dd315eae"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "customers_consentevent_customer_id_dd315eae" ON "customers_consentevent" ("customer_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "customers_customer_merged_into_id_2994ddb6"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "customers_customer_merged_into_id_2994ddb6" ON "customers_customer" ("merged_into_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "customers_customer_workspace_id_9c4ede06"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "customers_customer_workspace_id_9c4ede06" ON "customers_customer" ("workspace_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "customers_identity_customer_id_b1e21f37"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "customers_identity_customer_id_b1e21f37" ON "customers_identity" ("customer_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "customers_identity_workspace_id_6fb47481"',
                    reverse_sql='CREATE INDEX IF NOT EXISTS "customers_identity_workspace_id_6fb47481" ON "customers_identity" ("workspace_id")',
                ),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="consentevent",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="consent_events",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="merged_into",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="merged_customers",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="customers",
                        to="engagement.workspace",
                    ),
                ),
                migrations.AlterField(
                    model_name="identity",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="identities",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="identity",
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="engagement.workspace",
                    ),
                ),
            ],
        ),
    ]

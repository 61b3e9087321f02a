"""Indexes that keep pages flat as the data grows (bench/scaling, docs/benchmarks.md):
an account's latest postings and an investor's latest primary orders (the portfolio),
and one status of primary and trade orders newest first (the back office's filtered
lists), which replaces the single-column status index."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0007_distributions")]

    operations = [
        migrations.AlterField(
            model_name="primaryorder",
            name="status",
            field=models.CharField(
                choices=[
                    ("reserved", "Reserved"),
                    ("settled", "Settled"),
                    ("failed", "Settlement failed"),
                    ("refunded", "Refunded"),
                ],
                default="reserved",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="tradeorder",
            name="status",
            field=models.CharField(
                choices=[("open", "Open"), ("filled", "Filled"), ("cancelled", "Cancelled"), ("expired", "Expired")],
                default="open",
                max_length=16,
            ),
        ),
        migrations.AddIndex(
            model_name="posting",
            index=models.Index(fields=["account", "entry"], name="posting_account_entry_idx"),
        ),
        migrations.AddIndex(
            model_name="primaryorder",
            index=models.Index(fields=["investor", "created_at"], name="primary_order_investor_idx"),
        ),
        migrations.AddIndex(
            model_name="primaryorder",
            index=models.Index(fields=["status", "id"], name="primary_order_status_idx"),
        ),
        migrations.AddIndex(
            model_name="tradeorder",
            index=models.Index(fields=["status", "id"], name="trade_order_status_idx"),
        ),
    ]

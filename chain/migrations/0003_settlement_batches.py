from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chain", "0002_before_sign"),
    ]

    operations = [
        migrations.AddField(
            model_name="chainaccount",
            name="opted_in_asset_ids",
            field=models.JSONField(blank=True, default=list, editable=False),
        ),
        migrations.AddField(
            model_name="chaintransaction",
            name="lease_txids",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="chaintransaction",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]

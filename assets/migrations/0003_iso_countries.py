"""The asset's country becomes an ISO 3166-1 country field (django-countries) and the
allow-list of investor countries is validated against the same list.

Existing data keeps its codes. Codes are upper-cased and stripped (" nl" -> "NL"); a
stored value that is not an ISO 3166-1 code after that is kept exactly as it was (never
blanked or guessed) and listed on the migration's output, so staff can correct it: the
issuer's form then asks for a real country before the asset can be saved again, and the
back office refuses to save an allow-list with an unknown code."""

import django_countries.fields
from django.db import migrations, models
from django_countries import countries

import assets.models


def normalise_countries(apps, schema_editor):
    Asset = apps.get_model("assets", "Asset")
    kept = []
    for asset in Asset.objects.all().only("pk", "name", "country", "allowed_countries").iterator():
        changed = []
        value = str(asset.country or "")  # a Country object: its str() is the stored text
        code = value.strip().upper()
        if code in countries:
            if code != value:
                asset.country = code
                changed.append("country")
        elif value:
            kept.append(f"asset {asset.pk} ({asset.name}): country {value!r}")
        if isinstance(asset.allowed_countries, list):
            codes = []
            for raw in asset.allowed_countries:
                norm = raw.strip().upper() if isinstance(raw, str) else raw
                if isinstance(norm, str) and norm in countries:
                    if norm not in codes:
                        codes.append(norm)
                else:
                    kept.append(f"asset {asset.pk} ({asset.name}): allowed country {raw!r}")
                    codes.append(raw)
            if codes != asset.allowed_countries:
                asset.allowed_countries = codes
                changed.append("allowed_countries")
        if changed:
            asset.save(update_fields=changed)
    for line in kept:
        print(f"\n  Not an ISO 3166-1 code, kept unchanged for staff to correct: {line}")


class Migration(migrations.Migration):
    dependencies = [
        ("assets", "0002_currency_choices"),
    ]

    operations = [
        migrations.AlterField(
            model_name="asset",
            name="allowed_countries",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="ISO 3166-1 codes of investor residence allowed; empty means any not blocked.",
                validators=[assets.models.validate_country_codes],
            ),
        ),
        migrations.AlterField(
            model_name="asset",
            name="country",
            field=django_countries.fields.CountryField(
                blank=True, help_text="The country where the asset is (ISO 3166-1).", max_length=2
            ),
        ),
        migrations.RunPython(normalise_countries, migrations.RunPython.noop),
    ]

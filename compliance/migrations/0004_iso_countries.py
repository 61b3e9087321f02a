"""Nationality and country of residence become django-countries fields (ISO 3166-1).

The columns stay two-letter text and keep their codes: they already held only codes
from the same ISO list (the old field's choices). A stored value that is not an ISO
3166-1 code is kept exactly as it was (never blanked or guessed) and listed on the
migration's output for staff to correct; lower-case or padded codes are normalised."""

import django_countries.fields
from django.db import migrations
from django_countries import countries


def normalise_countries(apps, schema_editor):
    KycApplication = apps.get_model("compliance", "KycApplication")
    kept = []
    for app in KycApplication.objects.all().only("pk", "nationality", "country_of_residence").iterator():
        changed = []
        for name in ("nationality", "country_of_residence"):
            value = str(getattr(app, name) or "")  # a Country object: its str() is the stored text
            code = value.strip().upper()
            if code in countries:
                if code != value:
                    setattr(app, name, code)
                    changed.append(name)
            elif value:
                kept.append(f"KYC application {app.pk}: {name} {value!r}")
        if changed:
            app.save(update_fields=changed)
    for line in kept:
        print(f"\n  Not an ISO 3166-1 code, kept unchanged for staff to correct: {line}")


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0003_kyc_expiry_reminder"),
    ]

    operations = [
        migrations.AlterField(
            model_name="kycapplication",
            name="country_of_residence",
            field=django_countries.fields.CountryField(blank=True, max_length=2),
        ),
        migrations.AlterField(
            model_name="kycapplication",
            name="nationality",
            field=django_countries.fields.CountryField(blank=True, max_length=2),
        ),
        migrations.RunPython(normalise_countries, migrations.RunPython.noop),
    ]

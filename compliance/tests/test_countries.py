"""Defect 3 of issue 15: nationality and country of residence are django-countries
fields; a name typed instead of a code is refused, the eligibility message names the
country."""

import pytest
from django.core.exceptions import ValidationError

from compliance.countries import country_name
from compliance.models import KycApplication
from compliance.tests.factories import KycApplicationFactory

pytestmark = pytest.mark.django_db


def test_kyc_countries_are_iso_country_fields():
    app = KycApplicationFactory(nationality="NL", country_of_residence="CH")
    app.refresh_from_db()
    assert (app.nationality.name, app.country_of_residence.name) == ("Netherlands", "Switzerland")
    app.nationality = "Netherlands"
    with pytest.raises(ValidationError) as exc:
        app.full_clean()
    assert "nationality" in exc.value.message_dict


def test_the_kyc_form_offers_the_iso_list():
    from compliance.forms import KycApplicationForm

    form = KycApplicationForm(instance=KycApplication())
    choices = dict(form.fields["country_of_residence"].choices)
    assert choices["NE"] == "Niger" and choices["NL"] == "Netherlands"


def test_country_names_for_messages():
    assert country_name("nl") == "Netherlands"
    assert country_name("QQ") == "QQ" and country_name("") == ""

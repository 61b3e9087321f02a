"""Country names for messages: ISO 3166-1 alpha-2 codes, from django-countries (the same
list the country fields of KYC applications and assets offer)."""

from django_countries import countries


def country_name(code: str) -> str:
    """The English name of an ISO code; an unknown code is shown as it is."""
    code = str(code or "").upper()
    return str(countries.name(code)) or code if code else ""

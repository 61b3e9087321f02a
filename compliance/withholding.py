"""Withholding tax on income distributions: the rate for each investor.

Compliance sets a rate per investor (`TaxProfile.withholding_rate_bps`); without one, the
default comes from the table below by country of tax residence, at the treaty rate when a
treaty form is on file. The table is the platform's policy, not tax advice; compliance
keeps it current (docs/distributions.md). Rates in basis points (1500 = 15 %)."""

from dataclasses import dataclass

from .models import KycApplication, TaxProfile

# Country: (rate without a treaty form, rate with one). Unlisted countries and investors
# without a tax profile: DEFAULT_RATES.
DEFAULT_RATES = (3000, 3000)
COUNTRY_RATES: dict[str, tuple[int, int]] = {
    "US": (0, 0),  # US persons: reported, not withheld (backup withholding is not modelled)
    "GB": (0, 0),
    "IE": (2500, 1500),
    "DE": (2638, 1500),
    "FR": (2800, 1500),
    "NL": (1500, 1500),
    "BE": (3000, 1500),
    "LU": (1500, 1500),
    "CH": (3500, 1500),
    "AT": (2750, 1500),
    "ES": (1900, 1500),
    "IT": (2600, 1500),
    "SE": (3000, 1500),
    "DK": (2700, 1500),
    "NO": (2500, 1500),
    "FI": (3000, 1500),
    "PT": (2800, 1500),
    "PL": (1900, 1500),
    "SG": (0, 0),
    "HK": (0, 0),
    "CA": (2500, 1500),
    "AU": (3000, 1500),
    "JP": (2042, 1000),
}


@dataclass(frozen=True)
class WithholdingRate:
    rate_bps: int
    source: str  # "set by compliance" | "default for XX" | "default"


def default_rate_bps(country: str, treaty_form_on_file: bool) -> int:
    rates = COUNTRY_RATES.get((country or "").upper(), DEFAULT_RATES)
    return rates[1] if treaty_form_on_file else rates[0]


def rate_for_profile(profile: TaxProfile | None) -> WithholdingRate:
    if profile is None:
        return WithholdingRate(DEFAULT_RATES[0], "default (no tax profile)")
    if profile.withholding_rate_bps is not None:
        return WithholdingRate(profile.withholding_rate_bps, "set by compliance")
    country = str(profile.tax_residence or "")
    return WithholdingRate(
        default_rate_bps(country, profile.treaty_form_on_file),
        f"default for {country or 'unknown country'}{' with treaty form' if profile.treaty_form_on_file else ''}",
    )


def withholding_rates_for_many(investor_ids) -> dict[int, WithholdingRate]:
    """Two queries for any number of investors. Without a tax profile, the country of
    residence of the approved KYC application stands for the tax residence (no treaty
    form); without either, the highest default."""
    ids = list(investor_ids)
    profiles = {p.user_id: p for p in TaxProfile.objects.filter(user_id__in=ids)}
    residence: dict[int, str] = {}
    without = [uid for uid in ids if uid not in profiles]
    if without:
        for user_id, country in (
            KycApplication.objects.filter(user_id__in=without, status=KycApplication.Status.APPROVED)
            .order_by("user_id", "-created_at", "-pk")
            .values_list("user_id", "country_of_residence")
        ):
            residence.setdefault(user_id, str(country or ""))
    rates = {}
    for uid in ids:
        if uid in profiles or not residence.get(uid):
            rates[uid] = rate_for_profile(profiles.get(uid))
        else:
            country = residence[uid]
            rates[uid] = WithholdingRate(default_rate_bps(country, False), f"default for {country} (KYC residence)")
    return rates


def withheld_for(gross_minor: int, rate_bps: int) -> int:
    """Tax withheld from a gross payment: basis points, rounded DOWN to the minor unit
    (in the investor's favour), integers only."""
    return gross_minor * rate_bps // 10_000

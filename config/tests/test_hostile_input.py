"""Hostile input never gives a 500: every form field and URL parameter that parses a
number, a date, a uuid or an id answers with a clear message (a 4xx, or the form again
with its error) and changes nothing in the database.

The table lists who is signed in, the method, the URL and the field. A field of None
means the value goes into the URL path ({value}); a GET row puts it in the query string;
a POST row sends a valid form with only that field replaced."""

import dataclasses
import html
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
from django.contrib.messages import constants as message_levels

from accounts.tests.factories import UserFactory
from assets.models import Asset, AssetDocument
from assets.tests.factories import AssetFactory, IssuerFactory
from chain.models import ChainAccount, ChainTransaction
from compliance.models import AuditEntry, InvestorProfile, KycApplication
from compliance.tests.factories import KycApplicationFactory, OfficerFactory
from marketplace.models import Deposit, Holding, JournalEntry, Offering, Posting, PrimaryOrder, Withdrawal
from marketplace.services import deposit_record
from marketplace.tests.factories import OfferingFactory, StaffFactory, verified_investor

pytestmark = pytest.mark.django_db

HOSTILE = {
    "huge exponent": "1e309",
    "big exponent": "1e30",
    "tiny exponent": "1e-30",
    "exponent": "2e2",
    "upper-case exponent": "1E+3",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "minus zero": "-0",
    "beyond bigint": "9" * 30,
    "Arabic-Indic digits": "١٢٣",
    "fullwidth digits": "１２３",
    "superscript": "²",
    "circled": "①",
    "empty": "",
    "10,000 characters": "9" * 10_000,
    "NUL": "\x00",
    "NUL inside": "1\x002",
}
# Free text: numbers are fine searches, NUL is not (PostgreSQL refuses it in text).
TEXT_HOSTILE = {"NUL": "\x00", "NUL inside": "a\x00b"}

KYC_DETAILS = {
    "legal_name": "Jane Walker",
    "date_of_birth": "1990-01-01",
    "nationality": "FR",
    "country_of_residence": "FR",
    "address": "2 Rue X, Paris",
    "investor_category": "retail",
    "self_certified": "on",
    "save": "1",
}
ASSET_FORM = {
    "name": "Harbour Building",
    "category": "real_estate",
    "description": "Offices.",
    "location": "Rotterdam, NL",
    "country": "NL",
    "valuation": "2500000.00",
    "valuation_date": "2026-06-30",
    "currency": "EUR",
    "total_fractions": "10000",
    "unit_name": "HARB",
    "asset_name": "Harbour Building",
    "price_per_fraction": "250.00",
    "fractions_for_sale": "8000",
    "min_purchase": "1",
    "max_purchase": "",
}


@dataclass(frozen=True)
class Row:
    who: str  # a key of the `world` fixture, or "anonymous"
    method: str
    url: str  # formatted with the world's ids, and {value} for path parameters
    field: str | None
    data: dict = dataclasses.field(default_factory=dict)  # the valid rest of a POST form
    legit: tuple = ()  # values that are valid input here (empty for an optional field)
    values: dict = dataclasses.field(default_factory=lambda: HOSTILE)

    def __str__(self):
        return f"{self.who} {self.method} {self.url} {self.field or 'path'}"


OPTIONAL = ("",)
ROWS = [
    # Catalogue filters (public GET form: the page again with the error above the results).
    Row("anonymous", "GET", "/assets/", "price_min", legit=OPTIONAL),
    Row("anonymous", "GET", "/assets/", "price_max", legit=OPTIONAL),
    Row("anonymous", "GET", "/assets/", "page", legit=OPTIONAL),
    Row("anonymous", "GET", "/assets/", "q", values=TEXT_HOSTILE),
    Row("anonymous", "GET", "/assets/", "location", values=TEXT_HOSTILE),
    # Path parameters: uuids, hex ids and integer ids.
    Row("anonymous", "GET", "/assets/m/{value}.json", None),
    Row("anonymous", "GET", "/assets/{value}/", None),
    Row("anonymous", "GET", "/market/offerings/{value}/", None),
    Row("investor", "GET", "/market/orders/{value}/", None),
    Row("investor", "GET", "/compliance/kyc/{value}/", None),
    Row("investor", "GET", "/market/portfolio/holdings/{value}/chain", None),
    Row("officer", "POST", "/backoffice/compliance/kycapplication/{value}/decide/", None, data={"decision": "approve"}),
    Row(
        "staff",
        "POST",
        "/backoffice/marketplace/withdrawal/{value}/decide/",
        None,
        data={"text": "BANK-1", "_pay": "1"},
    ),
    Row(
        "staff",
        "POST",
        "/backoffice/marketplace/primaryorder/{value}/resolve/",
        None,
        data={"text": "note", "_refund": "1"},
    ),
    Row("staff", "GET", "/backoffice/assets/asset/{value}/review/", None),
    Row("staff", "POST", "/backoffice/assets/asset/{value}/retry-mint/", None),
    Row("staff", "GET", "/backoffice/assets/asset/{value}/change/", None),
    # Query parameters of HTMX fragments.
    Row("anonymous", "GET", "/market/offerings/{offering_asset}/quote", "quantity"),
    Row("investor", "GET", "/market/offerings/{offering_asset}/quote", "quantity"),
    Row("staff", "GET", "/backoffice/marketplace/primaryorder/", "q", values=TEXT_HOSTILE),
    Row("officer", "GET", "/backoffice/compliance/kycapplication/", "q", values=TEXT_HOSTILE),
    # Forms.
    Row("investor", "POST", "/market/offerings/{offering_asset}/buy", "quantity", data={"idempotency_key": "k-1"}),
    Row("investor", "POST", "/market/withdrawals/new", "amount", data={"currency": "EUR"}),
    Row("newcomer", "POST", "/compliance/kyc/", "date_of_birth", data=KYC_DETAILS, legit=OPTIONAL),  # a draft
    *[
        Row("issuer", "POST", url, name, data=ASSET_FORM, legit=OPTIONAL if optional else ())
        for url in ("/assets/issuer/new", "/assets/issuer/{draft}/edit")
        for name, optional in [
            ("valuation", False),
            ("price_per_fraction", False),
            ("total_fractions", False),
            ("fractions_for_sale", False),
            ("min_purchase", False),
            ("max_purchase", True),
            ("valuation_date", False),
            ("offering_opens_at", True),
            ("offering_closes_at", True),
        ]
    ],
    Row(
        "staff",
        "POST",
        "/backoffice/marketplace/deposit/add/",
        "amount",
        data={"investor": "{investor_pk}", "currency": "EUR", "bank_reference": "HOSTILE-1"},
    ),
    Row(
        "staff",
        "POST",
        "/backoffice/marketplace/deposit/add/",
        "investor",
        data={"amount": "10.00", "currency": "EUR", "bank_reference": "HOSTILE-2"},
    ),
]
ADMIN_FORM_ROWS = [
    *[
        Row(
            "staff",
            "POST",
            "/backoffice/marketplace/offering/{offering_pk}/change/",
            name,
            legit={"max_purchase": OPTIONAL, "fee_bps": ("-0",)}.get(name, ()),
        )
        for name in ("price_per_fraction_minor", "fractions_for_sale", "min_purchase", "max_purchase", "fee_bps")
    ],
    *[
        Row(
            "staff",
            "POST",
            "/backoffice/assets/asset/{draft_pk}/change/",
            name,
            legit=("", "-0") if name in ("max_holding", "max_holders") else ("-0",),
        )
        for name in ("min_holding", "max_holding", "max_holders", "lockup_days")
    ],
]


def _cases(rows):
    for row in rows:
        for label, value in row.values.items():
            if value not in row.legit:
                yield pytest.param(row, value, id=f"{row} [{label}]")


@pytest.fixture
def world(platform_accounts):
    staff = StaffFactory()
    investor = verified_investor()
    deposit_record(investor=investor, amount_minor=10**12, currency="EUR", bank_reference="SEED", actor=staff)
    issuer = IssuerFactory()
    draft = AssetFactory(issuer=issuer)
    offering = OfferingFactory()
    KycApplicationFactory(submitted=True)
    return {
        "users": {
            "staff": staff,
            "investor": investor,
            "issuer": issuer,
            "officer": OfficerFactory(),
            "newcomer": UserFactory(),
            "anonymous": None,
        },
        "ids": {
            "draft": draft.public_id,
            "draft_pk": draft.pk,
            "offering_asset": offering.asset.public_id,
            "offering_pk": offering.pk,
            "investor_pk": investor.pk,
        },
    }


@pytest.fixture
def platform_accounts(db):
    from chain.services import platform_accounts_ensure

    platform_accounts_ensure()


ERROR_TEXT = re.compile(r'class="(?:flash flash-error|errorlist)"[^>]*>([^<]+)<')
MODELS = [
    Asset,
    AssetDocument,
    Offering,
    PrimaryOrder,
    Holding,
    Deposit,
    Withdrawal,
    JournalEntry,
    Posting,
    KycApplication,
    InvestorProfile,
    AuditEntry,
    ChainAccount,
    ChainTransaction,
]


def _database():
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in MODELS}


def _error_messages(response) -> list[str]:
    """What the page tells the user went wrong: form errors, error flashes, fragment errors."""
    found: list[str] = []
    for context in response.context or []:
        for key in ("form", "adminform"):
            form = context.get(key)
            form = getattr(form, "form", form)
            if form is not None and hasattr(form, "errors"):
                found += [m for errors in form.errors.values() for m in errors]
        found += [str(m) for m in context.get("errors") or [] if isinstance(m, str)]
        found += list(context.get("quote_errors") or [])
        storage = context.get("messages")
        if storage is not None:
            found += [m.message for m in storage if m.level >= message_levels.WARNING]
    # Fragments (the catalogue's cached results, HTMX partials) are not in response.context.
    found += [html.unescape(m).strip() for m in ERROR_TEXT.findall(response.content.decode())]
    return found


def _admin_form_data(client, url) -> dict:
    """The admin change form exactly as the page shows it (the valid starting point)."""
    context = client.get(url).context
    form = context["adminform"].form if "adminform" in context else context["form"]  # service form pages
    data = {}
    for bound in form:
        widget, value = bound.field.widget, bound.value()
        if hasattr(widget, "decompress"):
            parts = value if isinstance(value, list) else widget.decompress(value)
            for index, (sub, part) in enumerate(zip(widget.widgets, parts, strict=True)):
                data[f"{bound.html_name}_{index}"] = sub.format_value(part) or ""
        elif getattr(widget, "input_type", None) == "checkbox":
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else value
    for inline in context.get("inline_admin_formsets", []):
        management = inline.formset.management_form
        data.update({management[name].html_name: management[name].value() for name in management.fields})
    return data


def _request(client, world, row: Row, value: str):
    user = world["users"][row.who]
    if user is not None:
        client.force_login(user)
    ids = world["ids"]
    url = row.url.format(value=quote(value, safe="") if row.field is None else "{value}", **ids)
    if row.method == "GET":
        query = f"?{urlencode({row.field: value})}" if row.field else ""
        return client.get(url + query, follow=True)
    if row in ADMIN_FORM_ROWS:
        data = _admin_form_data(client, url)
    else:
        data = {name: str(v).format(**ids) for name, v in row.data.items()}
    if row.field:
        data[row.field] = value
    return client.post(url, data, follow=True)


@pytest.mark.parametrize("row, value", [*_cases(ROWS), *_cases(ADMIN_FORM_ROWS)])
def test_hostile_value_is_refused_with_a_message_and_changes_nothing(client, world, row, value):
    before = _database()

    response = _request(client, world, row, value)

    body = response.content.decode()
    assert response.status_code != 500
    if 400 <= response.status_code < 500:
        assert "<h1>" in body or _error_messages(response), "a 4xx without a message"
    else:
        assert response.status_code == 200
        messages = _error_messages(response)
        assert messages, "the page names no error"
        assert any(html.escape(m).lower() in body.lower() for m in messages), messages
    assert _database() == before


@pytest.mark.parametrize(
    "row",
    [
        r
        for r in ROWS
        if r.method == "POST" and r.field in ("amount", "valuation", "total_fractions", "quantity", "investor")
    ]
    + [r for r in ADMIN_FORM_ROWS if r.field == "min_purchase"],
    ids=str,
)
@pytest.mark.parametrize("digits", ["١٢٣", "１２３", "۱۲۳"])
def test_digits_of_other_scripts_are_refused_by_name(client, world, row, digits):
    response = _request(client, world, row, digits)

    assert "Use the digits 0-9." in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/assets/?price_min=1e30",
        "/assets/?price_max=1e309",
        "/assets/?q=%00",
        "/assets/m/not-a-uuid.json",
        "/assets/m/%00.json",
    ],
)
def test_public_urls_answer_without_a_server_error(client, path):
    response = client.get(path)
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert "flash-error" in response.content.decode()

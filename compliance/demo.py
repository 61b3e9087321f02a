"""Demo KYC data for `make run` (called by accounts' seed_demo): the sample sanctions list,
three verified investors (one of them the demo's main login), an unverified one and a sanctions-flagged application waiting for
two reviewers. Idempotent. Everything goes through the real services, so the audit log
and the custodial account are what production would produce."""

import datetime
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from .models import KycApplication, SanctionsEntry
from .screening import alt_csv_parse, sdn_csv_parse
from .services import (
    kyc_application_approve,
    kyc_application_save,
    kyc_application_start,
    kyc_application_submit,
    sanctions_list_replace,
)

DATA = Path(__file__).resolve().parent / "data"
DEMO_PDF = b"%PDF-1.4\n% demo identity document\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DEMO_PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

VERIFIED = "investor@demo.rwa"
# Two more verified investors who trade on the demo's secondary market
# (marketplace/management/commands/seed_demo_book.py): (email, country, category).
TRADERS = [("nora@demo.rwa", "NL", "retail"), ("otto@demo.rwa", "DE", "accredited")]
# Verified now; her KYC lapses in the distributions demo, so her payout is held.
LAPSING = ("lena@demo.rwa", "SE", "retail")
UNVERIFIED = "una@demo.rwa"
FLAGGED = "viktor@demo.rwa"
DEMO_KYC_USERS = [(UNVERIFIED, "Una Unverified"), (FLAGGED, "Viktor Drakov")]


def _submit(user, *, legal_name, country, category) -> KycApplication:
    app = kyc_application_start(user=user)
    kyc_application_save(
        application=app,
        user=user,
        data={
            "legal_name": legal_name,
            "date_of_birth": datetime.date(1980, 3, 14),
            "nationality": country,
            "country_of_residence": country,
            "address": "1 Demo Street, Demo City",
            "investor_category": category,
            "self_certified": True,
        },
        identity_document=SimpleUploadedFile("passport.pdf", DEMO_PDF),
        proof_of_address=SimpleUploadedFile("utility-bill.png", DEMO_PNG),
    )
    return kyc_application_submit(application=app, user=user)


def kyc_demo_seed(*, users: dict, reviewer) -> list[str]:
    """`users`: email -> User of the demo accounts. Returns lines describing what exists."""
    if not SanctionsEntry.objects.exists():
        entries = sdn_csv_parse((DATA / "sdn_sample.csv").read_text())
        entries += alt_csv_parse((DATA / "alt_sample.csv").read_text(), {e.ent_num: e for e in entries})
        sanctions_list_replace(entries=entries, rescreen=False)

    for email, country, category in [(VERIFIED, "GB", "accredited"), *TRADERS, LAPSING]:
        verified = users[email]
        if not KycApplication.objects.filter(user=verified, status=KycApplication.Status.APPROVED).exists():
            app = _submit(verified, legal_name=verified.full_name or email, country=country, category=category)
            kyc_application_approve(application=app, reviewer=reviewer, reason="Demo: documents checked")

    flagged = users[FLAGGED]
    if not KycApplication.objects.filter(user=flagged).exists():
        _submit(flagged, legal_name="Viktor Drakov", country="CY", category="retail")

    return [
        f"  {VERIFIED:<24} KYC verified (accredited, GB)",
        *(
            f"  {email:<24} KYC verified ({category}, {country}); trades on the demo order book"
            for email, country, category in TRADERS
        ),
        f"  {LAPSING[0]:<24} KYC verified, then lapsed by the distributions demo: her payout is held",
        f"  {UNVERIFIED:<24} no KYC yet",
        f"  {FLAGGED:<24} KYC flagged by sanctions screening: needs two reviewers",
    ]

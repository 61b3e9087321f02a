"""User uploads never run in our origin: PDFs with scripts or automatic actions are refused
at upload (KYC and data room), and every private file is served as a download with nosniff
and a sandbox CSP, whatever the query string asks."""

import zlib

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.roles import ADMIN
from accounts.tests.factories import UserFactory
from assets.demo_documents import pdf_document
from assets.models import Asset, AssetDocument
from assets.tests.factories import AssetFactory, IssuerFactory, make_document
from compliance.models import KycDocument
from compliance.tests.factories import PNG_BYTES, KycApplicationFactory, OfficerFactory, add_document
from config.pdf_scan import MAX_DECOMPRESSED_BYTES, PdfUninspectable, pdf_active_names
from config.uploads import content_disposition_attachment

pytestmark = pytest.mark.django_db

CLEAN_PDF = pdf_document("Appraisal", ["Valuation 3,200,000 EUR", "Rating Aa2/AA (stable), see /JS in a string"])
OPEN_ACTION_PDF = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    b"3 0 obj\n<< /S /JavaScript /JS (app.alert\\(document.cookie\\)) >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
HEX_ESCAPED_PDF = b"%PDF-1.4\n1 0 obj\n<</Type/Catalog/Open#41ction<</S/Java#53cript/J#53(x)>>>>\nendobj\n%%EOF\n"


def _with_stream(dictionary: bytes, body: bytes) -> bytes:
    return (
        b"%PDF-1.5\n4 0 obj\n"
        + dictionary.replace(b"LEN", str(len(body)).encode())
        + b"\nstream\n"
        + body
        + b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )


HIDDEN_OBJECT = b"5 0 << /Type /Catalog /OpenAction << /S /JavaScript /JS (app.alert\\(1\\)) >> >>"
OBJECT_STREAM_PDF = _with_stream(
    b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length LEN >>", zlib.compress(HIDDEN_OBJECT)
)


@pytest.fixture(autouse=True)
def _private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "private"},
        },
    }


def _stored_files(tmp_path):
    return [p for p in (tmp_path / "private").rglob("*") if p.is_file()]


# The scan, as a table --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content, names",
    [
        (CLEAN_PDF, []),
        (OPEN_ACTION_PDF, ["JS", "JavaScript", "OpenAction"]),
        (HEX_ESCAPED_PDF, ["JS", "JavaScript", "OpenAction"]),
        (OBJECT_STREAM_PDF, ["JS", "JavaScript", "OpenAction"]),
        # A Flate stream that does not say it holds objects is read all the same.
        (
            _with_stream(b"<< /Filter /FlateDecode /Length LEN >>", zlib.compress(HIDDEN_OBJECT)),
            ["JS", "JavaScript", "OpenAction"],
        ),
        (_with_stream(b"<< /Fi#6Cter [/Fl] >>", zlib.compress(b"<< /AA << /O 6 0 R >> >>")), ["AA"]),
        (
            b"%PDF-1.4\n1 0 obj << /Names << /EmbeddedFiles 2 0 R >> /AcroForm << /XFA 3 0 R >> >> endobj",
            ["EmbeddedFiles", "XFA"],
        ),
        (
            b"%PDF-1.4\n1 0 obj << /S /Launch /F (calc.exe) >> << /S /SubmitForm >> << /S /ImportData >> << /S /GoToR >>"
            b" << /Type /EmbeddedFile >> << /Subtype /RichMedia >> endobj",
            ["EmbeddedFile", "GoToR", "ImportData", "Launch", "RichMedia", "SubmitForm"],
        ),
        # /OpenAction that only opens a page (LaTeX, office suites) runs nothing; any other is refused.
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog /OpenAction [3 0 R /FitH null] >> endobj", []),
        (
            _with_stream(
                b"<< /Type /ObjStm /N 2 /First 10 /Filter /FlateDecode >>",
                zlib.compress(b"1 0 9 38 \n<< /Type /Catalog /OpenAction 9 0 R >> << /D [3 0 R /Fit] /S /GoTo >>"),
            ),
            [],
        ),
        (
            b"%PDF-1.4\n1 0 obj << /OpenAction 9 0 R >> endobj 9 0 obj << /S /URI /URI (https://evil.example) >> endobj",
            ["OpenAction"],
        ),
        (b"%PDF-1.4\n1 0 obj << /OpenAction 9 0 R >> endobj", ["OpenAction"]),
        # Names only count as names: not inside strings, comments, or longer names.
        (
            b"%PDF-1.4\n% /OpenAction in a comment\n1 0 obj << /Title (/JavaScript) /JSX 1 /AAA 2 /OpenActions 3 >> endobj",
            [],
        ),
        # A hex string cannot hide what follows it.
        (b"%PDF-1.4\n1 0 obj << /K <12%> /OpenAction 2 0 R >> endobj", ["OpenAction"]),
        # Image bytes are data, not objects, even when they happen to spell a name.
        (
            _with_stream(
                b"<< /Type /XObject /Subtype /Image /Filter /DCTDecode /Length LEN >>", b"\xff\xd8/JS /AA\x00"
            ),
            [],
        ),
        # A fake stream keyword inside a string does not hide the objects after it.
        (
            b"%PDF-1.4\n1 0 obj (<< /Subtype /Image >> stream\n) endobj 2 0 obj << /OpenAction 3 0 R >> endobj\nendstream",
            ["OpenAction"],
        ),
        # A /Length that stops early leaves the rest to the scan.
        (
            _with_stream(b"<< /Subtype /Image /Length 2 >>", b"xx\nendobj 6 0 obj << /OpenAction 7 0 R >>"),
            ["OpenAction"],
        ),
    ],
)
def test_scan_finds_active_names_where_a_viewer_would_read_them(content, names):
    assert pdf_active_names(content) == names


@pytest.mark.parametrize(
    "dictionary, body",
    [
        (b"<< /Type /ObjStm /N 1 /First 4 /Filter /ASCIIHexDecode >>", HIDDEN_OBJECT.hex().encode()),
        (
            b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >> >>",
            zlib.compress(HIDDEN_OBJECT),
        ),
        (b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>", b"not zlib at all"),
        (b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode >>", zlib.compress(b" " * (MAX_DECOMPRESSED_BYTES + 1))),
    ],
)
def test_object_streams_we_cannot_read_make_the_file_uninspectable(dictionary, body):
    with pytest.raises(PdfUninspectable):
        pdf_active_names(_with_stream(dictionary, body))


# Refused at upload, nothing stored --------------------------------------------------------

ACTIVE_UPLOADS = [
    pytest.param(OPEN_ACTION_PDF, "(/JS, /JavaScript, /OpenAction)", id="open-action"),
    pytest.param(HEX_ESCAPED_PDF, "(/JS, /JavaScript, /OpenAction)", id="hex-escaped"),
    pytest.param(OBJECT_STREAM_PDF, "(/JS, /JavaScript, /OpenAction)", id="flate-object-stream"),
]


def _kyc_details(**files):
    return {
        "legal_name": "Jane Walker",
        "date_of_birth": "1990-01-01",
        "nationality": "FR",
        "country_of_residence": "FR",
        "address": "2 Rue X, Paris",
        "investor_category": "retail",
        "self_certified": "on",
        "save": "1",
        **files,
    }


@pytest.mark.parametrize("content, listed", ACTIVE_UPLOADS)
def test_kyc_upload_refuses_a_pdf_with_active_content(client, tmp_path, content, listed):
    client.force_login(UserFactory())

    response = client.post(
        reverse("compliance:kyc_edit"), _kyc_details(identity_document=SimpleUploadedFile("passport.pdf", content))
    )

    html = response.content.decode()
    assert f"This PDF contains scripts or embedded actions {listed}, which we do not accept." in html
    assert "Print it to PDF again without them and upload that." in html
    assert KycDocument.objects.count() == 0 and _stored_files(tmp_path) == []


@pytest.mark.parametrize("content, listed", ACTIVE_UPLOADS)
def test_data_room_upload_refuses_a_pdf_with_active_content(client, tmp_path, content, listed):
    asset = AssetFactory()
    client.force_login(asset.issuer)

    response = client.post(
        reverse("assets:document_upload", args=[asset.public_id]),
        {"kind": "appraisal", "title": "Appraisal", "file": SimpleUploadedFile("appraisal.pdf", content)},
    )

    assert response.status_code == 422
    assert f"This PDF contains scripts or embedded actions {listed}" in response.content.decode()
    assert AssetDocument.objects.count() == 0 and _stored_files(tmp_path) == []


def test_an_uninspectable_pdf_is_refused_with_its_reason(client, tmp_path):
    asset = AssetFactory()
    client.force_login(asset.issuer)
    content = _with_stream(b"<< /Type /ObjStm /N 1 /First 4 /Filter /LZWDecode >>", b"\x80\x0b\x60\x50")

    response = client.post(
        reverse("assets:document_upload", args=[asset.public_id]),
        {"kind": "appraisal", "title": "Appraisal", "file": SimpleUploadedFile("appraisal.pdf", content)},
    )

    assert response.status_code == 422
    assert "so we cannot check it for scripts" in response.content.decode()
    assert AssetDocument.objects.count() == 0 and _stored_files(tmp_path) == []


def test_clean_pdfs_are_accepted_at_both_uploads(client, tmp_path):
    asset = AssetFactory()
    client.force_login(asset.issuer)
    response = client.post(
        reverse("assets:document_upload", args=[asset.public_id]),
        {"kind": "appraisal", "title": "Appraisal", "file": SimpleUploadedFile("appraisal.pdf", CLEAN_PDF)},
    )
    assert response.status_code == 200 and AssetDocument.objects.count() == 1

    client.force_login(UserFactory())
    client.post(
        reverse("compliance:kyc_edit"), _kyc_details(identity_document=SimpleUploadedFile("passport.pdf", CLEAN_PDF))
    )
    assert KycDocument.objects.count() == 1 and len(_stored_files(tmp_path)) == 2


# Served as downloads only ----------------------------------------------------------------


def _assert_download(response, filename: str):
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response["Cache-Control"].startswith("private, no-store")


def _get(client, user, url):
    client.force_login(user)
    return client.get(url)


def test_kyc_documents_are_downloads_for_the_investor_and_the_back_office(client):
    app = KycApplicationFactory(submitted=True)
    pdf, png = add_document(app), add_document(app, KycDocument.Kind.PROOF_OF_ADDRESS, PNG_BYTES)
    officer = OfficerFactory()

    # The factory names the picture "….pdf"; the download carries the extension of the content.
    for doc, filename in ((pdf, "identity.pdf"), (png, "proof_of_address.png")):
        for user, url in (
            (app.user, reverse("compliance:kyc_document", args=[doc.public_id])),
            (officer, reverse("admin:compliance_kycapplication_document", args=[doc.public_id])),
        ):
            _assert_download(_get(client, user, url), filename)
            _assert_download(_get(client, user, url + "?inline=1"), filename)


def test_data_room_documents_are_downloads_for_issuer_verified_investor_and_staff(client):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=4242)
    pdf = make_document(asset, title="Prospectus", public_to_investors=True)
    photo = make_document(
        asset, title="Front", content=PNG_BYTES, kind=AssetDocument.Kind.PHOTO, public_to_investors=True
    )
    investor = UserFactory()
    KycApplicationFactory(user=investor, approved=True)
    staff = UserFactory(roles=[ADMIN], is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="review_asset"))
    other_issuer = IssuerFactory()

    for doc, filename in ((pdf, "Prospectus.pdf"), (photo, "Front.png")):
        url = reverse("assets:document", args=[doc.public_id])
        for user in (asset.issuer, investor, staff):
            _assert_download(_get(client, user, url), filename)
            _assert_download(_get(client, user, url + "?inline=1"), filename)
        assert _get(client, other_issuer, url).status_code == 404


def test_pages_offer_downloads_not_inline_views(client):
    app = KycApplicationFactory(submitted=True)
    doc = add_document(app)
    html = _get(client, app.user, reverse("compliance:kyc_detail", args=[app.public_id])).content.decode()
    assert f'href="{reverse("compliance:kyc_document", args=[doc.public_id])}" download>Download' in html

    html = _get(
        client, OfficerFactory(), reverse("admin:compliance_kycapplication_change", args=[app.pk])
    ).content.decode()
    assert (
        f'href="{reverse("admin:compliance_kycapplication_document", args=[doc.public_id])}" download>Download' in html
    )
    assert 'target="_blank"' not in html.split('id="documents-group"')[-1].split("</fieldset>")[0]


@pytest.mark.parametrize(
    "name, content_type, header",
    [
        ("passport.pdf", "application/pdf", 'attachment; filename="passport.pdf"'),
        (
            "Relevé de compte.pdf",
            "application/pdf",
            "attachment; filename=\"Releve de compte.pdf\"; filename*=UTF-8''Relev%C3%A9%20de%20compte.pdf",
        ),
        (
            "паспорт.png",
            "image/png",
            "attachment; filename=\"document.png\"; filename*=UTF-8''%D0%BF%D0%B0%D1%81%D0%BF%D0%BE%D1%80%D1%82.png",
        ),
        ("../../etc/page.html", "application/pdf", 'attachment; filename="page.pdf"'),
        ('a"b\r\nSet-Cookie: x.pdf', "application/pdf", 'attachment; filename="a_bSet-Cookie_ x.pdf"'),
    ],
)
def test_download_names_are_safe_and_rfc_6266(name, content_type, header):
    assert content_disposition_attachment(name, content_type) == header

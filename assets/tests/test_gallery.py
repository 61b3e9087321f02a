"""The public photo gallery: an issuer uploads photos of their own draft; we judge them by
their content, strip their metadata, make thumbnails and serve them to whoever may see
the asset's page."""

import os
import struct
import zlib
from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import ExifTags, Image, PngImagePlugin

from accounts.roles import ADMIN
from accounts.tests.factories import UserFactory
from assets import views
from assets.models import Asset, AssetImage
from compliance.models import AuditEntry

from .factories import PDF_BYTES, AssetFactory, IssuerFactory, image_bytes, make_image

pytestmark = pytest.mark.django_db

ARABIC_UUID = "١٢٣٤٥٦٧٨-١٢٣٤-١٢٣٤-١٢٣٤-١٢٣٤٥٦٧٨٩٠١٢"


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height pixels (a decompression bomb's
    shape, without its payload)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def draft():
    return AssetFactory()


@pytest.fixture
def issuer_client(client, draft):
    client.force_login(draft.issuer)
    return client


def _upload(client, asset, content: bytes, name: str = "photo.jpg", caption: str = "", **headers):
    url = reverse("assets:image_upload", args=[asset.public_id])
    return client.post(url, {"image": SimpleUploadedFile(name, content), "caption": caption}, **headers)


def _stored_files(tmp_path) -> list:
    return [p for p in (tmp_path / "private").rglob("*") if p.is_file()]


def _open(field) -> Image.Image:
    with field.open("rb") as fh:
        picture = Image.open(BytesIO(fh.read()))
        picture.load()
    return picture


# --- upload -------------------------------------------------------------------------


def test_upload_stores_a_reencoded_photo_and_a_400px_thumbnail_under_our_names(issuer_client, draft, tmp_path):
    response = _upload(issuer_client, draft, image_bytes((1200, 800)), name="../../My holiday <3>.jpg", caption="Front")

    assert response.status_code == 200
    image = AssetImage.objects.get()
    assert (image.asset, image.caption, image.position, image.uploaded_by) == (draft, "Front", 1, draft.issuer)
    assert (image.content_type, image.width, image.height) == ("image/jpeg", 1200, 800)
    stored = _open(image.image)
    assert (stored.format, stored.size) == ("JPEG", (1200, 800))
    thumbnail = _open(image.thumbnail)
    assert thumbnail.format == "WEBP" and thumbnail.size == (image.thumbnail_width, image.thumbnail_height)
    assert thumbnail.width == 400 and thumbnail.height in (266, 267)
    # Named by us: the asset's and the image's ids, never the uploader's file name.
    assert image.image.name == f"asset-images/{draft.public_id}/{image.public_id.hex}.jpg"
    assert image.thumbnail.name == f"asset-images/{draft.public_id}/{image.public_id.hex}-thumb.webp"
    assert all("holiday" not in str(p) for p in _stored_files(tmp_path))
    assert image.size == image.image.size


@pytest.mark.parametrize(
    "fmt, mode, content_type",
    [("JPEG", "RGB", "image/jpeg"), ("PNG", "RGBA", "image/png"), ("WEBP", "RGBA", "image/webp")],
)
def test_jpeg_png_and_webp_are_accepted_whatever_their_name(issuer_client, draft, fmt, mode, content_type):
    buffer = BytesIO()
    Image.new(mode, (300, 200), (10, 20, 30, 128)[: len(mode)]).save(buffer, fmt)

    response = _upload(issuer_client, draft, buffer.getvalue(), name="picture.gif")

    assert response.status_code == 200
    image = AssetImage.objects.get()
    assert image.content_type == content_type
    assert _open(image.image).mode == mode  # transparency survives the re-encoding
    assert _open(image.thumbnail).size == (300, 200)  # a small photo is not enlarged


def test_a_large_photo_is_stored_at_most_2560px_on_its_long_side(issuer_client, draft):
    response = _upload(issuer_client, draft, image_bytes((5120, 1000)))

    assert response.status_code == 200
    image = AssetImage.objects.get()
    assert (image.width, image.height) == _open(image.image).size == (2560, 500)


def test_a_photo_above_the_in_memory_limit_is_read_from_its_temporary_file(issuer_client, draft, settings):
    noise = BytesIO()
    Image.frombytes("RGB", (1200, 900), os.urandom(1200 * 900 * 3)).save(noise, "PNG")
    assert len(noise.getvalue()) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE

    response = _upload(issuer_client, draft, noise.getvalue(), name="scan.png")

    assert response.status_code == 200
    assert AssetImage.objects.get().content_type == "image/png"


def test_htmx_upload_answers_the_gallery_fragment(issuer_client, draft):
    response = _upload(issuer_client, draft, image_bytes(), caption="Lobby", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<article id="gallery">') and "<html" not in html
    assert 'alt="Lobby"' in html and "1 of 20 photos" in html


# --- refused by content -------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("photo.jpg", PDF_BYTES, "not a JPEG, PNG or WebP image"),
        ("photo.jpg", b"<!doctype html><script>alert(1)</script>", "not a JPEG, PNG or WebP image"),
        ("photo.jpg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "not a JPEG, PNG or WebP image"),
        ("photo.gif", image_bytes((20, 20), "GIF"), "not a JPEG, PNG or WebP image"),
        ("photo.jpg", image_bytes((400, 300))[:600], "damaged or incomplete"),
        ("photo.png", image_bytes((400, 300), "PNG")[:-20], "damaged or incomplete"),
        ("photo.jpg", b"", "empty"),
    ],
    ids=["pdf", "html", "svg", "gif", "truncated-jpeg", "truncated-png", "empty"],
)
def test_what_is_not_a_readable_jpeg_png_or_webp_is_refused(issuer_client, draft, tmp_path, name, content, message):
    response = _upload(issuer_client, draft, content, name=name)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert AssetImage.objects.count() == 0 and _stored_files(tmp_path) == []


@pytest.mark.parametrize(
    "width, height, message",
    [
        (100_000, 100_000, "declares too many pixels"),  # beyond Pillow's own refusal
        (10_000, 10_000, "This image is 10,000 × 10,000 pixels"),  # where Pillow only warns
        (7_000, 7_000, "This image is 7,000 × 7,000 pixels"),  # above our 40 MP
    ],
)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_a_decompression_bomb_is_a_form_error(issuer_client, draft, tmp_path, width, height, message):
    bomb = _png_declaring(width, height)
    assert len(bomb) < 200

    response = _upload(issuer_client, draft, bomb, name="bomb.png")

    assert response.status_code == 422
    html = response.content.decode()
    assert message in html and "at most 40,000,000 pixels" in html
    assert AssetImage.objects.count() == 0 and _stored_files(tmp_path) == []


def test_file_size_and_pixel_limits_are_settings(issuer_client, draft, settings):
    settings.ASSET_IMAGE_MAX_BYTES = 1000
    response = _upload(issuer_client, draft, image_bytes((600, 400), quality=95))
    assert response.status_code == 422 and "the limit is 1000" in response.content.decode()

    settings.ASSET_IMAGE_MAX_BYTES, settings.ASSET_IMAGE_MAX_PIXELS = 10 * 1024 * 1024, 10_000
    response = _upload(issuer_client, draft, image_bytes((200, 100)))
    assert response.status_code == 422 and "200 × 100 pixels" in response.content.decode()
    assert AssetImage.objects.count() == 0


# --- metadata -----------------------------------------------------------------------


def _exif_with_gps_and_rotation() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways: turn 90° clockwise to view
    exif[ExifTags.Base.Make] = "SpyCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 54.0, 33.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 28.0, 45.0)
    return exif


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
def test_exif_and_gps_are_stripped_after_the_orientation_is_applied(issuer_client, draft, fmt):
    source = BytesIO()
    pnginfo = PngImagePlugin.PngInfo()
    pnginfo.add_text("Comment", "home address")
    extra = {"pnginfo": pnginfo} if fmt == "PNG" else {}
    Image.new("RGB", (600, 400), (200, 30, 30)).save(source, fmt, exif=_exif_with_gps_and_rotation(), **extra)
    sent = Image.open(BytesIO(source.getvalue()))
    assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the upload does carry a position

    response = _upload(issuer_client, draft, source.getvalue(), name=f"photo.{fmt.lower()}")

    assert response.status_code == 200
    image = AssetImage.objects.get()
    for field in (image.image, image.thumbnail):
        with field.open("rb") as fh:
            raw = fh.read()
        stored = Image.open(BytesIO(raw))
        assert dict(stored.getexif()) == {}
        assert not {"exif", "xmp", "Comment", "icc_profile"} & set(stored.info)
        assert b"SpyCam" not in raw and b"home address" not in raw
    assert (image.width, image.height) == (400, 600)  # upright: turned as the tag said


# --- who may upload and delete ------------------------------------------------------


@pytest.mark.parametrize("who", ["other issuer", "investor", "anonymous"])
def test_only_the_assets_issuer_can_upload(client, draft, tmp_path, who):
    user = {"other issuer": IssuerFactory(), "investor": UserFactory(), "anonymous": None}[who]
    if user:
        client.force_login(user)

    response = _upload(client, draft, image_bytes())

    if user is None:
        assert response.status_code == 302 and reverse("account_login") in response["Location"]
    else:
        assert response.status_code == 404
    assert AssetImage.objects.count() == 0 and _stored_files(tmp_path) == []


@pytest.mark.parametrize("who", ["other issuer", "investor", "anonymous"])
def test_only_the_assets_issuer_can_delete(client, draft, who):
    image = make_image(draft)
    user = {"other issuer": IssuerFactory(), "investor": UserFactory(), "anonymous": None}[who]
    if user:
        client.force_login(user)

    response = client.post(reverse("assets:image_delete", args=[draft.public_id, image.public_id]))

    assert response.status_code in (302, 404)
    if response.status_code == 302:
        assert reverse("account_login") in response["Location"]
    assert AssetImage.objects.filter(pk=image.pk).exists()


def test_an_image_of_another_asset_cannot_be_deleted_through_ones_own(issuer_client, draft):
    foreign = make_image(AssetFactory())
    response = issuer_client.post(reverse("assets:image_delete", args=[draft.public_id, foreign.public_id]))
    assert response.status_code == 404
    assert AssetImage.objects.filter(pk=foreign.pk).exists()


def test_issuer_deletes_a_photo_and_its_files(issuer_client, draft, django_capture_on_commit_callbacks):
    image = make_image(draft)
    files = [image.image.path, image.thumbnail.path]

    with django_capture_on_commit_callbacks(execute=True):
        response = issuer_client.post(reverse("assets:image_delete", args=[draft.public_id, image.public_id]))

    assert response.status_code == 302
    assert not AssetImage.objects.exists()
    assert not any(os.path.exists(path) for path in files)


def test_a_submitted_asset_takes_no_new_photo_and_keeps_its_photos(issuer_client, draft):
    image = make_image(draft)
    Asset.objects.filter(pk=draft.pk).update(status=Asset.Status.SUBMITTED)

    response = _upload(issuer_client, draft, image_bytes())
    assert response.status_code == 422 and "can no longer be edited" in response.content.decode()

    response = issuer_client.post(reverse("assets:image_delete", args=[draft.public_id, image.public_id]), follow=True)
    assert "can no longer be edited" in response.content.decode()
    assert AssetImage.objects.count() == 1


def test_at_most_the_configured_number_of_photos(issuer_client, draft, settings):
    settings.ASSET_IMAGES_PER_ASSET = 2
    make_image(draft)
    make_image(draft)

    response = _upload(issuer_client, draft, image_bytes())

    assert response.status_code == 422
    assert "at most 2 photos" in response.content.decode()
    assert AssetImage.objects.count() == 2
    page = issuer_client.get(reverse("assets:manage", args=[draft.public_id])).content.decode()
    assert "2 of 2 photos" in page and 'id="image-upload-form"' not in page


def test_uploads_are_rate_limited(issuer_client, draft, monkeypatch):
    monkeypatch.setattr(views, "IMAGE_UPLOAD_RATE", (1, 60))
    assert _upload(issuer_client, draft, image_bytes()).status_code == 200

    response = _upload(issuer_client, draft, image_bytes())

    assert response.status_code == 429 and "1 photos a minute" in response.content.decode()
    assert AssetImage.objects.count() == 1


# --- hostile input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "caption, message", [("Front\x00door", "Null characters are not allowed"), ("x" * 10_000, "at most 200")]
)
def test_hostile_captions_are_form_errors(issuer_client, draft, caption, message):
    response = _upload(issuer_client, draft, image_bytes(), caption=caption)
    assert response.status_code == 422 and message in response.content.decode()
    assert AssetImage.objects.count() == 0


def test_a_caption_is_escaped_on_the_page(issuer_client, draft):
    _upload(issuer_client, draft, image_bytes(), caption='"><script>alert(1)</script>')
    html = issuer_client.get(reverse("assets:detail", args=[draft.public_id])).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


@pytest.mark.parametrize(
    "path",
    [
        f"/assets/images/{ARABIC_UUID}",
        f"/assets/images/{ARABIC_UUID}/thumbnail",
        "/assets/images/" + "a" * 10_000,
        "/assets/images/%00",
    ],
)
def test_hostile_ids_in_the_image_urls_are_404(client, path):
    assert client.get(path).status_code == 404


def test_hostile_ids_in_the_issuers_urls_are_404(issuer_client, draft):
    image = make_image(draft)
    for path in (
        f"/assets/issuer/{ARABIC_UUID}/images",
        f"/assets/issuer/{draft.public_id}/images/{ARABIC_UUID}/delete",
        f"/assets/issuer/{ARABIC_UUID}/images/{image.public_id}/delete",
    ):
        assert issuer_client.post(path).status_code == 404, path
    assert AssetImage.objects.count() == 1


# --- serving ------------------------------------------------------------------------


def test_a_live_assets_photos_are_public_with_their_type_and_nosniff(client):
    image = make_image(AssetFactory(status=Asset.Status.LIVE, asa_id=7001), caption="Front")

    full = client.get(reverse("assets:image", args=[image.public_id]))
    thumb = client.get(reverse("assets:image_thumbnail", args=[image.public_id]))

    assert full.status_code == thumb.status_code == 200
    assert (full["Content-Type"], thumb["Content-Type"]) == ("image/jpeg", "image/webp")
    for response in (full, thumb):
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Cache-Control"] == "public, max-age=86400"
        assert response["Content-Security-Policy"].startswith("sandbox")
    assert b"".join(full.streaming_content).startswith(b"\xff\xd8\xff")
    assert b"".join(thumb.streaming_content)[8:12] == b"WEBP"
    again = client.get(reverse("assets:image", args=[image.public_id]), HTTP_IF_NONE_MATCH=full["ETag"])
    assert again.status_code == 304


@pytest.mark.parametrize("status", [Asset.Status.DRAFT, Asset.Status.SUBMITTED, Asset.Status.REJECTED])
def test_an_unpublished_assets_photos_are_for_its_issuer_and_reviewers_only(client, status):
    asset = AssetFactory(status=status)
    image = make_image(asset)
    urls = [reverse("assets:image", args=[image.public_id]), reverse("assets:image_thumbnail", args=[image.public_id])]
    for outsider in (None, IssuerFactory(), UserFactory()):
        client.logout()
        if outsider:
            client.force_login(outsider)
        assert [client.get(url).status_code for url in urls] == [404, 404]
    for insider in (asset.issuer, UserFactory(roles=[ADMIN], is_staff=True)):
        client.force_login(insider)
        response = client.get(urls[0])
        assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"


def test_a_photo_whose_file_is_gone_is_404(client):
    image = make_image(AssetFactory(status=Asset.Status.LIVE, asa_id=7002))
    image.image.storage.delete(image.image.name)
    assert client.get(reverse("assets:image", args=[image.public_id])).status_code == 404


# --- pages --------------------------------------------------------------------------


def test_the_asset_page_shows_the_gallery_with_alt_texts(client):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=7003, name="Canal House")
    captioned, plain = make_image(asset, caption="Front door"), make_image(asset)

    html = client.get(reverse("assets:detail", args=[asset.public_id])).content.decode()

    gallery = html[html.index('<section id="gallery"') : html.index("</section>", html.index('id="gallery"'))]
    assert f'href="{reverse("assets:image", args=[captioned.public_id])}"' in gallery
    assert f'src="{reverse("assets:image_thumbnail", args=[plain.public_id])}"' in gallery
    assert 'alt="Front door"' in gallery and 'alt="Canal House, photo 2"' in gallery
    assert "style=" not in gallery


def test_an_asset_without_photos_has_no_gallery(client):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=7004)
    assert 'id="gallery"' not in client.get(reverse("assets:detail", args=[asset.public_id])).content.decode()


# --- back office --------------------------------------------------------------------


def _remove_action(client, *images):
    return client.post(
        reverse("admin:assets_assetimage_changelist"),
        {"action": "remove_from_gallery", "_selected_action": [str(image.pk) for image in images]},
    )


def test_staff_see_the_gallery_and_remove_a_photo_with_an_audit_entry(client, django_capture_on_commit_callbacks):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=7005)
    image, kept = make_image(asset, caption="Wrong building"), make_image(asset, caption="Right building")
    staff = UserFactory(roles=[ADMIN], is_staff=True)
    client.force_login(staff)

    page = client.get(reverse("admin:assets_asset_change", args=[asset.pk])).content.decode()
    assert "Wrong building" in page and f"?asset__id__exact={asset.pk}" in page
    listing = client.get(reverse("admin:assets_assetimage_changelist") + f"?asset__id__exact={asset.pk}")
    assert listing.status_code == 200 and "Remove the selected photos" in listing.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = _remove_action(client, image)

    assert response.status_code == 302
    assert list(AssetImage.objects.all()) == [kept]
    assert not image.image.storage.exists(image.image.name)
    assert not image.thumbnail.storage.exists(image.thumbnail.name)
    entry = AuditEntry.objects.get(action="asset.image_removed")
    assert entry.actor_id == staff.pk and entry.before["caption"] == "Wrong building"


def test_staff_without_the_permission_cannot_remove_a_photo(client):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=7006)
    image = make_image(asset)
    client.force_login(UserFactory(is_staff=True))

    response = _remove_action(client, image)

    assert response.status_code == 403
    assert AssetImage.objects.filter(pk=image.pk).exists()


def test_saving_the_assets_change_form_leaves_the_gallery_alone(client):
    asset = AssetFactory(status=Asset.Status.LIVE, asa_id=7007)
    image = make_image(asset)
    client.force_login(UserFactory(roles=[ADMIN], is_staff=True))
    data = {
        "allowed_countries": ["NL"],
        "min_holding": "0",
        "lockup_days": "0",
        "documents-TOTAL_FORMS": "0",
        "documents-INITIAL_FORMS": "0",
        # What a forged form could say about the gallery is ignored.
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "1",
        "images-0-id": str(image.pk),
        "images-0-DELETE": "on",
        "images-0-caption": "hijacked",
    }

    response = client.post(reverse("admin:assets_asset_change", args=[asset.pk]), data)

    assert response.status_code == 302
    image.refresh_from_db()
    assert image.caption == "" and Asset.objects.get(pk=asset.pk).allowed_countries == ["NL"]

"""Validation of uploaded documents, shared by the asset data room and KYC.

Files are judged by their content (magic bytes), never by the name or the browser's
content type; the stored name is sanitised; the SHA-256 is computed while reading."""

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

PDF, PNG, JPEG, WEBP = "application/pdf", "image/png", "image/jpeg", "image/webp"
DOCUMENT_TYPES = (PDF, PNG, JPEG, WEBP)
IMAGE_TYPES = (PNG, JPEG, WEBP)
EXTENSIONS = {PDF: "pdf", PNG: "png", JPEG: "jpg", WEBP: "webp"}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def sniff_content_type(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    return None


def sanitize_filename(name: str, content_type: str) -> str:
    """A safe display name: no path, no control or shell characters, the extension that
    matches the content."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", stem).strip(" ._-")[:80] or "document"
    return f"{stem}.{EXTENSIONS[content_type]}"


@dataclass(frozen=True)
class ValidatedUpload:
    content_type: str
    size: int
    sha256: str
    safe_name: str


def validate_upload(uploaded, *, allowed=DOCUMENT_TYPES, max_bytes=DEFAULT_MAX_BYTES) -> ValidatedUpload:
    """Raise ValidationError with a message a person understands, or describe the file."""
    size = uploaded.size
    if not size:
        raise ValidationError("The file is empty (0 bytes).", code="empty")
    if size > max_bytes:
        raise ValidationError(
            f"The file is {filesizeformat(size)}; the limit is {filesizeformat(max_bytes)}.", code="too_large"
        )
    uploaded.seek(0)
    head = uploaded.read(16)
    content_type = sniff_content_type(head)
    if content_type not in allowed:
        kinds = ", ".join(EXTENSIONS[t].upper() for t in allowed)
        raise ValidationError(
            f"This file's content is not an accepted type ({kinds}), whatever its name says.",
            code="bad_type",
        )
    digest = hashlib.sha256()
    uploaded.seek(0)
    for chunk in uploaded.chunks():
        digest.update(chunk)
    uploaded.seek(0)
    return ValidatedUpload(content_type, size, digest.hexdigest(), sanitize_filename(uploaded.name, content_type))


def private_file_response(field_file, *, filename: str, content_type: str, inline: bool = False):
    """Serve a private file after the caller has checked permission. Never cached by
    shared caches; the browser is told not to guess the type."""
    from django.http import FileResponse

    response = FileResponse(field_file.open("rb"), as_attachment=not inline, filename=filename, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response

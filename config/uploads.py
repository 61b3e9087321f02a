"""Validation of uploaded documents, shared by the asset data room and KYC.

Files are judged by their content (magic bytes), never by the name or the browser's
content type; a PDF carrying scripts or automatic actions is refused (config/pdf_scan.py);
the stored name is sanitised; the SHA-256 is computed while reading.

Serving: every private file goes out through private_file_response, as a download with a
sandbox CSP, never displayed inline in our origin (a PDF viewer runs document scripts)."""

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat

from config.pdf_scan import PdfUninspectable, pdf_active_names

if TYPE_CHECKING:
    from django.db.models.fields.files import FieldFile
    from django.http import FileResponse

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


def sanitize_filename(name: str | None, content_type: str) -> str:
    """A safe display name: no path, no control or shell characters, the extension that
    matches the content."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", stem).strip(" ._-")[:80] or "document"
    return f"{stem}.{EXTENSIONS.get(content_type, 'bin')}"


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
    if content_type is None or content_type not in allowed:
        kinds = ", ".join(EXTENSIONS[t].upper() for t in allowed)
        raise ValidationError(
            f"This file's content is not an accepted type ({kinds}), whatever its name says.",
            code="bad_type",
        )
    digest = hashlib.sha256()
    content = bytearray() if content_type == PDF else None
    uploaded.seek(0)
    for chunk in uploaded.chunks():
        digest.update(chunk)
        if content is not None:
            content += chunk
    uploaded.seek(0)
    if content is not None:
        _refuse_active_pdf(bytes(content))
    return ValidatedUpload(content_type, size, digest.hexdigest(), sanitize_filename(uploaded.name, content_type))


def _refuse_active_pdf(content: bytes) -> None:
    try:
        names = pdf_active_names(content)
    except PdfUninspectable as exc:
        raise ValidationError(
            f"This PDF contains {exc}, so we cannot check it for scripts. Print it to PDF again and upload that.",
            code="pdf_uninspectable",
        ) from None
    if names:
        listed = ", ".join(f"/{name}" for name in names)
        raise ValidationError(
            f"This PDF contains scripts or embedded actions ({listed}), which we do not accept. "
            "Print it to PDF again without them and upload that.",
            code="pdf_active_content",
        )


# On the file response itself, in case a browser renders it anyway: no script, no plugin,
# no request, a unique origin.
DOWNLOAD_CSP = "sandbox; default-src 'none'"


# A PDF previewed in the browser (a top-level navigation, never framed by our pages):
# `sandbox` without allow-scripts puts it in a unique origin and disables the document's
# JavaScript and forms; nothing may be loaded, framed or embedded from it. Chromium's
# built-in viewer renders a top-level PDF under this policy (checked with Chromium 156:
# it refuses PDFs only in sandboxed *frames*); Firefox's pdf.js turns scripting off.
PREVIEW_CSP = "sandbox; default-src 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'none'"


def content_disposition_attachment(filename: str, content_type: str) -> str:
    """RFC 6266: an ASCII filename every browser reads, plus filename* when the name has
    other characters. No path, no control characters, the extension of the content."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] not in "CZ" or ch == " ").strip(" .")
    fallback = sanitize_filename(base, content_type)
    stem = re.sub(r'[<>:"|?*]+', "_", base.rsplit(".", 1)[0] if "." in base else base)[:120].strip(" .")
    full = f"{stem}.{EXTENSIONS.get(content_type, 'bin')}"
    return _disposition("attachment", fallback, full, stem)


def _disposition(kind: str, fallback: str, full: str, stem: str) -> str:
    header = f'{kind}; filename="{fallback}"'
    if full != fallback and stem:
        header += f"; filename*=UTF-8''{quote(full, safe='')}"
    return header


def content_disposition_inline(filename: str, content_type: str) -> str:
    """The same names as content_disposition_attachment, displayed in the browser."""
    return "inline" + content_disposition_attachment(filename, content_type).removeprefix("attachment")


def pdf_preview_response(field_file: "FieldFile", *, filename: str) -> "FileResponse":
    """Serve a PDF the caller may read (permission already checked, content type stored as
    application/pdf) for display in the browser: inline, with PREVIEW_CSP so the viewer
    runs none of the document's scripts, nosniff, never cached by shared caches."""
    from django.http import FileResponse

    response = FileResponse(field_file.open("rb"), content_type=PDF)
    response["Content-Disposition"] = content_disposition_inline(filename, PDF)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = PREVIEW_CSP
    response["X-Frame-Options"] = "DENY"
    return response


def private_file_response(field_file: "FieldFile", *, filename: str, content_type: str) -> "FileResponse":
    """Serve a private file after the caller has checked permission, always as a download
    (an <img> still shows pictures: the disposition only governs navigation). Never cached
    by shared caches; the browser is told not to guess the type; a sandbox CSP in case it
    renders the file anyway."""
    from django.http import FileResponse

    response = FileResponse(field_file.open("rb"), as_attachment=True, content_type=content_type)
    response["Content-Disposition"] = content_disposition_attachment(filename, content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = DOWNLOAD_CSP
    return response

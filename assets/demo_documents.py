"""Small but real documents for demo data: a one-page PDF with text and a PNG picture
(written by hand, no library), and gallery photos drawn with Pillow at seed time (no
binary file in the repository)."""

import struct
import zlib
from io import BytesIO

from PIL import Image, ImageDraw


def pdf_document(title: str, lines: list[str]) -> bytes:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    body = ["BT /F1 18 Tf 72 760 Td (" + esc(title) + ") Tj ET"]
    y = 720
    for line in lines:
        body.append(f"BT /F1 11 Tf 72 {y} Td (" + esc(line) + ") Tj ET")
        y -= 18
    stream = "\n".join(body).encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def png_picture(width: int, height: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> bytes:
    """A vertical gradient with a darker 'building' block, as a real RGB PNG."""
    rows = []
    for y in range(height):
        t = y / max(1, height - 1)
        sky = bytes(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        row = bytearray()
        for x in range(width):
            in_block = width * 0.3 < x < width * 0.7 and y > height * 0.35
            row += bytes(c // 2 for c in sky) if in_block else sky
        rows.append(b"\x00" + bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def _sky(draw: ImageDraw.ImageDraw, width: int, height: int, top, bottom) -> None:
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (width, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))


def demo_photo(scene: str, colours: tuple[tuple[int, int, int], tuple[int, int, int]], size=(1200, 800)) -> bytes:
    """A drawn 'photo' as JPEG bytes: "facade" (a building's window grid), "waterfront"
    (a skyline over water) or "lobby" (an interior in perspective)."""
    width, height = size
    picture = Image.new("RGB", size)
    draw = ImageDraw.Draw(picture)
    top, bottom = colours
    _sky(draw, width, height, top, bottom)
    dark = tuple(c // 3 for c in top)
    if scene == "facade":
        left, right, roof = width // 5, width * 4 // 5, height // 8
        draw.rectangle([left, roof, right, height], fill=(96, 104, 116))
        for row in range(roof + 30, height - 40, 70):
            for col in range(left + 30, right - 60, 90):
                draw.rectangle([col, row, col + 55, row + 45], fill=(200, 220, 235), outline=dark, width=3)
    elif scene == "waterfront":
        shore = height * 3 // 5
        for i, x in enumerate(range(0, width, width // 9)):
            draw.rectangle([x + 10, shore - 80 - (i * 53) % 220, x + width // 9 - 10, shore], fill=dark)
        draw.rectangle([0, shore, width, height], fill=(40, 80, 120))
        for y in range(shore + 20, height, 28):
            draw.line(
                [(width // 10 + (y * 7) % 200, y), (width // 2 + (y * 13) % 300, y)], fill=(150, 190, 220), width=3
            )
    else:  # lobby
        draw.rectangle([0, 0, width, height], fill=(214, 208, 196))
        draw.polygon(
            [(0, height), (width, height), (width * 3 // 4, height * 2 // 3), (width // 4, height * 2 // 3)],
            fill=(170, 150, 120),
        )
        draw.rectangle(
            [width // 4, height // 4, width * 3 // 4, height * 2 // 3], fill=(230, 228, 220), outline=dark, width=4
        )
        draw.rectangle([width * 7 // 16, height * 3 // 8, width * 9 // 16, height * 2 // 3], fill=dark)
        for x in range(width // 4 + 40, width * 3 // 4 - 20, 120):
            draw.ellipse([x, height // 4 + 20, x + 30, height // 4 + 50], fill=(255, 236, 170))
    out = BytesIO()
    picture.save(out, "JPEG", quality=88)
    return out.getvalue()

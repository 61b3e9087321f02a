"""Finds active content in a PDF (scripts, automatic actions, embedded files, forms that
submit or import) by reading its bytes, without a PDF library.

A viewer only acts on names it reads in object dictionaries: in the file's own bytes or in
object streams (usually FlateDecode-compressed). So the scan reads every byte outside stream
bodies, the body of every unfiltered stream, and the decompressed body of every FlateDecode
stream, and skips only the bodies a viewer treats as data (images, fonts, cross-reference
tables), where random bytes would otherwise look like names. Names are compared after their
#xx escapes are decoded (/Java#53cript is /JavaScript); an /OpenAction that only opens a
page is let through (see pdf_active_names). An object stream we cannot decode
(another filter, a predictor, corrupt or over the decompression budget) makes the file
uninspectable rather than clean."""

import re
import zlib

ACTIVE_NAMES = frozenset(
    {
        "JavaScript",
        "JS",
        "OpenAction",
        "AA",
        "Launch",
        "EmbeddedFile",
        "EmbeddedFiles",
        "FileAttachment",
        "RichMedia",
        "XFA",
        "SubmitForm",
        "ImportData",
        "GoToR",
    }
)
MAX_DECOMPRESSED_BYTES = 50 * 1024 * 1024

_REGULAR = rb"[^\x00\t\n\f\r ()<>\[\]{}/%]"
# A name, or what hides a name-like text from a viewer: a comment, a hex or literal string.
_SCAN = re.compile(rb"<<|%[^\r\n]*|<[^>]*>?|\(|/(" + _REGULAR + rb"+)")
_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")
# What moves the lexer: comments, strings, dictionary brackets and the stream keyword (a
# token of its own, not the tail of "endstream" nor a name).
_LEX = re.compile(rb"%|\(|<<|>>|<|(?<![^\x00\t\n\f\r ()<>\[\]{}%])stream(?=\r\n|\n|\r)")
_VALUE_START = re.compile(rb"\s*(?:(\[)|(\d+)\s+\d+\s+R(?!" + _REGULAR + rb")|(<<))")
_OBJECT = re.compile(rb"(?<![0-9])(\d+)\s+\d+\s+obj(?!" + _REGULAR + rb")")
_STRING_PART = re.compile(rb"\\.|[()]", re.S)
_EOL = re.compile(rb"[\r\n]")
_DICT_TOKEN = re.compile(rb"<<|>>|\[|\]|/" + _REGULAR + rb"*|" + _REGULAR + rb"+")
_DATA_SUBTYPES = {"Image", "Type1C", "CIDFontType0C", "OpenType"}


class PdfUninspectable(Exception):
    """The file hides part of its objects where this scan cannot read them."""


def pdf_active_names(data: bytes) -> list[str]:
    """The active-content names the PDF uses, sorted; [] for a clean file. Raises
    PdfUninspectable when an object stream cannot be read.

    /OpenAction alone is only a trigger: when it opens a page (a destination array or a
    /GoTo action, "open at page 1, fit width", as LaTeX and office suites write it) it runs
    nothing; any action that runs something is caught by its own name (/JavaScript, ...)."""
    found: set[str] = set()
    open_actions: list = []  # per /OpenAction: "destination", "action" or an object number
    objects: dict[int, list] = {}  # object number -> (chunk, offset) of each of its definitions

    def read(chunk: bytes, first: int | None = None) -> None:
        found.update(_active_in(chunk, open_actions))
        _index_objects(chunk, objects, first)

    raw_segments, streams = _split(data)
    for segment in raw_segments:
        read(segment)
    # Object streams first, so a large content stream cannot spend the budget they need.
    streams.sort(key=lambda s: not s[0]["object_stream"])
    budget = MAX_DECOMPRESSED_BYTES
    for info, body in streams:
        if info["data_only"] and not info["object_stream"]:
            continue
        if not info["filters"]:
            read(body, info["first"])
            continue
        if info["filters"] != ["FlateDecode"] or info["predictor"]:
            if info["object_stream"]:
                raise PdfUninspectable("an object stream with an encoding we do not read")
            continue
        decoded, complete = _inflate(body, budget)
        budget -= len(decoded)
        if not complete and info["object_stream"]:
            raise PdfUninspectable("an object stream that is corrupt or too large once decompressed")
        read(decoded, info["first"])

    def opens_a_page(target) -> bool:
        if isinstance(target, int):
            places = objects.get(target, [])
            return bool(places) and all(_value_kind(chunk, at) == "destination" for chunk, at in places)
        return target == "destination"

    if "OpenAction" in found and all(opens_a_page(target) for target in open_actions):
        found.discard("OpenAction")
    return sorted(found)


def _active_in(chunk: bytes, open_actions: list) -> set[str]:
    """Active names used as names: text inside strings and comments is not a name."""
    names, pos = set(), 0
    while (m := _SCAN.search(chunk, pos)) is not None:
        if m.group() == b"(":
            pos = _string_end(chunk, m.end())
            continue
        pos = m.end()
        if m.group(1) is not None and (name := _unescape(m.group(1))) in ACTIVE_NAMES:
            names.add(name)
            if name == "OpenAction":
                open_actions.append(_value_kind(chunk, pos))
    return names


def _index_objects(chunk: bytes, objects: dict[int, list], first: int | None) -> None:
    """Where each object definition starts: after "N G obj" in the file, or at the offset
    the header of an object stream gives."""
    for m in _OBJECT.finditer(chunk):
        objects.setdefault(int(m.group(1)), []).append((chunk, m.end()))
    if first is not None:
        header = re.findall(rb"\d+", chunk[:first])
        for number, offset in zip(header[::2], header[1::2], strict=False):
            objects.setdefault(int(number), []).append((chunk, first + int(offset)))


def _value_kind(chunk: bytes, pos: int):
    """What the value at pos is: "destination" (an array, or a /GoTo action), an object
    number (a reference to follow) or "action" (anything else)."""
    m = _VALUE_START.match(chunk, pos)
    if m is None:
        return "action"
    if m.group(1):
        return "destination"
    if m.group(2):
        return int(m.group(2))
    depth = 0
    tokens = _DICT_TOKEN.findall(chunk, m.start(3), m.start(3) + 4096)
    for token, following in zip(tokens, tokens[1:], strict=False):
        if token in (b"<<", b">>"):
            depth += 1 if token == b"<<" else -1
            if depth == 0:
                break
        elif depth == 1 and _unescape(token) == "/S":
            return "destination" if _unescape(following) == "/GoTo" else "action"
    return "action"


def _split(data: bytes):
    """The bytes outside stream bodies, as segments, and each stream as (info, body)."""
    segments, streams = [], []
    segment_start = pos = depth = 0
    dict_start, last_dict = 0, None
    while (m := _LEX.search(data, pos)) is not None:
        token = m.group()
        if token == b"%":
            eol = _EOL.search(data, m.end())
            pos = eol.end() if eol else len(data)
        elif token == b"(":
            pos = _string_end(data, m.end())
        elif token == b"<<":
            if depth == 0:
                dict_start = m.start()
            depth += 1
            pos = m.end()
        elif token == b">>":
            if depth:
                depth -= 1
                if depth == 0:
                    last_dict = (dict_start, m.end())
            pos = m.end()
        elif token == b"<":
            close = data.find(b">", m.end())
            pos = close + 1 if close >= 0 else len(data)
        else:
            body_start = m.end() + (2 if data.startswith(b"\r\n", m.end()) else 1)
            dictionary = b""
            if last_dict and not data[last_dict[1] : m.start()].strip():
                dictionary = data[last_dict[0] : last_dict[1]]
            info = _stream_info(dictionary)
            body_end = _body_end(data, body_start, info["length"])
            segments.append(data[segment_start:body_start])
            streams.append((info, data[body_start:body_end]))
            segment_start = pos = body_end
            depth, last_dict = 0, None
    segments.append(data[segment_start:])
    return segments, streams


def _string_end(data: bytes, pos: int) -> int:
    nesting = 1
    for part in _STRING_PART.finditer(data, pos):
        if part.group() == b"(":
            nesting += 1
        elif part.group() == b")":
            nesting -= 1
            if nesting == 0:
                return part.end()
    return len(data)


def _body_end(data: bytes, start: int, length: int | None) -> int:
    """The earliest end a reader could take: the declared /Length or the first endstream.
    Taking the earlier one leaves more bytes to the raw scan, never fewer."""
    marker = data.find(b"endstream", start)
    end = marker if marker >= 0 else len(data)
    if length is not None:
        end = min(end, start + length)
    return end


def _stream_info(dictionary: bytes) -> dict:
    """What the stream dictionary says about the body: its filters, whether a predictor
    scrambles it, whether it holds objects, whether it is plain data."""
    tokens = [_unescape(t) if t.startswith(b"/") else t.decode("latin-1") for t in _DICT_TOKEN.findall(dictionary)]
    top: dict[str, str | list[str]] = {}  # a name, a number or reference, or an array
    depth = in_array = 0
    length = None
    for i, token in enumerate(tokens):
        if token in ("<<", ">>"):
            depth += 1 if token == "<<" else -1
        elif token in ("[", "]"):
            in_array += 1 if token == "[" else -1
        elif depth == 1 and not in_array and token.startswith("/") and i + 1 < len(tokens) and token[1:] not in top:
            value = tokens[i + 1]
            if value == "[":
                closing = tokens.index("]", i + 1) if "]" in tokens[i + 1 :] else len(tokens)
                value = tokens[i + 2 : closing]
            top[token[1:]] = value
            if token == "/Length" and isinstance(value, str) and value.isdigit() and tokens[i + 3 : i + 4] != ["R"]:
                length = int(value)
    filters = top.get("Filter", [])
    filters = [filters] if isinstance(filters, str) else filters
    if any(not f.startswith("/") for f in filters):
        filters = ["(indirect)"]
    predictor = any(
        token == "/Predictor" and i + 1 < len(tokens) and tokens[i + 1] not in ("1", "<<", ">>")
        for i, token in enumerate(tokens)
    )

    def name_of(key):
        value = top.get(key)
        return value[1:] if isinstance(value, str) and value.startswith("/") else None

    return {
        "filters": ["FlateDecode" if f in ("/FlateDecode", "/Fl") else f[1:] for f in filters],
        "predictor": predictor,
        "length": length,
        "first": int(first) if isinstance(first := top.get("First"), str) and first.isdigit() else None,
        "object_stream": name_of("Type") == "ObjStm" or "First" in top,
        "data_only": name_of("Subtype") in _DATA_SUBTYPES or name_of("Type") == "XRef" or "Length1" in top,
    }


def _unescape(name: bytes) -> str:
    if b"#" in name:
        name = _ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), name)
    return name.decode("latin-1")


def _inflate(body: bytes, budget: int) -> tuple[bytes, bool]:
    """Decompressed bytes, at most budget + 1 of them, and whether the stream was whole."""
    inflater = zlib.decompressobj()
    try:
        decoded = inflater.decompress(body, max(budget, 0) + 1)
    except zlib.error:
        return b"", False
    return decoded, len(decoded) <= budget and not inflater.unconsumed_tail

"""Sanctions screening: name normalisation, fuzzy matching (rapidfuzz) and the OFAC SDN
CSV reader. No database writes here; services.py records outcomes."""

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from django.conf import settings
from rapidfuzz import fuzz, process

MAX_MATCHES = 5
SCREENED_TYPES_EXCLUDED = {"vessel", "aircraft"}

# OFAC writes "-0-" for an empty field.
OFAC_NULL = "-0-"
SDN_COLUMNS = (
    "ent_num",
    "name",
    "sdn_type",
    "program",
    "title",
    "call_sign",
    "vess_type",
    "tonnage",
    "grt",
    "vess_flag",
    "vess_owner",
    "remarks",
)
ALT_COLUMNS = ("ent_num", "alt_num", "alt_type", "alt_name", "alt_remarks")

_HONORIFICS = {"mr", "mrs", "ms", "dr", "sir", "haji", "hajji"}


def screening_threshold() -> int:
    """A score (0-100) at or above this flags the application for manual review. The
    default (88) is tuned so that word order, accents, punctuation and a missing middle
    name still match."""
    return settings.SANCTIONS_MATCH_THRESHOLD


def name_normalize(name: str) -> str:
    """Lower case ASCII words in 'first ... last' order: 'DRAKOV, Viktor' and 'Víktor
    Drakov' both become 'viktor drakov'."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    if text.count(",") == 1:
        # The SDN list writes individuals as "LAST, First Middle".
        last, first = text.split(",")
        text = f"{first} {last}"
    text = re.sub(r"[^0-9a-zA-Z]+", " ", text).lower()
    words = [w for w in text.split() if w not in _HONORIFICS]
    return " ".join(words)


@dataclass(frozen=True)
class Match:
    ent_num: int
    name: str
    program: str
    score: float
    is_alias: bool

    def as_dict(self) -> dict:
        return {
            "ent_num": self.ent_num,
            "name": self.name,
            "program": self.program,
            "score": round(self.score, 1),
            "is_alias": self.is_alias,
        }


@dataclass(frozen=True)
class ScreeningOutcome:
    hit: bool
    best_score: float | None
    matches: list[Match] = field(default_factory=list)
    list_size: int = 0


def name_score(query: str, candidate: str) -> float:
    """Similarity of two normalised names. Token sort handles word order; token set
    forgives a missing middle name, but only when at least two words agree, so a lone
    common first name does not match everybody."""
    score = fuzz.token_sort_ratio(query, candidate)
    if len(set(query.split()) & set(candidate.split())) >= 2:
        score = max(score, fuzz.token_set_ratio(query, candidate))
    return float(score)


def screen_name(name: str, entries, *, threshold: int | None = None) -> ScreeningOutcome:
    """`entries`: iterable of objects with ent_num, name, normalized_name, program, is_alias."""
    threshold = screening_threshold() if threshold is None else threshold
    entries = list(entries)
    query = name_normalize(name)
    if not query or not entries:
        return ScreeningOutcome(hit=False, best_score=None, matches=[], list_size=len(entries))
    choices = [e.normalized_name for e in entries]
    # Cheap C-speed prefilter with two scorers, then the exact score on the few candidates.
    candidates = set()
    for scorer in (fuzz.token_sort_ratio, fuzz.token_set_ratio):
        for _, _, idx in process.extract(query, choices, scorer=scorer, score_cutoff=threshold - 10, limit=50):
            candidates.add(idx)
    scored = sorted(((name_score(query, choices[i]), i) for i in candidates), reverse=True)
    matches = [
        Match(entries[i].ent_num, entries[i].name, entries[i].program, score, entries[i].is_alias)
        for score, i in scored
        if score >= threshold
    ][:MAX_MATCHES]
    best = scored[0][0] if scored else 0.0
    return ScreeningOutcome(hit=bool(matches), best_score=best, matches=matches, list_size=len(entries))


@dataclass(frozen=True)
class ParsedEntry:
    ent_num: int
    name: str
    sdn_type: str
    program: str
    remarks: str
    is_alias: bool = False


def _clean(value: str) -> str:
    value = (value or "").strip()
    return "" if value == OFAC_NULL else value


def sdn_csv_parse(text: str) -> list[ParsedEntry]:
    """Rows of OFAC's sdn.csv: no header, 12 columns, '-0-' for empty. A trailing
    end-of-file marker line (a single control character) is ignored."""
    entries = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() or c.strip() == "\x1a" for c in row):
            continue
        if len(row) < 4:
            raise ValueError(f"line {lineno}: expected the 12 columns of OFAC sdn.csv, found {len(row)}")
        data = dict(zip(SDN_COLUMNS, row, strict=False))
        try:
            ent_num = int(data["ent_num"].strip())
        except ValueError:
            raise ValueError(f"line {lineno}: entry number {data['ent_num']!r} is not a number") from None
        name = _clean(data["name"])
        if not name:
            raise ValueError(f"line {lineno}: entry {ent_num} has no name")
        entries.append(
            ParsedEntry(
                ent_num,
                name,
                _clean(data.get("sdn_type", "")),
                _clean(data.get("program", "")),
                _clean(data.get("remarks", "")),
            )
        )
    return entries


def alt_csv_parse(text: str, primaries: dict[int, ParsedEntry]) -> list[ParsedEntry]:
    """Rows of OFAC's alt.csv (aliases): ent_num, alt_num, alt_type, alt_name, remarks."""
    aliases = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() or c.strip() == "\x1a" for c in row):
            continue
        if len(row) < 4:
            raise ValueError(f"alias line {lineno}: expected the 5 columns of OFAC alt.csv, found {len(row)}")
        data = dict(zip(ALT_COLUMNS, row, strict=False))
        ent_num = int(data["ent_num"].strip())
        primary = primaries.get(ent_num)
        name = _clean(data["alt_name"])
        if primary is None or not name:
            continue
        aliases.append(
            ParsedEntry(ent_num, name, primary.sdn_type, primary.program, _clean(data.get("alt_remarks", "")), True)
        )
    return aliases

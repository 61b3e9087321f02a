import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from compliance.models import AuditEntry, KycApplication, SanctionsEntry
from compliance.screening import Match, ParsedEntry, name_normalize, name_score, screen_name, sdn_csv_parse

from .conftest import DATA
from .factories import KycApplicationFactory


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("DRAKOV, Viktor Ivanovich", "viktor ivanovich drakov"),
        ("  Víktor   DRÁKOV ", "viktor drakov"),
        ("Dr. Selina Morvaine", "selina morvaine"),
        ("AL-ZAFIRI, Karim Hadid", "karim hadid al zafiri"),
        ("GREYWATER HOLDINGS LIMITED", "greywater holdings limited"),
    ],
)
def test_names_are_normalised(raw, normalized):
    assert name_normalize(raw) == normalized


@pytest.mark.parametrize(
    ("applicant", "listed", "hit"),
    [
        ("Viktor Drakov", "DRAKOV, Viktor Ivanovich", True),  # missing middle name
        ("Drakov Viktor Ivanovich", "DRAKOV, Viktor Ivanovich", True),  # order
        ("Viktor Ivanovitch Drakov", "DRAKOV, Viktor Ivanovich", True),  # transliteration
        ("Selína Morvaine", "MORVAINE, Selina", True),  # accents
        ("Selina Morvain", "MORVAINE, Selina", True),  # typo
        ("Viktor Smith", "DRAKOV, Viktor Ivanovich", False),  # one shared word is not a match
        ("Jane Walker", "MORVAINE, Selina", False),
    ],
)
def test_fuzzy_matching(applicant, listed, hit):
    entry = ParsedEntry(1, listed, "individual", "X", "")
    entries = [
        type(
            "E",
            (),
            {
                "ent_num": 1,
                "name": listed,
                "normalized_name": name_normalize(listed),
                "program": "X",
                "is_alias": False,
            },
        )()
    ]

    outcome = screen_name(applicant, entries)

    assert outcome.hit is hit, (applicant, name_score(name_normalize(applicant), name_normalize(entry.name)))
    if hit:
        assert isinstance(outcome.matches[0], Match) and outcome.matches[0].ent_num == 1


def test_sdn_csv_parser_reads_the_ofac_format():
    entries = sdn_csv_parse((DATA / "sdn_sample.csv").read_text())

    first = entries[0]
    assert (first.ent_num, first.name, first.sdn_type, first.program) == (
        90001,
        "DRAKOV, Viktor Ivanovich",
        "individual",
        "DEMO-FICTION",
    )
    company = next(e for e in entries if e.ent_num == 90006)
    assert company.sdn_type == ""  # "-0-" means empty


def test_sdn_csv_parser_rejects_other_files():
    with pytest.raises(ValueError, match="12 columns"):
        sdn_csv_parse("name,email\n")


@pytest.mark.django_db
def test_import_command_replaces_the_list_and_rescreens_approved_investors(capsys):
    approved = KycApplicationFactory(approved=True, legal_name="Selina Morvaine")
    call_command("import_sanctions", str(DATA / "sdn_sample.csv"), "--aliases", str(DATA / "alt_sample.csv"))
    call_command("import_sanctions", str(DATA / "sdn_sample.csv"))  # idempotent: replaces

    assert SanctionsEntry.objects.filter(is_alias=False).count() == 10
    assert SanctionsEntry.objects.filter(is_alias=True).count() == 0
    approved.refresh_from_db()
    assert approved.screening_status == KycApplication.Screening.HIT
    assert AuditEntry.objects.filter(action="kyc.rescreen_hit", target_id=str(approved.pk)).count() == 1
    assert AuditEntry.objects.filter(action="sanctions.imported").count() == 2
    assert "Imported 10 names" in capsys.readouterr().out


@pytest.mark.django_db
def test_import_command_refuses_a_missing_or_wrong_file(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_sanctions", str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n")
    with pytest.raises(CommandError, match="Not an OFAC SDN CSV"):
        call_command("import_sanctions", str(bad))


@pytest.mark.django_db
def test_alias_matches(sample_sanctions):
    app = KycApplicationFactory(legal_name="Kareem Zafiri")
    from compliance.services import _screen

    _screen(app)

    assert app.is_flagged and app.screening_matches[0]["is_alias"] is True

"""Load a sanctions list in OFAC's SDN CSV format (sdn.csv, optionally alt.csv for
aliases), replacing the current list, then re-screen approved and pending KYC."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from compliance.screening import alt_csv_parse, sdn_csv_parse
from compliance.services import sanctions_list_replace


def _read(path: str) -> str:
    data = Path(path).read_bytes()
    # OFAC publishes Windows-1252; tolerate UTF-8 files too.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


class Command(BaseCommand):
    help = "Import a sanctions list in OFAC SDN CSV format (replaces the current list)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path to sdn.csv (OFAC SDN list, CSV format).")
        parser.add_argument("--aliases", help="Path to alt.csv (aliases of the same list).")
        parser.add_argument("--source", default="OFAC SDN", help="Name of the list (default: OFAC SDN).")
        parser.add_argument("--no-rescreen", action="store_true", help="Do not re-screen existing applications.")

    def handle(self, *args, file, aliases=None, source="OFAC SDN", no_rescreen=False, **options):
        try:
            entries = sdn_csv_parse(_read(file))
            if aliases:
                entries += alt_csv_parse(_read(aliases), {e.ent_num: e for e in entries})
        except FileNotFoundError as exc:
            raise CommandError(f"No such file: {exc.filename}") from exc
        except ValueError as exc:
            raise CommandError(f"Not an OFAC SDN CSV file: {exc}") from exc
        try:
            summary = sanctions_list_replace(entries=entries, source=source, rescreen=not no_rescreen)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {summary['entries']} names into {source!r} (replaced {summary['replaced']}); "
                f"{summary['new_hits']} existing application(s) newly flagged."
            )
        )

from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from marketplace.funding import statement_import


class Command(BaseCommand):
    help = (
        "Import a bank statement (ISO 20022 camt.053 XML or the CSV of docs/funding.md): matched credits are "
        "booked as deposits, the others wait in the back office's review queue. Exit 1 when the file is refused "
        "(nothing is booked then)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The statement file (.xml camt.053 or .csv).")
        parser.add_argument(
            "--actor",
            metavar="EMAIL",
            help="The staff member who imports and books the deposits (needs the import and deposit permissions; "
            "four eyes: their own payments are left for review). Required.",
        )

    def handle(self, *args, **options):
        if not options["actor"]:
            raise CommandError("Give --actor EMAIL: the staff member the deposits are booked by (audited).")
        actor = User.objects.filter(email__iexact=options["actor"].strip()).first()
        if actor is None:
            raise CommandError(f"No user with the email {options['actor']!r}.")
        path = Path(options["file"])
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        if size > settings.BANK_STATEMENT_MAX_BYTES:
            raise CommandError(f"Refused: {path.name} is larger than {settings.BANK_STATEMENT_MAX_BYTES:,} bytes.")
        content = path.read_bytes()
        try:
            statement = statement_import(file_name=path.name, content=content, actor=actor)
        except ValidationError as exc:
            raise CommandError(f"Refused: {'; '.join(exc.messages)}") from None
        except PermissionDenied as exc:
            raise CommandError(f"Refused: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {path.name} ({statement.get_format_display()}, statement "
                f"{statement.statement_id or statement.public_id}): {statement.lines_total} entries, "
                f"{statement.lines_matched} matched, {statement.lines_review} to review, "
                f"{statement.lines_skipped} skipped"
            )
        )
        for reference in getattr(statement, "skipped_entries", []):
            self.stdout.write(f"skipped (already imported): {reference}")

"""Recompute the audit log's hash chain; exit non-zero if any entry was altered,
removed or reordered."""

from django.core.management.base import BaseCommand, CommandError

from compliance.audit import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain."

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(problem)
            raise CommandError(f"Audit chain BROKEN: {len(report.problems)} problem(s) in {report.checked} entries.")
        self.stdout.write(self.style.SUCCESS(f"Audit chain OK: {report.checked} entries verified."))

from django.core.management.base import BaseCommand, CommandError

from chain.bootstrap import chain_bootstrap


class Command(BaseCommand):
    help = (
        "Create the platform's treasury, manager, freeze, clawback and funding accounts "
        "(idempotent). On devnet, fund them from the dispenser; elsewhere print what to fund."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-fund", action="store_true", help="Create accounts only; never pay from the devnet dispenser."
        )
        parser.add_argument(
            "--check", action="store_true", help="Exit non-zero when an account is below its target balance."
        )

    def handle(self, *args, no_fund=False, check=False, **options):
        try:
            genesis_id, states = chain_bootstrap(fund=not no_fund)
        except Exception as exc:
            raise CommandError(f"chain_bootstrap: {exc}") from exc
        self.stdout.write(f"network {genesis_id}")
        short = []
        for s in states:
            mark = "ok" if s.ok else "NEEDS FUNDING"
            extra = " (created)" if s.created else ""
            extra += f" funded {s.funded / 1e6:,.6f} ALGO from the devnet dispenser" if s.funded else ""
            self.stdout.write(
                f"  {s.account.role:<9} {s.account.address}  {s.balance / 1e6:>16,.6f} / "
                f"{s.target / 1e6:,.6f} ALGO  {mark}{extra}"
            )
            if not s.ok:
                short.append(s)
        if short:
            self.stdout.write(self.style.WARNING("Fund these addresses, then run chain_bootstrap again:"))
            for s in short:
                self.stdout.write(
                    f"  send {(s.target - s.balance) / 1e6:,.6f} ALGO to {s.account.address} ({s.account.role})"
                )
            if check:
                raise CommandError("platform accounts are under-funded")
        else:
            self.stdout.write(self.style.SUCCESS("platform accounts ready"))

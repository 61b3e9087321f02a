from django.urls import reverse

from .roles import ADMIN, COMPLIANCE_OFFICER, INVESTOR, ISSUER, user_roles


def navigation(request):
    """The menu shows what the signed-in user's roles allow, and nothing else."""
    items = [("Catalogue", reverse("assets:catalogue"))]
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": items, "nav_roles": []}
    roles = user_roles(user)
    if ISSUER in roles:
        items.append(("Your assets", reverse("assets:issuer_dashboard")))
    if INVESTOR in roles:
        items.append(("Dashboard", reverse("marketplace:dashboard")))
        items.append(("Portfolio", reverse("marketplace:portfolio")))
        items.append(("Distributions", reverse("marketplace:distributions")))
    items.append(("Profile", reverse("accounts:profile")))
    if user.is_staff and (ADMIN in roles or COMPLIANCE_OFFICER in roles or user.is_superuser):
        items.append(("Back office", reverse("admin:index")))
    return {"nav_items": items, "nav_roles": roles}

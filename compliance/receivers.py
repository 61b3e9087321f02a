"""Signal receivers that feed the audit log from other apps: failed logins, role and
permission changes, and every Django admin action (LogEntry). Connected in apps.ready()."""

from collections.abc import Callable

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_login_failed
from django.db.models.signals import m2m_changed, post_save

from .audit import audit_record

ADMIN_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}
M2M_VERBS = {"post_add": "added", "post_remove": "removed", "post_clear": "cleared"}


def _client_ip(request) -> str:
    return (request.META.get("REMOTE_ADDR") or "")[:45] if request is not None else ""


def on_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked the password in `credentials`; keep only the identifier.
    identifier = credentials.get("email") or credentials.get("username") or credentials.get("login") or ""
    audit_record(
        actor=None, action="auth.login_failed", after={"login": str(identifier)[:254], "ip": _client_ip(request)}
    )


def _names(model, pks) -> list[str]:
    if not pks:
        return []
    if model is Group:
        return sorted(Group.objects.filter(pk__in=pks).values_list("name", flat=True))
    if model._meta.model_name == "permission":
        return sorted(
            f"{p.content_type.app_label}.{p.codename}"
            for p in model.objects.filter(pk__in=pks).select_related("content_type")
        )
    return sorted(str(o) for o in model.objects.filter(pk__in=pks))


def _m2m_receiver(relation: str):
    """Record changes of one many-to-many relation (user groups, user permissions,
    group permissions) from either side. For `clear`, pre_clear remembers what was there.
    The actor is unknown here; a change made in the back office is also recorded with its
    actor through the admin LogEntry."""

    def receiver(sender, instance, action, reverse, model, pk_set, **kwargs):
        if action == "pre_clear":
            src, dst = _through_columns(sender, type(instance), model)
            instance._audit_cleared = set(sender.objects.filter(**{src: instance.pk}).values_list(dst, flat=True))
            return
        verb = M2M_VERBS.get(action)
        if verb is None:
            return
        pks = instance.__dict__.pop("_audit_cleared", set()) if action == "post_clear" else set(pk_set or ())
        if not pks:
            return
        if reverse:
            # e.g. group.user_set.add(user): one entry per affected object on the owning side.
            for obj in model.objects.filter(pk__in=pks):
                audit_record(actor=None, action=f"{relation}.{verb}", target=obj, after={"items": [str(instance)]})
        else:
            audit_record(actor=None, action=f"{relation}.{verb}", target=instance, after={"items": _names(model, pks)})

    return receiver


def _through_columns(through, instance_model, other_model) -> tuple[str, str]:
    fields = [f for f in through._meta.fields if f.is_relation]
    src = next(f for f in fields if issubclass(instance_model, f.related_model))
    dst = next(f for f in fields if f is not src and issubclass(other_model, f.related_model))
    return src.attname, dst.attname


def on_admin_log(sender, instance: LogEntry, created, raw=False, **kwargs):
    if not created or raw:
        return
    content_type = instance.content_type  # None when the entry names no model
    audit_record(
        actor=instance.user,
        action=ADMIN_ACTIONS.get(instance.action_flag, "admin.action"),
        after={
            "content_type": f"{content_type.app_label}.{content_type.model}" if content_type is not None else "",
            "object_id": str(instance.object_id or ""),
            "object_repr": instance.object_repr,
            "change_message": instance.get_change_message(),
        },
    )


_receivers: list[Callable[..., None]] = []


def connect() -> None:
    User = get_user_model()
    user_login_failed.connect(on_login_failed, dispatch_uid="compliance.audit.login_failed")
    post_save.connect(on_admin_log, sender=LogEntry, dispatch_uid="compliance.audit.admin_log")
    for through, relation in (
        (User.groups.through, "role"),
        (User.user_permissions.through, "user_permission"),
        (Group.permissions.through, "group_permission"),
    ):
        receiver = _m2m_receiver(relation)
        _receivers.append(receiver)  # signals hold weak references
        m2m_changed.connect(receiver, sender=through, dispatch_uid=f"compliance.audit.{relation}")

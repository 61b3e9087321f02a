"""The audit log: append-only, hash-chained.

`audit_record` is the only writer. It runs inside the caller's transaction, so an entry
exists exactly when the change it describes was committed. Appending locks the single
`AuditHead` row; callers take their business locks first and record last, so the head
is always the last lock in any transaction (no lock-order inversions).

Each entry's hash is SHA-256 over a canonical JSON of its content plus the previous
entry's hash. `audit_chain_verify` recomputes the chain; editing, deleting or reordering
any row breaks it."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64


def _json_safe(value):
    """What the JSON column will give back when read: dates and decimals as strings."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _entry_payload(entry: AuditEntry) -> dict:
    return {
        "seq": entry.seq,
        "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": entry.actor_id,
        "actor_label": entry.actor_label,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "target_repr": entry.target_repr,
        "before": entry.before,
        "after": entry.after,
        "reason": entry.reason,
        "prev_hash": entry.prev_hash,
    }


def audit_entry_hash(entry: AuditEntry) -> str:
    canonical = json.dumps(_entry_payload(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_head() -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # First entry ever: create the head; a concurrent creator makes one of us fail
        # on the primary key, and the savepoint lets that one retry the locked read.
        try:
            with transaction.atomic():
                AuditHead.objects.create(pk=1)
        except IntegrityError:
            pass
        head = AuditHead.objects.select_for_update().get(pk=1)
    return head


def audit_record(
    *, actor, action: str, target=None, before: dict | None = None, after: dict | None = None, reason: str = ""
) -> AuditEntry:
    with transaction.atomic(savepoint=False):
        head = _lock_head()
        actor = actor if (actor is not None and getattr(actor, "is_authenticated", False)) else None
        entry = AuditEntry(
            seq=head.last_seq + 1,
            created_at=timezone.now(),
            actor_id=actor.pk if actor else None,
            actor_label=str(actor)[:254] if actor else "system",
            action=action[:64],
            target_type=target._meta.label if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            target_repr=str(target)[:300] if target is not None else "",
            before=_json_safe(before),
            after=_json_safe(after),
            reason=reason or "",
            prev_hash=head.last_hash,
        )
        entry.hash = audit_entry_hash(entry)
        entry.save(force_insert=True)
        AuditHead.objects.filter(pk=1).update(last_seq=entry.seq, last_hash=entry.hash)
        return entry


@dataclass
class ChainReport:
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit_chain_verify(*, batch_size: int = 2000) -> ChainReport:
    """Walk the chain in order and report every broken link, not only the first."""
    report = ChainReport()
    expected_prev, expected_seq = GENESIS_HASH, 1
    for entry in AuditEntry.objects.order_by("seq").iterator(chunk_size=batch_size):
        report.checked += 1
        if entry.seq != expected_seq:
            report.problems.append(f"#{entry.seq}: expected sequence number {expected_seq} (entries missing)")
        if entry.prev_hash != expected_prev:
            report.problems.append(f"#{entry.seq}: does not link to the previous entry")
        if audit_entry_hash(entry) != entry.hash:
            report.problems.append(f"#{entry.seq}: content does not match its hash (row modified)")
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    head = AuditHead.objects.filter(pk=1).first()
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (expected_seq - 1, expected_prev):
        report.problems.append(
            f"chain head says #{head_seq} but the table ends at #{expected_seq - 1} (entries removed at the end?)"
        )
    return report


def model_snapshot(instance, fields) -> dict:
    """The named fields of a model instance as plain JSON values, for before/after."""
    data = {}
    for name in fields:
        value = getattr(instance, name)
        if hasattr(value, "pk"):
            value = value.pk
        data[name] = value
    return _json_safe(data)

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.roles import ADMIN, INVESTOR
from accounts.tests.factories import UserFactory
from assets import metadata, services
from assets.models import Asset
from assets.tests.factories import AssetFactory, make_document
from chain.models import ChainTransaction
from compliance.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer():
    return UserFactory(roles=[ADMIN], is_staff=True)


@pytest.fixture
def submitted():
    asset = AssetFactory()
    make_document(asset, title="Appraisal")
    make_document(asset, title="Title deed", kind="title_deed")
    return services.asset_submit(asset=asset, actor=asset.issuer)


def test_submit_needs_a_document():
    asset = AssetFactory()
    with pytest.raises(ValidationError, match="at least one document"):
        services.asset_submit(asset=asset, actor=asset.issuer)
    asset.refresh_from_db()
    assert asset.status == "draft"


def test_approval_freezes_metadata_and_queues_exactly_one_mint(reviewer, submitted, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        asset = services.asset_approve(asset=submitted, reviewer=reviewer)
    assert asset.status == Asset.Status.MINTING
    doc = json.loads(asset.metadata_json)
    assert sorted(d["sha256"] for d in doc["properties"]["documents"]) == sorted(
        asset.documents.values_list("sha256", flat=True)
    )
    assert asset.metadata_hash == metadata.metadata_hash(asset.metadata_json.encode())
    row = ChainTransaction.objects.get()
    assert row.kind == "asset_create" and row.status == "pending"
    assert row.payload["total"] == asset.total_fractions and row.payload["default_frozen"] is True
    assert row.payload["metadata_hash"] == asset.metadata_hash and row.payload["url"].endswith("#arc3")
    assert len(callbacks) >= 1  # the Celery task is enqueued only on commit
    assert AuditEntry.objects.filter(action="asset.approved").count() == 1


def test_issuer_cannot_approve_own_asset_even_as_staff(submitted):
    submitted.issuer.is_staff = True
    submitted.issuer.save()
    submitted.issuer.user_permissions.add(Permission.objects.get(codename="review_asset"))
    with pytest.raises(PermissionDenied, match="Four eyes"):
        services.asset_approve(asset=submitted, reviewer=type(submitted.issuer).objects.get(pk=submitted.issuer_id))
    submitted.refresh_from_db()
    assert submitted.status == "submitted" and not ChainTransaction.objects.exists()


def test_staff_without_permission_cannot_decide(submitted):
    staff = UserFactory(is_staff=True, roles=[INVESTOR])
    with pytest.raises(PermissionDenied):
        services.asset_approve(asset=submitted, reviewer=staff)


@pytest.mark.parametrize(
    "decide, status", [(services.asset_request_changes, "changes_requested"), (services.asset_reject, "rejected")]
)
def test_negative_decisions_need_a_reason(reviewer, submitted, decide, status):
    with pytest.raises(ValidationError, match="reason"):
        decide(asset=submitted, reviewer=reviewer, comment="  ")
    asset = decide(asset=submitted, reviewer=reviewer, comment="Appraisal is older than 12 months.")
    assert asset.status == status and asset.review_comment.startswith("Appraisal")
    assert AuditEntry.objects.filter(action__startswith="asset.", reason__icontains="appraisal").exists()


def test_changes_requested_reopens_editing(reviewer, submitted):
    asset = services.asset_request_changes(asset=submitted, reviewer=reviewer, comment="Add the title deed scan.")
    assert asset.is_editable
    services.asset_update(asset=asset, actor=asset.issuer, fields={"description": "Updated."})
    assert services.asset_submit(asset=asset, actor=asset.issuer).status == "submitted"


def test_mint_confirmation_makes_the_asset_live(reviewer, submitted):
    services.asset_approve(asset=submitted, reviewer=reviewer)
    row = ChainTransaction.objects.get()
    row.asset_id, row.txid, row.confirmed_round = 4242, "T" * 52, 17
    services.asset_mint_confirmed(row)
    asset = Asset.objects.get(pk=submitted.pk)
    assert (asset.status, asset.asa_id, asset.creation_round) == ("live", 4242, 17)


def test_arc3_json_is_served_byte_for_byte(client, reviewer, submitted):
    asset = services.asset_approve(asset=submitted, reviewer=reviewer)
    response = client.get(metadata.metadata_url(asset).split("8000", 1)[1].split("#")[0])
    assert response.status_code == 200
    assert metadata.metadata_hash(response.content) == asset.metadata_hash


def test_approval_refuses_second_decision(reviewer, submitted):
    services.asset_approve(asset=submitted, reviewer=reviewer)
    with pytest.raises(ValidationError, match="Only submitted assets"):
        services.asset_reject(asset=submitted, reviewer=reviewer, comment="late")
    assert ChainTransaction.objects.count() == 1

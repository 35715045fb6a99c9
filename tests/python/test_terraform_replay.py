"""Replays, with boto3, the calls Terraform's AWS provider makes for `aws_kms_key` and
`aws_kms_alias` on create, refresh, update and destroy; then rotation, key policies, AWS
managed keys and GetKeyLastUsage with boto3 and the AWS CLI."""

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from test_cli import aws


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def account_of(kms):
    return kms.describe_key(KeyId=kms.create_key()["KeyMetadata"]["KeyId"])["KeyMetadata"]["AWSAccountId"]


def admin_policy(account, sid="Enable IAM User Permissions"):
    return json.dumps({
        "Version": "2012-10-17",
        "Id": "tf-policy",
        "Statement": [{
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }],
    })


def find_alias(kms, name):
    """Terraform's FindAliasByName: page through ListAliases until the name shows up."""
    for page in kms.get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            if alias["AliasName"] == name:
                return alias
    return None


def refresh_key(kms, key_id):
    """What `aws_kms_key` reads on every refresh."""
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    policy = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    rotation = kms.get_key_rotation_status(KeyId=key_id)
    tags = kms.list_resource_tags(KeyId=key_id)["Tags"]
    return md, policy, rotation, tags


def test_terraform_aws_kms_key_and_alias_lifecycle(kms):
    account = account_of(kms)
    policy = admin_policy(account)

    # Create: CreateKey with everything Terraform sends, then its waiters and settings.
    created = kms.create_key(
        BypassPolicyLockoutSafetyCheck=False,
        Description="terraform key",
        KeySpec="SYMMETRIC_DEFAULT",
        KeyUsage="ENCRYPT_DECRYPT",
        MultiRegion=False,
        Policy=policy,
        Tags=[{"TagKey": "Name", "TagValue": "tf"}],
    )["KeyMetadata"]
    key_id = created["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == policy
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=180)
    md, got_policy, rotation, tags = refresh_key(kms, key_id)
    assert (md["Description"], md["KeyManager"], md["KeySpec"]) == ("terraform key", "CUSTOMER", "SYMMETRIC_DEFAULT")
    assert got_policy == policy
    assert rotation["KeyRotationEnabled"] is True and rotation["RotationPeriodInDays"] == 180
    assert "NextRotationDate" in rotation
    assert tags == [{"TagKey": "Name", "TagValue": "tf"}]

    # aws_kms_alias create and refresh.
    kms.create_alias(AliasName="alias/tf-app", TargetKeyId=key_id)
    alias = find_alias(kms, "alias/tf-app")
    assert alias["TargetKeyId"] == key_id
    assert alias["AliasArn"] == f"arn:aws:kms:us-east-1:{account}:alias/tf-app"

    # Update: every attribute Terraform can change in place.
    kms.update_key_description(KeyId=key_id, Description="terraform key v2")
    new_policy = admin_policy(account, sid="Updated by Terraform")
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=new_policy,
                       BypassPolicyLockoutSafetyCheck=False)
    kms.disable_key_rotation(KeyId=key_id)
    kms.disable_key(KeyId=key_id)
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["Name"])
    md, got_policy, rotation, tags = refresh_key(kms, key_id)
    assert (md["Description"], md["KeyState"], md["Enabled"]) == ("terraform key v2", "Disabled", False)
    assert got_policy == new_policy
    assert rotation["KeyRotationEnabled"] is False and "NextRotationDate" not in rotation
    assert tags == [{"TagKey": "env", "TagValue": "prod"}]
    kms.enable_key(KeyId=key_id)

    other = kms.create_key(Description="second")["KeyMetadata"]["KeyId"]
    kms.update_alias(AliasName="alias/tf-app", TargetKeyId=other)
    assert find_alias(kms, "alias/tf-app")["TargetKeyId"] == other

    # Destroy: the alias, then the key (a scheduled deletion, as Terraform does).
    kms.delete_alias(AliasName="alias/tf-app")
    assert find_alias(kms, "alias/tf-app") is None
    out = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingDeletion" and out["PendingWindowInDays"] == 7
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    # A refresh of a key pending deletion still reads (Terraform then drops it from state).
    _, _, rotation, _ = refresh_key(kms, key_id)
    assert rotation["KeyRotationEnabled"] is False


def advance_clock(server, seconds):
    req = urllib.request.Request(
        f"{server.endpoint}/keyhold-test/advance-clock",
        data=json.dumps({"seconds": seconds}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def test_rotation_with_boto3_and_the_cli(kms, server):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    first = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"kept")["CiphertextBlob"]
    aws(server, "enable-key-rotation", "--key-id", key_id, "--rotation-period-in-days", "90")
    status = json.loads(aws(server, "get-key-rotation-status", "--key-id", key_id).stdout)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90

    assert advance_clock(server, 91 * 86400)["rotated"] == 1
    second = kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert second != first
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"kept"

    kms.rotate_key_on_demand(KeyId=key_id)
    rotations = json.loads(aws(server, "list-key-rotations", "--key-id", key_id).stdout)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["AUTOMATIC", "ON_DEMAND"]
    assert [r["KeyMaterialState"] for r in rotations] == ["NON_CURRENT", "CURRENT"]

    with pytest.raises(ClientError) as e:
        kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=3000)
    assert error_code(e) == "ValidationException"


def test_policies_managed_keys_and_last_usage(kms, server):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy="my policy")
    assert error_code(e) == "MalformedPolicyDocumentException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    deny = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*"}]})
    failed = aws(server, "put-key-policy", "--key-id", key_id, "--policy", deny, check=False)
    assert failed.returncode != 0 and "will not allow you to update the key policy" in failed.stderr

    # alias/aws/<service>: an AWS managed key appears on first use. Its policy lets only the
    # service use it (kms:ViaService), so a direct Encrypt is denied, as in AWS.
    md = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert md["KeyManager"] == "AWS"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId="alias/aws/secretsmanager", Plaintext=b"m")
    assert error_code(e) == "AccessDeniedException"
    assert "because no resource-based policy allows the kms:Encrypt action" in str(e.value)
    aliases = {a["AliasName"]: a for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/aws/secretsmanager"]["TargetKeyId"] == md["KeyId"]
    assert "TargetKeyId" not in aliases["alias/aws/rds"]

    usage = json.loads(aws(server, "get-key-last-usage", "--key-id", md["KeyId"]).stdout)
    assert "Operation" not in usage.get("KeyLastUsage", {}), "a denied Encrypt is not a use"
    assert usage["KeyCreationDate"] == usage["TrackingStartDate"]

"""Managing keys with boto3 and the AWS CLI: the calls Terraform's aws_kms_key makes after
every create and refresh (DescribeKey, GetKeyPolicy, GetKeyRotationStatus, ListResourceTags) and
the updates it sends (UpdateKeyDescription, Enable/DisableKey, Tag/UntagResource)."""

import json

import pytest
from botocore.exceptions import ClientError

from test_cli import aws


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_terraform_reads_and_updates_with_boto3(kms):
    key_id = kms.create_key(Description="tf", Tags=[{"TagKey": "team", "TagValue": "kms"}])["KeyMetadata"]["KeyId"]

    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert policy["Statement"][0]["Action"] == "kms:*"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "kms"}]

    kms.update_key_description(KeyId=key_id, Description="tf v2")
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["team"])
    kms.disable_key(KeyId=key_id)
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (md["Description"], md["KeyState"], md["Enabled"]) == ("tf v2", "Disabled", False)
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]

    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert error_code(e) == "DisabledException"
    kms.enable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"

    with pytest.raises(ClientError) as e:
        kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "aws:reserved", "TagValue": "x"}])
    assert error_code(e) == "TagException"


def test_cli_manages_a_key(server):
    key_id = json.loads(aws(server, "create-key").stdout)["KeyMetadata"]["KeyId"]
    aws(server, "tag-resource", "--key-id", key_id, "--tags", "TagKey=owner,TagValue=cli")
    tags = json.loads(aws(server, "list-resource-tags", "--key-id", key_id).stdout)["Tags"]
    assert tags == [{"TagKey": "owner", "TagValue": "cli"}]
    aws(server, "disable-key", "--key-id", key_id)
    state = json.loads(aws(server, "describe-key", "--key-id", key_id).stdout)["KeyMetadata"]["KeyState"]
    assert state == "Disabled"
    names = json.loads(aws(server, "list-key-policies", "--key-id", key_id).stdout)["PolicyNames"]
    assert names == ["default"]
    failed = aws(server, "enable-key", "--key-id", "alias/none", check=False)
    assert failed.returncode != 0 and "NotFoundException" in failed.stderr


def test_aliases_with_boto3_and_cli(kms, server):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/payments", TargetKeyId=key_id)
    blob = kms.encrypt(KeyId="alias/payments", Plaintext=b"by name")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"by name"
    aliases = kms.list_aliases(KeyId=key_id)["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/payments"]
    assert aliases[0]["AliasArn"].endswith(":alias/payments")
    with pytest.raises(ClientError) as e:
        kms.create_alias(AliasName="alias/payments", TargetKeyId=key_id)
    assert error_code(e) == "AlreadyExistsException"

    md = json.loads(aws(server, "describe-key", "--key-id", "alias/payments").stdout)["KeyMetadata"]
    assert md["KeyId"] == key_id
    aws(server, "delete-alias", "--alias-name", "alias/payments")
    failed = aws(server, "describe-key", "--key-id", "alias/payments", check=False)
    assert failed.returncode != 0 and "NotFoundException" in failed.stderr

"""Multi-Region keys with boto3, one client per Region: create a primary key, replicate it,
encrypt in one Region and decrypt in the other, rotate the primary, move the primary Region,
and AWS's refusal to replicate a key twice into one Region.
"""

import pytest
from botocore.exceptions import ClientError


def config(kms, key_id):
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert md["MultiRegion"] is True
    c = md["MultiRegionConfiguration"]
    return (
        c["MultiRegionKeyType"],
        c["PrimaryKey"]["Region"],
        sorted(r["Region"] for r in c["ReplicaKeys"]),
    )


def test_replicate_decrypt_across_regions_rotate_and_update_primary(server):
    us = server.client(region="us-east-1")
    eu = server.client(region="eu-west-1")
    md = us.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]
    key_id = md["KeyId"]
    assert key_id.startswith("mrk-") and len(key_id) == 36
    assert config(us, key_id) == ("PRIMARY", "us-east-1", [])

    out = us.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1", Tags=[{"TagKey": "a", "TagValue": "b"}])
    replica = out["ReplicaKeyMetadata"]
    assert replica["Arn"] == f"arn:aws:kms:eu-west-1:123456789012:key/{key_id}"
    assert replica["KeyState"] == "Enabled" and replica["Description"] == ""
    assert out["ReplicaTags"] == [{"TagKey": "a", "TagValue": "b"}]
    assert config(us, key_id) == ("PRIMARY", "us-east-1", ["eu-west-1"])
    assert config(eu, key_id) == ("REPLICA", "us-east-1", ["eu-west-1"])

    blob = us.encrypt(KeyId=key_id, Plaintext=b"hello")["CiphertextBlob"]
    got = eu.decrypt(CiphertextBlob=blob)
    assert got["Plaintext"] == b"hello" and got["KeyId"] == replica["Arn"]

    us.rotate_key_on_demand(KeyId=key_id)
    blob2 = eu.encrypt(KeyId=key_id, Plaintext=b"after rotation")["CiphertextBlob"]
    assert us.decrypt(CiphertextBlob=blob2)["Plaintext"] == b"after rotation"
    assert eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"

    us.update_primary_region(KeyId=key_id, PrimaryRegion="eu-west-1")
    assert config(eu, key_id) == ("PRIMARY", "eu-west-1", ["us-east-1"])
    assert config(us, key_id) == ("REPLICA", "eu-west-1", ["us-east-1"])


def test_replicating_twice_into_one_region_is_refused(server):
    us = server.client(region="us-east-1")
    key_id = us.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    us.replicate_key(KeyId=key_id, ReplicaRegion="ap-southeast-2")
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=key_id, ReplicaRegion="ap-southeast-2")
    assert e.value.response["Error"]["Code"] == "AlreadyExistsException"
    single = us.create_key()["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as e:
        us.replicate_key(KeyId=single, ReplicaRegion="ap-southeast-2")
    assert e.value.response["Error"]["Code"] == "UnsupportedOperationException"

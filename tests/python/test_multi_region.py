"""Multi-Region keys with boto3, one client per Region: create a primary key, replicate it,
encrypt in one Region and decrypt in the other, rotate the primary, move the primary Region,
and AWS's refusal to replicate a key twice into one Region; multi-Region keys with imported
key material.
"""

import os

import pytest
from botocore.exceptions import ClientError
from test_import_key_material import import_material


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


def test_imported_material_multi_region_key(server):
    """Origin EXTERNAL and MultiRegion: the same material, wrapped offline with `cryptography`,
    is imported into the primary and then into its replica; new material rotates the primary
    only once the replica has it; both keep their material across a restart."""
    us = server.client(region="us-east-1")
    eu = server.client(region="eu-west-1")
    md = us.create_key(MultiRegion=True, Origin="EXTERNAL")["KeyMetadata"]
    key_id = md["KeyId"]
    assert key_id.startswith("mrk-") and md["KeyState"] == "PendingImport"
    replica = us.replicate_key(KeyId=key_id, ReplicaRegion="eu-west-1")["ReplicaKeyMetadata"]
    assert replica["KeyState"] == "PendingImport" and replica["Origin"] == "EXTERNAL"

    first, other, second = os.urandom(32), os.urandom(32), os.urandom(32)
    # Material the primary does not have is refused by the replica.
    with pytest.raises(ClientError) as e:
        import_material(eu, key_id, first)
    assert e.value.response["Error"]["Code"] == "IncorrectKeyMaterialException"
    first_id = import_material(us, key_id, first, algorithm="RSA_AES_KEY_WRAP_SHA_256")["KeyMaterialId"]
    with pytest.raises(ClientError) as e:
        import_material(eu, key_id, other)
    assert e.value.response["Error"]["Code"] == "IncorrectKeyMaterialException"
    assert import_material(eu, key_id, first, algorithm="RSAES_OAEP_SHA_1")["KeyMaterialId"] == first_id
    assert eu.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    blob = us.encrypt(KeyId=key_id, Plaintext=b"imported everywhere")["CiphertextBlob"]
    assert eu.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported everywhere"

    # New material for rotation: the primary waits for its replica.
    with pytest.raises(ClientError) as e:
        import_material(eu, key_id, second, ImportType="NEW_KEY_MATERIAL")
    assert e.value.response["Error"]["Code"] == "UnsupportedOperationException"
    second_id = import_material(us, key_id, second, ImportType="NEW_KEY_MATERIAL")["KeyMaterialId"]
    states = {
        r["KeyMaterialId"]: r["KeyMaterialState"]
        for r in us.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    }
    assert states[second_id] == "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
    with pytest.raises(ClientError) as e:
        us.rotate_key_on_demand(KeyId=key_id)
    assert e.value.response["Error"]["Code"] == "KMSInvalidStateException"
    import_material(eu, key_id, second, ImportType="EXISTING_KEY_MATERIAL")
    us.rotate_key_on_demand(KeyId=key_id)
    assert eu.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"] == second_id

    server.restart()
    us = server.client(region="us-east-1")
    eu = server.client(region="eu-west-1")
    blob2 = eu.encrypt(KeyId=key_id, Plaintext=b"after restart")["CiphertextBlob"]
    assert us.decrypt(CiphertextBlob=blob2)["Plaintext"] == b"after restart"
    assert us.decrypt(CiphertextBlob=blob)["Plaintext"] == b"imported everywhere"
    assert eu.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == first_id

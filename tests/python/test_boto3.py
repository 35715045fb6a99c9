"""boto3 (botocore) against the real keyhold binary."""

import json
import os
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import Server


def error(exc: ClientError):
    return exc.response["Error"]["Code"], exc.response["Error"].get("Message", "")


def test_create_describe_list_encrypt_decrypt_restart(server, kms):
    md = kms.create_key(Description="from boto3")["KeyMetadata"]
    key_id = md["KeyId"]
    assert md["Arn"] == f"arn:aws:kms:us-east-1:123456789012:key/{key_id}"
    assert md["KeyState"] == "Enabled" and md["Enabled"] is True
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT" and md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["Origin"] == "AWS_KMS" and md["KeyManager"] == "CUSTOMER"
    assert md["Description"] == "from boto3"

    assert kms.describe_key(KeyId=md["Arn"])["KeyMetadata"]["KeyId"] == key_id
    listed = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate() for k in page["Keys"]]
    assert key_id in listed

    ctx = {"app": "py", "n": "1"}
    enc = kms.encrypt(KeyId=key_id, Plaintext=b"secret bytes", EncryptionContext=ctx)
    assert enc["KeyId"] == md["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    blob = enc["CiphertextBlob"]
    assert b"secret bytes" not in blob

    dec = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
    assert dec["Plaintext"] == b"secret bytes"
    assert dec["KeyId"] == md["Arn"]

    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"app": "other"})
    assert error(e.value)[0] == "InvalidCiphertextException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    server.restart()
    kms2 = server.client()
    assert kms2.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"secret bytes"


def test_errors_match_aws(kms):
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId="0b3e2c4a-1111-4222-8333-944455556666")
    assert error(e.value) == (
        "NotFoundException",
        "Key 'arn:aws:kms:us-east-1:123456789012:key/0b3e2c4a-1111-4222-8333-944455556666' does not exist",
    )
    with pytest.raises(ClientError) as e:
        kms.list_keys(Limit=1001)
    assert error(e.value) == (
        "ValidationException",
        "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 1000",
    )
    # Every operation of the model is implemented; a target outside it is unknown, as in AWS.
    req = urllib.request.Request(
        kms.meta.endpoint_url + "/",
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "TrentService.NoSuchOperation",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 400
    assert json.loads(e.value.read())["__type"].endswith("UnknownOperationException")


def test_paginator_sees_every_key_once(kms):
    created = sorted(kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(7))
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}))
    assert len(pages) == 3
    assert [k["KeyId"] for p in pages for k in p["Keys"]] == created


def test_moto_reset(server, kms):
    kms.create_key()
    req = urllib.request.Request(server.endpoint + "/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    assert kms.list_keys()["Keys"] == []


def test_strict_mode_verifies_botocore_signatures(tmp_path):
    akid, secret = "AKIAKEYHOLDPYTEST001", "pYtHoNsEcReT000000000000000000000000000000"
    cfg = tmp_path / "keyhold.toml"
    cfg.write_text(
        'auth = "strict"\n[[access_keys]]\n'
        f'access_key_id = "{akid}"\nsecret_access_key = "{secret}"\naccount_id = "210987654321"\n'
    )
    root_key = tmp_path / "root.key"
    root_key.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    os.chmod(root_key, 0o600)  # Keyhold refuses a key file others can read
    s = Server("--config", str(cfg), "--root-key-file", str(root_key))
    try:
        md = s.client(akid, secret).create_key()["KeyMetadata"]
        assert md["AWSAccountId"] == "210987654321"
        with pytest.raises(ClientError) as e:
            s.client(akid, "wrong" + secret[5:]).list_keys()
        assert error(e.value)[0] == "InvalidSignatureException"
        with pytest.raises(ClientError) as e:
            s.client("AKIAUNKNOWNPYTEST000", secret).list_keys()
        assert error(e.value) == (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    finally:
        s.close()

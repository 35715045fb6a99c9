"""The audit trail (`--audit-log`) seen from boto3: each record names what boto3 sent
(User-Agent, source address, access key and IAM user) and what it received (the request id),
and holds no plaintext.
"""

import base64
import json

import pytest
from botocore.exceptions import ClientError
from conftest import Server

CONFIG = """
[[access_keys]]
access_key_id = "AKIAAUDITALICE000001"
secret_access_key = "alice-secret-not-logged"
account_id = "111122223333"
principal_arn = "arn:aws:iam::111122223333:user/alice"
identity_policies = [
  '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}',
]
"""


@pytest.fixture
def audited(tmp_path):
    config = tmp_path / "keyhold.toml"
    config.write_text(CONFIG)
    log = tmp_path / "audit.log"
    s = Server("--config", str(config), "--audit-log", str(log))
    yield s, log
    s.stop()


def records(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_records_match_what_boto3_sent_and_received(audited):
    server, log = audited
    kms = server.client(access_key="AKIAAUDITALICE000001", secret="alice-secret-not-logged")
    sent = []
    kms.meta.events.register(
        "before-send.kms.*", lambda request, **_: sent.append(request.headers["User-Agent"])
    )

    created = kms.create_key(Description="audited")
    key = created["KeyMetadata"]
    plaintext = b"boto3-plaintext-mark"
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=plaintext, EncryptionContext={"app": "py"})
    with pytest.raises(ClientError) as failed:
        kms.disable_key(KeyId="alias/missing")

    rs = records(log)
    assert [r["eventName"] for r in rs] == ["CreateKey", "Encrypt", "DisableKey"]
    received = [
        created["ResponseMetadata"]["RequestId"],
        enc["ResponseMetadata"]["RequestId"],
        failed.value.response["ResponseMetadata"]["RequestId"],
    ]
    for r, user_agent, request_id in zip(rs, sent, received):
        ua = user_agent.decode() if isinstance(user_agent, bytes) else user_agent
        assert r["userAgent"] == ua
        assert r["sourceIPAddress"] == "127.0.0.1"
        assert r["userIdentity"] == {
            "type": "IAMUser",
            "principalId": "alice",
            "arn": "arn:aws:iam::111122223333:user/alice",
            "accountId": "111122223333",
            "accessKeyId": "AKIAAUDITALICE000001",
            "userName": "alice",
        }
        assert r["recipientAccountId"] == "111122223333"
        assert r["requestID"] == request_id
    assert rs[1]["requestParameters"] == {
        "keyId": key["KeyId"],
        "encryptionContext": {"app": "py"},
        "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }
    assert rs[1]["resources"] == [
        {"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": key["Arn"]}
    ]
    assert rs[2]["errorCode"] == "NotFoundException"
    assert rs[2]["errorMessage"] == failed.value.response["Error"]["Message"]

    text = log.read_text()
    for secret in (
        plaintext.decode(),
        base64.b64encode(plaintext).decode(),
        base64.b64encode(enc["CiphertextBlob"]).decode(),
        "alice-secret-not-logged",
    ):
        assert secret not in text

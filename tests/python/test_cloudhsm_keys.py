"""boto3 and the AWS CLI against the real keyhold binary: KMS keys in an AWS_CLOUDHSM custom key
store on a real SoftHSMv2 token — CreateKey, AES-GCM inside the HSM in every cryptographic
operation, GenerateRandom from the HSM, Unavailable while disconnected, and scheduled deletion
(skipped without SoftHSMv2)."""

import base64
import json
import os
import subprocess
import urllib.request

import pytest
from botocore.exceptions import ClientError

from cloudhsm_pki import sign, trust_anchor
from conftest import Server, hsm_client, keyhold_cloudhsm, wait_final

ADMIN = "adminPass1"
KMSUSER_PW = "kmsPswd1"
ANCHOR = trust_anchor()

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/lib/softhsm/libsofthsm2.so") and os.environ.get("CI") != "true",
    reason="SoftHSMv2 not installed",
)


@pytest.fixture
def server(tmp_path):
    config = tmp_path / "keyhold.toml"
    config.write_text("[cloudhsm]\nenabled = true\n")
    s = Server("--test-mode", "--config", str(config))
    yield s
    s.close()




def connected_store(server):
    hsm = hsm_client(server)
    cluster = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-1c1c1c1c", "subnet-2d2d2d2d"])
    cid = cluster["Cluster"]["ClusterId"]
    zones = sorted(cluster["Cluster"]["SubnetMapping"])
    hsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[0])
    csr = hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]["Certificates"]["ClusterCsr"]
    hsm.initialize_cluster(ClusterId=cid, SignedCert=sign(csr), TrustAnchor=ANCHOR)
    hsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])
    keyhold_cloudhsm(server, "activate-cluster", "--cluster-id", cid, admin=ADMIN)
    keyhold_cloudhsm(server, "user", "create", "--cluster-id", cid, admin=ADMIN, password=KMSUSER_PW)
    kms = server.client()
    store = kms.create_custom_key_store(
        CustomKeyStoreName="hsm-keys", CloudHsmClusterId=cid,
        TrustAnchorCertificate=ANCHOR, KeyStorePassword=KMSUSER_PW,
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert wait_final(kms, store) == ("CONNECTED", None)
    return kms, store, cid


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_cloudhsm_key_round_trips_with_boto3_and_cli(server, tmp_path):
    kms, store, cid = connected_store(server)
    md = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]
    key, arn = md["KeyId"], md["Arn"]
    assert md["Origin"] == "AWS_CLOUDHSM"
    assert md["CloudHsmClusterId"] == cid
    assert md["CustomKeyStoreId"] == store
    assert "CurrentKeyMaterialId" not in md

    blob = kms.encrypt(KeyId=key, Plaintext=b"in the hsm", EncryptionContext={"a": "1"})["CiphertextBlob"]
    out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})
    assert out["Plaintext"] == b"in the hsm" and out["KeyId"] == arn
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "2"})
    assert code(e) == "InvalidCiphertextException"

    dk = kms.generate_data_key(KeyId=key, KeySpec="AES_128")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert len(dk["Plaintext"]) == 16
    wp = kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=24)
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 24

    other = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "1"}, DestinationKeyId=other)
    back = kms.re_encrypt(CiphertextBlob=moved["CiphertextBlob"], DestinationKeyId=key)
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"])["Plaintext"] == b"in the hsm"

    assert len(kms.generate_random(NumberOfBytes=32, CustomKeyStoreId=store)["Plaintext"]) == 32
    assert len(kms.generate_random(NumberOfBytes=5)["Plaintext"]) == 5

    # The AWS CLI: encrypt and decrypt through the same key (binary files, as AWS documents).
    env = server.cli_env()
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"hello from the cli")
    out = subprocess.run(
        ["aws", "kms", "encrypt", "--endpoint-url", server.endpoint, "--key-id", key,
         "--plaintext", f"fileb://{plain}", "--output", "json"],
        env=env, check=True, capture_output=True, text=True,
    )
    ct_file = tmp_path / "ct.bin"
    ct_file.write_bytes(base64.b64decode(json.loads(out.stdout)["CiphertextBlob"]))
    out = subprocess.run(
        ["aws", "kms", "decrypt", "--endpoint-url", server.endpoint,
         "--ciphertext-blob", f"fileb://{ct_file}", "--output", "json"],
        env=env, check=True, capture_output=True, text=True,
    )
    assert base64.b64decode(json.loads(out.stdout)["Plaintext"]) == b"hello from the cli"

    # Disconnected: Unavailable; reconnected: Enabled again.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    wait_final(kms, store)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Unavailable"
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key, Plaintext=b"x")
    assert code(e) == "KMSInvalidStateException"
    assert e.value.response["Error"]["Message"] == f"{arn} is unavailable."
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert wait_final(kms, store) == ("CONNECTED", None)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"

    # Scheduled deletion, completed through the test-mode hook.
    sched = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert sched["KeyState"] == "PendingDeletion" and sched["PendingWindowInDays"] == 7
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})
    assert code(e) == "KMSInvalidStateException"
    req = urllib.request.Request(server.endpoint + "/keyhold-test/complete-pending-deletions", method="POST")
    with urllib.request.urlopen(req) as resp:
        assert json.loads(resp.read())["deleted"] == 1
    with pytest.raises(ClientError) as e:
        kms.describe_key(KeyId=key)
    assert code(e) == "NotFoundException"

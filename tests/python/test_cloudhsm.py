"""boto3 and the AWS CLI against the real keyhold binary: the AWS CloudHSM v2 API subset and an
AWS_CLOUDHSM custom key store on a real SoftHSMv2 token (skipped without SoftHSMv2)."""

import json
import os
import subprocess

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
    config.write_text("[cloudhsm]\nenabled = true\nfault_injection = true\n")
    s = Server("--test-mode", "--config", str(config))
    yield s
    s.close()





def test_cluster_to_connected_key_store(server):
    hsm = hsm_client(server)
    kms = server.client()

    # The AWS CLI creates the cluster as it would on AWS.
    out = subprocess.run(
        ["aws", "cloudhsmv2", "create-cluster", "--endpoint-url", server.endpoint,
         "--hsm-type", "hsm2m.medium", "--subnet-ids", "subnet-0a1b2c3d", "subnet-4e5f6a7b"],
        env=server.cli_env(), check=True, capture_output=True, text=True,
    )
    cluster = json.loads(out.stdout)["Cluster"]
    cid = cluster["ClusterId"]
    assert cluster["State"] == "UNINITIALIZED"
    zones = sorted(cluster["SubnetMapping"])

    with pytest.raises(ClientError) as e:
        hsm.initialize_cluster(ClusterId="cluster-abcdefghijk", SignedCert=ANCHOR, TrustAnchor=ANCHOR)
    assert e.value.response["Error"]["Code"] == "CloudHsmResourceNotFoundException"

    hsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[0])
    described = hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]
    assert "CERTIFICATE REQUEST" in described["Certificates"]["ClusterCsr"]
    assert described["CreateTimestamp"].year >= 2024
    signed = sign(described["Certificates"]["ClusterCsr"])
    assert hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=ANCHOR)["State"] == "INITIALIZED"
    hsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])
    keyhold_cloudhsm(server, "activate-cluster", "--cluster-id", cid, admin=ADMIN)
    keyhold_cloudhsm(server, "user", "create", "--cluster-id", cid, admin=ADMIN, password=KMSUSER_PW)
    assert hsm.describe_clusters(Filters={"states": ["ACTIVE"]})["Clusters"][0]["ClusterId"] == cid

    store = kms.create_custom_key_store(
        CustomKeyStoreName="hsm-store", CloudHsmClusterId=cid,
        TrustAnchorCertificate=ANCHOR, KeyStorePassword=KMSUSER_PW,
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert wait_final(kms, store) == ("CONNECTED", None)

    # A wrong password fails for real; AWS's fix reconnects.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    wait_final(kms, store)
    kms.update_custom_key_store(CustomKeyStoreId=store, KeyStorePassword="wrongPass1")
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert wait_final(kms, store) == ("FAILED", "INVALID_CREDENTIALS")
    kms.disconnect_custom_key_store(CustomKeyStoreId=store)
    wait_final(kms, store)
    # Connecting rotated kmsuser's password (as AWS KMS does): set a new one, tell KMS.
    keyhold_cloudhsm(server, "user", "change-password", "--cluster-id", cid, admin=ADMIN, password="fixPass11")
    kms.update_custom_key_store(CustomKeyStoreId=store, KeyStorePassword="fixPass11")
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert wait_final(kms, store) == ("CONNECTED", None)

    # Tags.
    hsm.tag_resource(ResourceId=cid, TagList=[{"Key": "team", "Value": "kms"}, {"Key": "env", "Value": "dev"}])
    hsm.untag_resource(ResourceId=cid, TagKeyList=["env"])
    assert hsm.list_tags(ResourceId=cid)["TagList"] == [{"Key": "team", "Value": "kms"}]

    # DeleteCluster is refused while HSMs exist.
    with pytest.raises(ClientError) as e:
        hsm.delete_cluster(ClusterId=cid)
    assert e.value.response["Error"]["Code"] == "CloudHsmInvalidRequestException"

"""AWS CloudHSM's getting-started guide with boto3 against the real keyhold binary (default
configuration: CloudHSM is on because SoftHSMv2 is installed; skipped without it):
CreateCluster → DescribeClusters (UNINITIALIZED) → CreateHsm → the cluster CSR, checked with
`openssl req -verify` and signed by a customer CA made with `cryptography` → InitializeCluster →
DescribeClusters (INITIALIZED, the cluster certificate) → activate, kmsuser, a custom key store,
a key, encryption. And InitializeCluster's refusals."""

import os
import shutil
import subprocess
import time

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from cloudhsm_pki import new_ca, pem, sign, trust_anchor
from conftest import Server, hsm_client, keyhold_cloudhsm, wait_final

ADMIN = "adminPass1"
KMSUSER_PW = "kmsPswd1"

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/lib/softhsm/libsofthsm2.so") and os.environ.get("CI") != "true",
    reason="SoftHSMv2 not installed",
)


@pytest.fixture
def server():
    # No configuration at all: the embedded default serves CloudHSM.
    s = Server("--test-mode")
    yield s
    s.close()


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def message(excinfo):
    return excinfo.value.response["Error"]["Message"]


def describe(hsm, cid):
    return hsm.describe_clusters(Filters={"clusterIds": [cid]})["Clusters"][0]


def new_cluster_with_csr(hsm):
    cluster = hsm.create_cluster(HsmType="hsm2m.medium", SubnetIds=["subnet-7a7a7a7a", "subnet-7b7b7b7b"])
    cid = cluster["Cluster"]["ClusterId"]
    zones = sorted(cluster["Cluster"]["SubnetMapping"])
    deadline = time.monotonic() + 30
    while describe(hsm, cid)["State"] != "UNINITIALIZED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    hsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[0])
    csr = describe(hsm, cid)["Certificates"]["ClusterCsr"]
    return cid, zones, csr


def test_getting_started(server, tmp_path):
    hsm = hsm_client(server)
    kms = server.client()
    cid, zones, csr = new_cluster_with_csr(hsm)

    # A real PKCS#10 request for an RSA 2048 key, naming the cluster.
    req = x509.load_pem_x509_csr(csr.encode())
    assert req.is_signature_valid
    assert isinstance(req.public_key(), rsa.RSAPublicKey) and req.public_key().key_size == 2048
    assert cid in req.subject.rfc4514_string()
    if shutil.which("openssl"):
        csr_file = tmp_path / f"{cid}_ClusterCsr.csr"
        csr_file.write_text(csr)
        out = subprocess.run(["openssl", "req", "-in", str(csr_file), "-noout", "-verify"],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "verify OK" in (out.stdout + out.stderr)

    # Sign it with the customer CA and claim the cluster.
    signed = sign(csr)
    out = hsm.initialize_cluster(ClusterId=cid, SignedCert=signed, TrustAnchor=trust_anchor())
    assert out["State"] == "INITIALIZED"
    c = describe(hsm, cid)
    assert c["State"] == "INITIALIZED"
    assert c["Certificates"]["ClusterCertificate"] == signed
    assert "ClusterCsr" not in c["Certificates"]

    # The rest of the guide, as far as Keyhold goes.
    hsm.create_hsm(ClusterId=cid, AvailabilityZone=zones[1])
    keyhold_cloudhsm(server, "activate-cluster", "--cluster-id", cid, admin=ADMIN)
    keyhold_cloudhsm(server, "user", "create", "--cluster-id", cid, admin=ADMIN, password=KMSUSER_PW)
    assert describe(hsm, cid)["State"] == "ACTIVE"
    store = kms.create_custom_key_store(
        CustomKeyStoreName="getting-started", CloudHsmClusterId=cid,
        TrustAnchorCertificate=trust_anchor(), KeyStorePassword=KMSUSER_PW,
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store)
    assert wait_final(kms, store) == ("CONNECTED", None)
    key = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store)["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"getting started")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"getting started"


def test_initialize_cluster_refuses_certificates_aws_would_refuse(server):
    hsm = hsm_client(server)
    cid, _, csr = new_cluster_with_csr(hsm)

    # Issued by the trust anchor, but for another key.
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ClientError) as e:
        hsm.initialize_cluster(ClusterId=cid, SignedCert=sign(csr, public_key=other_key.public_key()),
                               TrustAnchor=trust_anchor())
    assert code(e) == "CloudHsmInvalidRequestException"
    assert "public key" in message(e)

    # For the CSR's key, but signed by another CA (even one with the same name).
    impostor = new_ca()
    with pytest.raises(ClientError) as e:
        hsm.initialize_cluster(ClusterId=cid, SignedCert=sign(csr, ca=impostor), TrustAnchor=trust_anchor())
    assert code(e) == "CloudHsmInvalidRequestException"
    assert "not signed by the trust anchor" in message(e)

    # Not a certificate at all.
    with pytest.raises(ClientError) as e:
        hsm.initialize_cluster(ClusterId=cid, SignedCert=pem(impostor[1]).replace("M", "A", 5),
                               TrustAnchor=trust_anchor())
    assert code(e) == "CloudHsmInvalidRequestException"

    c = describe(hsm, cid)
    assert c["State"] == "UNINITIALIZED" and c["Certificates"]["ClusterCsr"] == csr

    # The right certificate still works afterwards.
    assert hsm.initialize_cluster(ClusterId=cid, SignedCert=sign(csr),
                                  TrustAnchor=trust_anchor())["State"] == "INITIALIZED"


def test_unknown_cluster_is_refused_for_a_key_store(server):
    kms = server.client()
    with pytest.raises(ClientError) as e:
        kms.create_custom_key_store(
            CustomKeyStoreName="ghost", CloudHsmClusterId="cluster-abcdefghijk",
            TrustAnchorCertificate=trust_anchor(), KeyStorePassword=KMSUSER_PW,
        )
    assert code(e) == "CloudHsmClusterNotFoundException"


def test_without_a_module_cloudhsm_says_what_to_install(tmp_path):
    config = tmp_path / "keyhold.toml"
    config.write_text('[cloudhsm]\nmodule_path = "/nonexistent/libpkcs11.so"\n')
    s = Server("--test-mode", "--config", str(config))
    try:
        with pytest.raises(ClientError) as e:
            hsm_client(s).describe_clusters()
        assert code(e) == "CloudHsmServiceException"
        assert "apt-get install softhsm2" in message(e) and "module_path" in message(e)
        with pytest.raises(ClientError) as e:
            s.client().create_custom_key_store(
                CustomKeyStoreName="x", CloudHsmClusterId="cluster-abcdefghijk",
                TrustAnchorCertificate=trust_anchor(), KeyStorePassword=KMSUSER_PW,
            )
        assert code(e) == "CloudHsmClusterNotFoundException"
        assert "softhsm2" in message(e)
    finally:
        s.close()

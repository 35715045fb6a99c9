"""boto3 against the real keyhold binary: the custom key store control plane.

No XKS proxy runs here (the Rust end-to-end tests drive real loopback proxies); these tests use
AWS CloudHSM stores, VPC-connectivity external key stores (not probed at creation) and an
unreachable public endpoint.
"""

import time

import pytest
from botocore.exceptions import ClientError

from conftest import Server

SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
ACCESS_KEY_ID = "ABCDEFGHIJKLMNOPQRST"
VPCES = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
VPCES_2 = "com.amazonaws.vpce.us-east-1.vpce-svc-0aaaaaaaaaaaaaaaa"
VPCES_INVALID = "com.amazonaws.vpce.us-east-1.vpce-svc-0bbbbbbbbbbbbbbbb"
VPCES_UNKNOWN = "com.amazonaws.vpce.us-east-1.vpce-svc-0cccccccccccccccc"

# VPC endpoint services are declared in Keyhold's configuration. Nothing listens on port 1, so
# stores behind the valid ones are created but cannot connect.
CONFIG = f"""
[xks.vpc_endpoint_services."{VPCES}"]
address = "127.0.0.1:1"
allowed_principals = ["cks.kms.us-east-1.amazonaws.com"]
[xks.vpc_endpoint_services."{VPCES_2}"]
address = "127.0.0.1:1"
allowed_principals = ["cks.kms.us-east-1.amazonaws.com"]
[xks.vpc_endpoint_services."{VPCES_INVALID}"]
address = "127.0.0.1:1"
allowed_principals = []
"""


# CloudHSM key stores need clusters that exist. These are bound by configuration to a token
# that does not exist: CreateCustomKeyStore finds them ACTIVE with two HSMs, Connect fails for
# real (the token cannot be reached).
HSM_ANCHOR = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
CLUSTERS = list(dict.fromkeys(
    ["cluster-234567abcde", "cluster-abcdefghijk", "cluster-aaaaaaaaaaa", "cluster-bbbbbbbbbbb",
     "cluster-ccccccccccc"]
    + [f"cluster-aaaaaaaaaa{c}" for c in "abcde"]
    + [f"cluster-bbbbbbbbbb{c}" for c in "fghij"]
))


def bound_clusters(anchor_file):
    text = "[cloudhsm]\nenabled = true\n"
    for cluster in CLUSTERS:
        text += (
            f'[[cloudhsm.bound_clusters]]\ncluster_id = "{cluster}"\naccount_id = "123456789012"\n'
            f'region = "us-east-1"\nmodule_path = "/usr/lib/softhsm/libsofthsm2.so"\n'
            f'token_label = "absent-{cluster}"\ntrust_anchor_file = "{anchor_file}"\n'
        )
    return text


@pytest.fixture
def server(tmp_path):
    config = tmp_path / "keyhold.toml"
    anchor = tmp_path / "customerCA.crt"
    anchor.write_text(HSM_ANCHOR)
    config.write_text(CONFIG + bound_clusters(anchor))
    s = Server("--test-mode", "--config", str(config))
    yield s
    s.close()


@pytest.fixture
def kms(server):
    return server.client()


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def create_hsm(kms, name, cluster="cluster-234567abcde", password="kmsPswd1"):
    return kms.create_custom_key_store(
        CustomKeyStoreName=name,
        CloudHsmClusterId=cluster,
        TrustAnchorCertificate=HSM_ANCHOR,
        KeyStorePassword=password,
    )["CustomKeyStoreId"]


def create_vpc(kms, name, endpoint="https://vpc.example.test", path="/kms/xks/v1", service=VPCES):
    return kms.create_custom_key_store(
        CustomKeyStoreName=name,
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
        XksProxyUriEndpoint=endpoint,
        XksProxyUriPath=path,
        XksProxyVpcEndpointServiceName=service,
        XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
    )["CustomKeyStoreId"]


def describe(kms, store_id):
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]


def wait_final(kms, store_id, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        entry = describe(kms, store_id)
        if entry["ConnectionState"] not in ("CONNECTING", "DISCONNECTING"):
            return entry
        assert time.monotonic() < deadline, f"{store_id} stuck in {entry['ConnectionState']}"
        time.sleep(0.05)


def test_cloudhsm_store_lifecycle(server, kms):
    store_id = create_hsm(kms, "hsm")
    assert store_id.startswith("cks-") and len(store_id) == 21
    entry = describe(kms, store_id)
    assert entry["CustomKeyStoreName"] == "hsm"
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert entry["CloudHsmClusterId"] == "cluster-234567abcde"
    assert entry["TrustAnchorCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert "ConnectionErrorCode" not in entry and "XksProxyConfiguration" not in entry
    assert "KeyStorePassword" not in entry
    assert entry["CreationDate"].year >= 2024

    # Identical retry of a disconnected CloudHSM store returns the same id.
    assert create_hsm(kms, "hsm") == store_id

    # Connect: the cluster's token cannot be reached, so the store fails honestly.
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = wait_final(kms, store_id)
    assert entry["ConnectionState"] == "FAILED"
    assert entry["ConnectionErrorCode"] == "NETWORK_ERRORS"
    with pytest.raises(ClientError) as e:
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert code(e) == "CustomKeyStoreInvalidStateException"
    with pytest.raises(ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="x")
    assert code(e) == "CustomKeyStoreInvalidStateException"
    with pytest.raises(ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert code(e) == "CustomKeyStoreInvalidStateException"

    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    entry = wait_final(kms, store_id)
    assert entry["ConnectionState"] == "DISCONNECTED" and "ConnectionErrorCode" not in entry
    with pytest.raises(ClientError) as e:
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert code(e) == "CustomKeyStoreInvalidStateException"

    # Another cluster must share the store's cluster's backup history.
    with pytest.raises(ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId="cluster-abcdefghijk")
    assert code(e) == "CloudHsmClusterNotRelatedException"
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        NewCustomKeyStoreName="hsm-renamed",
        KeyStorePassword="newPswd2",
    )
    entry = describe(kms, store_id)
    assert entry["CustomKeyStoreName"] == "hsm-renamed"
    assert entry["CloudHsmClusterId"] == "cluster-234567abcde"
    with pytest.raises(ClientError) as e:
        kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyUriPath="/kms/xks/v1")
    assert code(e) == "ValidationException"

    server.restart()
    kms = server.client()
    assert describe(kms, store_id)["CustomKeyStoreName"] == "hsm-renamed"
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    with pytest.raises(ClientError) as e:
        kms.describe_custom_key_stores(CustomKeyStoreId=store_id)
    assert code(e) == "CustomKeyStoreNotFoundException"
    with pytest.raises(ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert code(e) == "CustomKeyStoreNotFoundException"


def test_vpc_external_key_store_fields_and_connect_failure(kms):
    store_id = create_vpc(kms, "vpc")
    entry = describe(kms, store_id)
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert "CloudHsmClusterId" not in entry and "TrustAnchorCertificate" not in entry
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "VPC_ENDPOINT_SERVICE",
        "AccessKeyId": ACCESS_KEY_ID,
        "UriEndpoint": "https://vpc.example.test",
        "UriPath": "/kms/xks/v1",
        "VpcEndpointServiceName": VPCES,
    }
    raw = kms.describe_custom_key_stores()
    assert SECRET not in str(raw)

    # Nothing answers behind the endpoint service.
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    entry = wait_final(kms, store_id)
    assert entry["ConnectionState"] == "FAILED"
    assert entry["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert wait_final(kms, store_id)["ConnectionState"] == "DISCONNECTED"

    # While DISCONNECTED a VPC store's endpoint and path can change (probed when it connects).
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        XksProxyUriEndpoint="https://vpc2.example.test",
        XksProxyUriPath="/p/kms/xks/v1",
    )
    cfg = describe(kms, store_id)["XksProxyConfiguration"]
    assert cfg["UriEndpoint"] == "https://vpc2.example.test" and cfg["UriPath"] == "/p/kms/xks/v1"


def test_vpc_endpoint_service_must_be_declared_and_valid(kms):
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "unknown", service=VPCES_UNKNOWN)
    assert code(e) == "XksProxyVpcEndpointServiceNotFoundException"
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "invalid", service=VPCES_INVALID)
    assert code(e) == "XksProxyVpcEndpointServiceInvalidConfigurationException"
    store_id = create_vpc(kms, "valid")
    with pytest.raises(ClientError) as e:
        kms.update_custom_key_store(
            CustomKeyStoreId=store_id,
            XksProxyUriEndpoint="https://other.example.test",
            XksProxyVpcEndpointServiceName=VPCES_UNKNOWN,
        )
    assert code(e) == "XksProxyVpcEndpointServiceNotFoundException"
    assert describe(kms, store_id)["XksProxyConfiguration"]["VpcEndpointServiceName"] == VPCES


def test_public_endpoint_is_probed_at_creation(kms):
    with pytest.raises(ClientError) as e:
        kms.create_custom_key_store(
            CustomKeyStoreName="public",
            CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyUriEndpoint="https://unreachable.invalid",
            XksProxyUriPath="/kms/xks/v1",
            XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
        )
    assert code(e) == "XksProxyUriUnreachableException"
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_uniqueness_and_validation(kms):
    create_hsm(kms, "a", cluster="cluster-aaaaaaaaaaa")
    with pytest.raises(ClientError) as e:
        create_hsm(kms, "a", cluster="cluster-bbbbbbbbbbb")
    assert code(e) == "CustomKeyStoreNameInUseException"
    with pytest.raises(ClientError) as e:
        create_hsm(kms, "b", cluster="cluster-aaaaaaaaaaa")
    assert code(e) == "CloudHsmClusterInUseException"

    create_vpc(kms, "v1")
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "v2")
    assert code(e) == "XksProxyUriInUseException"
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "v3", path="/other/kms/xks/v1",
                   service=VPCES_2)
    assert code(e) == "XksProxyUriEndpointInUseException"
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "v4", endpoint="https://vpc-other.example.test")
    assert code(e) == "XksProxyVpcEndpointServiceInUseException"

    # Missing or foreign type-specific parameters.
    with pytest.raises(ClientError) as e:
        kms.create_custom_key_store(CustomKeyStoreName="c", CloudHsmClusterId="cluster-ccccccccccc")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        kms.create_custom_key_store(
            CustomKeyStoreName="d",
            CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
            XksProxyUriEndpoint="https://d.example.test",
            XksProxyUriPath="/kms/xks/v1",
            XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
        )
    assert code(e) == "ValidationException"
    # Model constraints: endpoint with a port, path with a trailing slash.
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "e", endpoint="https://e.example.test:8443")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        create_vpc(kms, "f", path="/kms/xks/v1/")
    assert code(e) == "ValidationException"


def test_describe_pagination_and_errors(kms):
    ids = sorted(create_hsm(kms, f"s{i}", cluster=f"cluster-aaaaaaaaaa{c}") for i, c in enumerate("abcde"))
    pages = list(kms.get_paginator("describe_custom_key_stores").paginate(PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    seen = [e["CustomKeyStoreId"] for p in pages for e in p["CustomKeyStores"]]
    assert seen == ids
    first = kms.describe_custom_key_stores(Limit=2)
    assert first["Truncated"] is True and "NextMarker" in first
    last = kms.describe_custom_key_stores(Limit=1000)
    assert last["Truncated"] is False and "NextMarker" not in last

    by_name = kms.describe_custom_key_stores(CustomKeyStoreName="s2")["CustomKeyStores"]
    assert [e["CustomKeyStoreName"] for e in by_name] == ["s2"]
    with pytest.raises(ClientError) as e:
        kms.describe_custom_key_stores(Marker="bogus")
    assert code(e) == "InvalidMarkerException"
    with pytest.raises(ClientError) as e:
        kms.describe_custom_key_stores(CustomKeyStoreName="missing")
    assert code(e) == "CustomKeyStoreNotFoundException"
    with pytest.raises(ClientError) as e:
        kms.describe_custom_key_stores(CustomKeyStoreId="cks-00000000000000000")
    assert code(e) == "CustomKeyStoreNotFoundException"

    # The default quota is 10 stores per account and Region.
    for i, c in enumerate("fghij"):
        create_hsm(kms, f"t{i}", cluster=f"cluster-bbbbbbbbbb{c}")
    with pytest.raises(ClientError) as e:
        create_hsm(kms, "eleventh", cluster="cluster-ccccccccccc")
    assert code(e) == "LimitExceededException"


def test_cloudhsm_store_needs_an_existing_cluster(kms):
    # As AWS: an unknown cluster id is refused.
    with pytest.raises(ClientError) as e:
        create_hsm(kms, "ghost", cluster="cluster-ddddddddddd")
    assert code(e) == "CloudHsmClusterNotFoundException"
    assert "cluster-ddddddddddd" in e.value.response["Error"]["Message"]

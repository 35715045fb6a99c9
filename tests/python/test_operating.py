"""Operating Keyhold: the admin listener (`--admin-listen`) with `/livez`, `/readyz` and
`/metrics`, scraped after real boto3 traffic and parsed with the Prometheus client library's
own text-format parser.
"""

import socket
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError
from conftest import Server
from prometheus_client.parser import text_string_to_metric_families

VPCES = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0"
# A VPC endpoint service with nothing behind it: a store on it is created DISCONNECTED.
CONFIG = f"""
[xks.vpc_endpoint_services."{VPCES}"]
address = "127.0.0.1:1"
allowed_principals = ["cks.kms.us-east-1.amazonaws.com"]
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def admin(tmp_path):
    config = tmp_path / "keyhold.toml"
    config.write_text(CONFIG)
    port = free_port()
    s = Server("--test-mode", "--config", str(config), "--admin-listen", f"127.0.0.1:{port}")
    yield s, f"http://127.0.0.1:{port}"
    s.close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} of every sample, parsed by prometheus_client."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_health_and_metrics_after_real_traffic(admin):
    server, base = admin
    assert get(f"{base}/livez")[0] == 200
    assert get(f"{base}/readyz")[0] == 200
    assert get(f"{base}/nothing-here")[0] == 404

    kms = server.client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(3):
        kms.encrypt(KeyId=key_id, Plaintext=b"counted")
    with pytest.raises(ClientError):
        kms.describe_key(KeyId="alias/does-not-exist")
    kms.create_custom_key_store(
        CustomKeyStoreName="metrics",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
        XksProxyUriEndpoint="https://vpc.example.test",
        XksProxyUriPath="/kms/xks/v1",
        XksProxyVpcEndpointServiceName=VPCES,
        XksProxyAuthenticationCredential={
            "AccessKeyId": "ABCDEFGHIJKLMNOPQRST",
            "RawSecretAccessKey": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==",
        },
    )

    status, content_type, text = get(f"{base}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
    got = samples(text)

    def requests(operation, outcome):
        labels = frozenset({"service": "kms", "operation": operation, "outcome": outcome}.items())
        return got.get(("keyhold_requests_total", labels))

    assert requests("Encrypt", "success") == 3
    assert requests("CreateKey", "success") == 1
    assert requests("DescribeKey", "NotFoundException") == 1
    encrypt = frozenset({"service": "kms", "operation": "Encrypt"}.items())
    assert got[("keyhold_request_duration_seconds_count", encrypt)] == 3
    inf = frozenset({"service": "kms", "operation": "Encrypt", "le": "+Inf"}.items())
    assert got[("keyhold_request_duration_seconds_bucket", inf)] == 3
    store = frozenset(
        {"custom_key_store_type": "EXTERNAL_KEY_STORE", "connection_state": "DISCONNECTED"}.items()
    )
    assert got[("keyhold_custom_key_stores", store)] == 1
    assert got[("keyhold_up", frozenset())] == 1
    # Nothing secret or identifying reaches the metrics.
    assert "c2VjcmV0" not in text and key_id not in text and "counted" not in text


def test_metrics_are_off_without_the_admin_listener(server):
    # The default server has no admin listener; its KMS port does not serve /metrics either.
    status, _, _ = get(f"{server.endpoint}/metrics")
    assert status != 200


def test_per_store_metrics_and_diagnostics_of_a_failed_connection(admin):
    import json
    import time

    server, base = admin
    kms = server.client()
    store_id = kms.create_custom_key_store(
        CustomKeyStoreName="unreachable",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
        XksProxyUriEndpoint="https://vpc.example.test",
        XksProxyUriPath="/kms/xks/v1",
        XksProxyVpcEndpointServiceName=VPCES,
        XksProxyAuthenticationCredential={
            "AccessKeyId": "ABCDEFGHIJKLMNOPQRST",
            "RawSecretAccessKey": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==",
        },
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    deadline = time.monotonic() + 20
    while True:
        entry = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
        if entry["ConnectionState"] not in ("CONNECTING", "DISCONNECTING"):
            break
        assert time.monotonic() < deadline, entry
        time.sleep(0.05)
    # Nothing listens behind the endpoint service: AWS's code, and AWS's shape only.
    assert entry["ConnectionState"] == "FAILED"
    assert entry["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
    assert "Attempts" not in entry and "Cause" not in entry

    status, content_type, body = get(f"{base}/custom-key-stores/{store_id}/diagnostics")
    assert status == 200 and content_type == "application/json"
    d = json.loads(body)
    assert d["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
    assert d["Attempts"][0]["Cause"].startswith("cannot reach the proxy at vpc.example.test")
    assert "Verify that the XksProxyUriEndpoint and XksProxyUriPath are correct" in d["Fix"]
    assert get(f"{base}/custom-key-stores/cks-00000000000000000/diagnostics")[0] == 404

    got = samples(get(f"{base}/metrics")[2])
    calls = frozenset(
        {
            "custom_key_store_id": store_id,
            "operation": "GetHealthStatus",
            "outcome": "not_reachable",
        }.items()
    )
    assert got[("keyhold_xks_proxy_calls_total", calls)] == 1
    count = frozenset({"custom_key_store_id": store_id, "operation": "GetHealthStatus"}.items())
    assert got[("keyhold_xks_proxy_call_duration_seconds_count", count)] == 1
    keys = frozenset(
        {"custom_key_store_id": store_id, "custom_key_store_type": "EXTERNAL_KEY_STORE"}.items()
    )
    assert got[("keyhold_custom_key_store_keys", keys)] == 0

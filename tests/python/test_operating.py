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

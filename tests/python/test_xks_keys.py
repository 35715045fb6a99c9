"""boto3 against the real keyhold binary and a real loopback XKS proxy: KMS keys in an
external key store, round trips through all five cryptographic operations, Unavailable keys.

The proxy is keyhold-xks's FakeXksProxy (HTTPS, SigV4-checking, AES-256-GCM external keys),
run by its `fake_xks_proxy` example; the test builds it with cargo if it is not built yet.
"""

import json
import os
import subprocess
import tempfile
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, Server

XKS_KEY = "boto3-external-key"
HOST = "xks.example.test"


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")


def proxy_bin():
    path = os.environ.get("FAKE_XKS_PROXY_BIN") or os.path.join(
        target_dir(), "debug", "examples", "fake_xks_proxy")
    if not os.path.exists(path):
        subprocess.run(
            ["cargo", "build", "--quiet", "-p", "keyhold-xks", "--features", "testing",
             "--example", "fake_xks_proxy"],
            cwd=ROOT, check=True, timeout=900)
    return path


@pytest.fixture
def proxy():
    tmp = tempfile.TemporaryDirectory(prefix="keyhold-xks-py-")
    ready = os.path.join(tmp.name, "proxy.json")
    proc = subprocess.Popen([proxy_bin(), ready, XKS_KEY], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not os.path.exists(ready):
        if proc.poll() is not None:
            raise RuntimeError(f"fake_xks_proxy exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("fake_xks_proxy did not start within 30 s")
        time.sleep(0.02)
    with open(ready) as f:
        info = json.load(f)
    info["dir"] = tmp.name
    yield info
    proc.kill()
    proc.wait()
    tmp.cleanup()


@pytest.fixture
def kms(proxy):
    ca = os.path.join(proxy["dir"], "ca.pem")
    with open(ca, "w") as f:
        f.write(proxy["ca_pem"])
    config = os.path.join(proxy["dir"], "keyhold.toml")
    with open(config, "w") as f:
        f.write(
            "[xks]\ntimeout_ms = 1000\nuse_system_roots = false\n"
            f"extra_ca_files = [{json.dumps(ca)}]\n"
            f"[xks.connect_to]\n{json.dumps(HOST)} = {json.dumps(proxy['addr'])}\n")
    server = Server("--test-mode", "--config", config)
    yield server.client()
    server.close()


def code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def message(exc_info):
    return exc_info.value.response["Error"]["Message"]


def wait_state(kms, store_id, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        state = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)[
            "CustomKeyStores"][0]["ConnectionState"]
        if state not in ("CONNECTING", "DISCONNECTING"):
            return state
        assert time.monotonic() < deadline, f"stuck in {state}"
        time.sleep(0.05)


def connected_store(kms, proxy):
    store_id = kms.create_custom_key_store(
        CustomKeyStoreName="boto3-xks",
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint=f"https://{HOST}",
        XksProxyUriPath="/kms/xks/v1",
        XksProxyAuthenticationCredential={
            "AccessKeyId": proxy["access_key_id"],
            "RawSecretAccessKey": proxy["secret"],
        },
    )["CustomKeyStoreId"]
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert wait_state(kms, store_id) == "CONNECTED"
    return store_id


def test_xks_key_round_trips(kms, proxy):
    store_id = connected_store(kms, proxy)
    md = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id,
                        XksKeyId=XKS_KEY)["KeyMetadata"]
    key_id, arn = md["KeyId"], md["Arn"]
    assert md["Origin"] == "EXTERNAL_KEY_STORE"
    assert md["CustomKeyStoreId"] == store_id
    assert md["XksKeyConfiguration"] == {"Id": XKS_KEY}
    assert md["KeyManager"] == "CUSTOMER"
    assert md["KeyState"] == "Enabled"
    plain_arn = kms.create_key()["KeyMetadata"]["Arn"]

    ctx = {"app": "boto3"}
    enc = kms.encrypt(KeyId=key_id, Plaintext=b"hello xks", EncryptionContext=ctx)
    assert enc["KeyId"] == arn
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == b"hello xks"
    assert dec["KeyId"] == arn
    with pytest.raises(ClientError) as e:
        kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"app": "other"})
    assert code(e) == "KMSInvalidStateException"

    gdk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert gdk["KeyId"] == arn and len(gdk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=gdk["CiphertextBlob"])["Plaintext"] == gdk["Plaintext"]
    wp = kms.generate_data_key_without_plaintext(KeyId=arn, NumberOfBytes=48)
    assert "Plaintext" not in wp
    assert len(kms.decrypt(CiphertextBlob=wp["CiphertextBlob"])["Plaintext"]) == 48

    re1 = kms.re_encrypt(CiphertextBlob=enc["CiphertextBlob"], SourceEncryptionContext=ctx,
                         DestinationKeyId=plain_arn)
    assert re1["SourceKeyId"] == arn and re1["KeyId"] == plain_arn
    assert re1["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert re1["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    re2 = kms.re_encrypt(CiphertextBlob=re1["CiphertextBlob"], DestinationKeyId=key_id,
                         DestinationEncryptionContext=ctx)
    assert re2["SourceKeyId"] == plain_arn and re2["KeyId"] == arn
    assert kms.decrypt(CiphertextBlob=re2["CiphertextBlob"],
                       EncryptionContext=ctx)["Plaintext"] == b"hello xks"

    with pytest.raises(ClientError) as e:
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId=XKS_KEY)
    assert code(e) == "XksKeyAlreadyInUseException"
    with pytest.raises(ClientError) as e:
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="nope")
    assert code(e) == "XksKeyNotFoundException"

    # Disconnected: Unavailable, crypto fails; reconnected: the old ciphertext decrypts.
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert wait_state(kms, store_id) == "DISCONNECTED"
    md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert md["KeyState"] == "Unavailable" and md["Enabled"] is False
    with pytest.raises(ClientError) as e:
        kms.encrypt(KeyId=key_id, Plaintext=b"x")
    assert code(e) == "KMSInvalidStateException"
    assert message(e) == f"{arn} is unavailable."
    with pytest.raises(ClientError) as e:
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert code(e) == "CustomKeyStoreHasCMKsException"
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert wait_state(kms, store_id) == "CONNECTED"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
    assert dec["Plaintext"] == b"hello xks"


def test_default_store_data_keys_and_re_encrypt(kms):
    a = kms.create_key()["KeyMetadata"]["Arn"]
    b = kms.create_key()["KeyMetadata"]["Arn"]
    gdk = kms.generate_data_key(KeyId=a, NumberOfBytes=24)
    assert len(gdk["Plaintext"]) == 24 and gdk["KeyId"] == a
    with pytest.raises(ClientError) as e:
        kms.generate_data_key(KeyId=a)
    assert code(e) == "ValidationException"
    assert message(e) == "Please specify either number of bytes or key spec."
    re = kms.re_encrypt(CiphertextBlob=gdk["CiphertextBlob"], DestinationKeyId=b)
    assert re["KeyId"] == b and re["SourceKeyId"] == a
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == gdk["Plaintext"]
    with pytest.raises(ClientError) as e:
        kms.re_encrypt(CiphertextBlob=gdk["CiphertextBlob"], SourceKeyId=b, DestinationKeyId=b)
    assert code(e) == "IncorrectKeyException"

"""Strict mode through boto3 and the AWS CLI: key policies, identity policies and grants.

A key user named by the key policy is allowed, another principal of the account is denied
until a grant with an encryption-context constraint lets it in (only inside the constraint),
a retired grant stops working, and another account's principal gets in exactly when both the
key policy and its own identity policy allow it.
"""

import base64
import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import Server

A = "111122223333"
B = "444455556666"
SECRET = "python-authorization-secret-000000000000"

PRINCIPALS = {
    "root": ("AKIAPYROOT000000001", A, None, []),
    "app": ("AKIAPYAPP0000000001", A, f"arn:aws:iam::{A}:role/app", []),
    "batch": ("AKIAPYBATCH00000001", A, f"arn:aws:iam::{A}:role/batch", []),
    "partner": ("AKIAPYPARTNER000001", B, f"arn:aws:iam::{B}:role/partner", [
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}]),
    "stranger": ("AKIAPYSTRANGER00001", B, f"arn:aws:iam::{B}:role/stranger", []),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("authz")
    lines = ['auth = "strict"']
    for akid, account, arn, policies in PRINCIPALS.values():
        lines += ["[[access_keys]]", f'access_key_id = "{akid}"',
                  f'secret_access_key = "{SECRET}"', f'account_id = "{account}"']
        if arn:
            lines.append(f'principal_arn = "{arn}"')
        if policies:
            lines.append("identity_policies = [" + ", ".join(
                "'''" + json.dumps(p) + "'''" for p in policies) + "]")
    cfg = d / "keyhold.toml"
    cfg.write_text("\n".join(lines) + "\n")
    rk = d / "root.key"
    rk.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    os.chmod(rk, 0o600)
    s = Server("--config", str(cfg), "--root-key-file", str(rk))
    yield s
    s.stop()


def client(server, who):
    return server.client(access_key=PRINCIPALS[who][0], secret=SECRET)


def code(e):
    return e.value.response["Error"]["Code"]


def policy(extra_statements):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "kms:*", "Resource": "*"},
        *extra_statements]})


def test_key_user_allowed_other_principal_denied_until_granted(server):
    root, app, batch = client(server, "root"), client(server, "app"), client(server, "batch")
    key = root.create_key(Policy=policy([
        {"Sid": "Key users", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:role/app"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "t1"}}}]))["KeyMetadata"]
    arn = key["Arn"]

    blob = app.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext={"tenant": "t1"})["CiphertextBlob"]
    assert app.decrypt(CiphertextBlob=blob, EncryptionContext={"tenant": "t1"})["Plaintext"] == b"x"
    # Outside the condition only the account statement is left, which delegates to IAM, and
    # app has no identity policy.
    with pytest.raises(ClientError) as e:
        app.encrypt(KeyId=arn, Plaintext=b"x", EncryptionContext={"tenant": "t2"})
    assert code(e) == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{A}:role/app is not authorized to perform: kms:Encrypt on resource: "
        f"{arn} because no identity-based policy allows the kms:Encrypt action")

    with pytest.raises(ClientError) as e:
        batch.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext={"job": "7"})
    assert code(e) == "AccessDeniedException"
    assert "because no identity-based policy allows the kms:GenerateDataKey action" in str(e.value)

    grant = root.create_grant(KeyId=arn, GranteePrincipal=f"arn:aws:iam::{A}:role/batch",
                              Operations=["GenerateDataKey", "Decrypt"],
                              Constraints={"EncryptionContextEquals": {"job": "7"}})
    dk = batch.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext={"job": "7"})
    assert batch.decrypt(CiphertextBlob=dk["CiphertextBlob"],
                         EncryptionContext={"job": "7"})["Plaintext"] == dk["Plaintext"]
    for ctx in ({"job": "8"}, {"job": "7", "extra": "1"}, {}):
        with pytest.raises(ClientError) as e:
            batch.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext=ctx)
        assert code(e) == "AccessDeniedException", ctx

    grants = root.list_grants(KeyId=arn)["Grants"]
    assert [g["GrantId"] for g in grants] == [grant["GrantId"]]
    assert grants[0]["Constraints"] == {"EncryptionContextEquals": {"job": "7"}}
    assert sorted(grants[0]["Operations"]) == ["Decrypt", "GenerateDataKey"]

    # The account root retires it (as the key's account may); then batch is denied again.
    root.retire_grant(KeyId=arn, GrantId=grant["GrantId"])
    with pytest.raises(ClientError) as e:
        batch.generate_data_key(KeyId=arn, KeySpec="AES_256", EncryptionContext={"job": "7"})
    assert code(e) == "AccessDeniedException"
    with pytest.raises(ClientError) as e:
        root.retire_grant(KeyId=arn, GrantId=grant["GrantId"])
    assert code(e) == "NotFoundException"


def test_cross_account_needs_key_policy_and_identity_policy(server):
    root, partner, stranger = client(server, "root"), client(server, "partner"), client(server, "stranger")
    shared = root.create_key(Policy=policy([
        {"Sid": "Account B", "Effect": "Allow", "Principal": {"AWS": B},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]))["KeyMetadata"]["Arn"]
    private = root.create_key()["KeyMetadata"]["Arn"]

    blob = partner.encrypt(KeyId=shared, Plaintext=b"s")["CiphertextBlob"]
    assert partner.decrypt(CiphertextBlob=blob)["Plaintext"] == b"s"
    with pytest.raises(ClientError) as e:
        stranger.encrypt(KeyId=shared, Plaintext=b"s")
    assert "because no identity-based policy allows the kms:Encrypt action" in str(e.value)
    with pytest.raises(ClientError) as e:
        partner.encrypt(KeyId=private, Plaintext=b"s")
    assert "because no resource-based policy allows the kms:Encrypt action" in str(e.value)
    # A key id alone names a key of the caller's own account: not found there.
    with pytest.raises(ClientError) as e:
        partner.encrypt(KeyId=shared.split("/")[-1], Plaintext=b"s")
    assert code(e) == "NotFoundException"


def test_explicit_deny_and_the_cli(server, tmp_path):
    root = client(server, "root")
    arn = root.create_key(Policy=policy([
        {"Sid": "No app decrypt", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{A}:role/app"},
         "Action": "kms:Decrypt", "Resource": "*"},
        {"Sid": "app encrypts", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:role/app"},
         "Action": "kms:*", "Resource": "*"}]))["KeyMetadata"]["Arn"]
    env = server.cli_env(access_key=PRINCIPALS["app"][0], secret=SECRET)
    plain, blob = tmp_path / "plain", tmp_path / "blob"
    plain.write_bytes(b"hi")
    with open(blob, "wb") as out:
        enc = subprocess.run(["aws", "kms", "encrypt", "--endpoint-url", server.endpoint, "--key-id", arn,
                              "--plaintext", f"fileb://{plain}", "--output", "text",
                              "--query", "CiphertextBlob"],
                             env=env, capture_output=True, text=True)
        assert enc.returncode == 0, enc.stderr
        out.write(base64.b64decode(enc.stdout.strip()))
    dec = subprocess.run(["aws", "kms", "decrypt", "--endpoint-url", server.endpoint,
                          "--ciphertext-blob", f"fileb://{blob}", "--output", "json"],
                         env=env, capture_output=True, text=True)
    assert dec.returncode != 0
    assert "AccessDeniedException" in dec.stderr
    assert "with an explicit deny in a resource-based policy" in dec.stderr

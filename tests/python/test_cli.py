"""The AWS CLI against the real keyhold binary."""

import base64
import json
import shutil
import subprocess
import sys

import pytest


def aws(server, *args, check=True):
    exe = shutil.which("aws")
    cmd = [exe] if exe else [sys.executable, "-m", "awscli"]
    proc = subprocess.run(
        [*cmd, "kms", *args, "--endpoint-url", server.endpoint, "--output", "json"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"aws kms {' '.join(args)} failed: {proc.stderr}")
    return proc


def test_cli_round_trip(server, tmp_path):
    md = json.loads(aws(server, "create-key", "--description", "cli").stdout)["KeyMetadata"]
    key_id = md["KeyId"]
    assert md["Description"] == "cli"

    keys = json.loads(aws(server, "list-keys").stdout)["Keys"]
    assert any(k["KeyId"] == key_id for k in keys)

    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"hello from the cli")
    enc = json.loads(
        aws(server, "encrypt", "--key-id", key_id, "--plaintext", f"fileb://{plain}",
            "--encryption-context", "stage=test").stdout
    )
    blob = tmp_path / "blob.bin"
    blob.write_bytes(base64.b64decode(enc["CiphertextBlob"]))

    dec = json.loads(
        aws(server, "decrypt", "--ciphertext-blob", f"fileb://{blob}",
            "--encryption-context", "stage=test").stdout
    )
    assert base64.b64decode(dec["Plaintext"]) == b"hello from the cli"
    assert dec["KeyId"] == md["Arn"]

    bad = aws(server, "decrypt", "--ciphertext-blob", f"fileb://{blob}",
              "--encryption-context", "stage=prod", check=False)
    assert bad.returncode != 0
    assert "InvalidCiphertextException" in bad.stderr


def test_cli_reports_aws_errors(server):
    proc = aws(server, "describe-key", "--key-id", "alias/missing", check=False)
    assert proc.returncode != 0
    assert "NotFoundException" in proc.stderr
    assert "Alias arn:aws:kms:us-east-1:123456789012:alias/missing is not found." in proc.stderr

"""Fixtures that start the real `keyhold` binary on a free loopback port.

The binary is taken from $KEYHOLD_BIN, else target/debug/keyhold (built by `cargo build`).
"""

import os
import pathlib
import signal
import subprocess
import tempfile
import time
import uuid

import boto3
import botocore.config
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def keyhold_bin() -> str:
    path = os.environ.get("KEYHOLD_BIN") or str(ROOT / "target" / "debug" / "keyhold")
    if not os.path.exists(path):
        pytest.fail(f"keyhold binary not found at {path}: run `cargo build -p keyhold-server` first")
    return path


class Server:
    """A `keyhold serve` process with its own data directory."""

    def __init__(self, *extra_args: str):
        self.tmp = tempfile.TemporaryDirectory(prefix="keyhold-py-")
        self.data_dir = os.path.join(self.tmp.name, "data")
        self.extra_args = list(extra_args)
        self.proc = None
        self.endpoint = None
        self.start()

    def start(self):
        ready = os.path.join(self.tmp.name, f"ready-{uuid.uuid4()}")
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOLD_")}
        env["KEYHOLD_LOG"] = "warn"
        # KEYHOLD_TEST_AUDIT_DIR: each server writes its audit log there, for scripts/audit-scan
        # (a test's own --audit-log flag wins over the variable).
        audit_dir = os.environ.get("KEYHOLD_TEST_AUDIT_DIR")
        if audit_dir:
            env["KEYHOLD_AUDIT_LOG"] = os.path.join(audit_dir, f"{uuid.uuid4()}.jsonl")
        self.proc = subprocess.Popen(
            [keyhold_bin(), "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir,
             "--ready-file", ready, *self.extra_args],
            stdout=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            if os.path.exists(ready) and open(ready).read().strip():
                self.endpoint = "http://" + open(ready).read().strip()
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"keyhold exited with {self.proc.returncode} before listening")
            if time.monotonic() > deadline:
                raise RuntimeError("keyhold did not start within 30 s")
            time.sleep(0.02)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self):
        self.stop()
        self.start()

    def client(self, access_key="AKIDEXAMPLEKEYHOLD", secret="secret", region="us-east-1"):
        return boto3.client(
            "kms",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def cli_env(self, access_key="AKIDEXAMPLEKEYHOLD", secret="secret"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=access_key,
            AWS_SECRET_ACCESS_KEY=secret,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def close(self):
        self.stop()
        self.tmp.cleanup()


@pytest.fixture
def server():
    s = Server("--test-mode")
    yield s
    s.close()


@pytest.fixture
def kms(server):
    return server.client()


def hsm_client(server):
    """A boto3 cloudhsmv2 client for `server` (no retries: tests see every answer)."""
    return boto3.client(
        "cloudhsmv2",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLEKEYHOLD",
        aws_secret_access_key="secret",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def keyhold_cloudhsm(server, *args, admin=None, password=None):
    """Runs `keyhold cloudhsm <args>` against `server`, passwords in the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYHOLD_", "AWS_"))}
    if admin:
        env["KEYHOLD_CLOUDHSM_ADMIN_PASSWORD"] = admin
    if password:
        env["KEYHOLD_CLOUDHSM_PASSWORD"] = password
    subprocess.run(
        [keyhold_bin(), "cloudhsm", *args, "--endpoint", server.endpoint],
        env=env, check=True, capture_output=True,
    )


def wait_final(kms, store_id, timeout=20):
    """Polls until the store leaves CONNECTING/DISCONNECTING: (state, error code or None)."""
    deadline = time.monotonic() + timeout
    while True:
        e = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
        if e["ConnectionState"] not in ("CONNECTING", "DISCONNECTING"):
            return e["ConnectionState"], e.get("ConnectionErrorCode")
        assert time.monotonic() < deadline, f"{store_id} stuck in {e['ConnectionState']}"
        time.sleep(0.05)

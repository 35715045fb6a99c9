//! End-to-end: the connection error codes whose cause lies in Keyhold's own configuration
//! rather than in the proxy — INTERNAL_ERROR (the stored proxy credential cannot be unwrapped
//! because the server runs with another root key) and the XKS_VPC_ENDPOINT_SERVICE_* codes
//! (the endpoint service is no longer declared, or no longer valid, when the store connects).
//! Each is caused for real, observed through DescribeCustomKeyStores, fixed, and reconnected.

mod common;
mod custom_key_stores_common;

use std::path::Path;
use std::time::Duration;

use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType, XksProxyConnectivityType,
};
use keyhold_xks::testing::{FakeProxyOptions, FakeXksProxy};

use common::{client, TestServer};
use custom_key_stores_common::{
    create_xks, credential, wait_final, write_config, HOST, XKS_TIMEOUT,
};

const WAIT: Duration = Duration::from_secs(20);
const VPCES: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0a1b2c3d4e5f60718";

async fn connect_and_wait(
    kms: &aws_sdk_kms::Client,
    id: &str,
) -> (ConnectionStateType, Option<ConnectionErrorCodeType>) {
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("connect accepted");
    wait_final(kms, id, WAIT).await
}

async fn disconnect_and_wait(kms: &aws_sdk_kms::Client, id: &str) {
    kms.disconnect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("disconnect accepted");
    assert_eq!(
        wait_final(kms, id, WAIT).await,
        (ConnectionStateType::Disconnected, None)
    );
}

fn write_root_key(path: &Path, byte: u8) {
    use base64::Engine;
    std::fs::write(
        path,
        base64::engine::general_purpose::STANDARD.encode([byte; 32]),
    )
    .unwrap();
    // Keyhold refuses a root key file its group or others can read.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test]
async fn internal_error_when_the_proxy_credential_cannot_be_unwrapped() {
    let proxy = FakeXksProxy::start(FakeProxyOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "",
        &[proxy.ca_pem()],
        &[(HOST, proxy.addr().to_string())],
    );
    let (key_a, key_b) = (dir.path().join("a.key"), dir.path().join("b.key"));
    write_root_key(&key_a, 0xa1);
    write_root_key(&key_b, 0xb2);
    let cfg = cfg.display().to_string();
    let (a, b) = (key_a.display().to_string(), key_b.display().to_string());
    let with_key =
        |key: &str| ["--config", cfg.as_str(), "--root-key-file", key].map(str::to_string);

    let mut server = TestServer::start_with(&with_key(&a).each_ref().map(String::as_str));
    let kms = client(&server);
    let id = create_xks(&kms, "unwrap", "/kms/xks/v1")
        .await
        .expect("create");
    assert_eq!(
        connect_and_wait(&kms, &id).await,
        (ConnectionStateType::Connected, None)
    );
    disconnect_and_wait(&kms, &id).await;

    // Same database, another root key: the wrapped proxy secret cannot be unwrapped.
    server.set_args(&with_key(&b).each_ref().map(String::as_str));
    server.restart();
    let kms = client(&server);
    assert_eq!(
        connect_and_wait(&kms, &id).await,
        (
            ConnectionStateType::Failed,
            Some(ConnectionErrorCodeType::InternalError)
        )
    );

    // The fix: run with the right root key again, disconnect, reconnect.
    server.set_args(&with_key(&a).each_ref().map(String::as_str));
    server.restart();
    let kms = client(&server);
    disconnect_and_wait(&kms, &id).await;
    assert_eq!(
        connect_and_wait(&kms, &id).await,
        (ConnectionStateType::Connected, None)
    );
}

/// A config declaring the VPC endpoint service `VPCES` in front of `proxy`, valid or not.
fn vpc_config(dir: &Path, proxy: &FakeXksProxy, service: Option<&str>) -> String {
    std::fs::write(dir.join("ca.pem"), proxy.ca_pem()).unwrap();
    let mut text = format!(
        "[xks]\n{XKS_TIMEOUT}\nuse_system_roots = false\nextra_ca_files = [{:?}]\n",
        dir.join("ca.pem").display().to_string()
    );
    if let Some(principal) = service {
        text.push_str(&format!(
            "[xks.vpc_endpoint_services.{VPCES:?}]\naddress = {:?}\nallowed_principals = [{principal:?}]\n",
            proxy.addr().to_string()
        ));
    }
    let path = dir.join(format!("vpc-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn vpc_endpoint_service_codes_at_connect() {
    let proxy = FakeXksProxy::start(FakeProxyOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let valid = vpc_config(dir.path(), &proxy, Some("cks.kms.us-east-1.amazonaws.com"));
    let missing = vpc_config(dir.path(), &proxy, None);
    let invalid = vpc_config(dir.path(), &proxy, Some("someone.else.example.com"));

    let mut server = TestServer::start_with(&["--config", &valid]);
    let kms = client(&server);
    let id = kms
        .create_custom_key_store()
        .custom_key_store_name("vpc")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .xks_proxy_connectivity(XksProxyConnectivityType::VpcEndpointService)
        .xks_proxy_vpc_endpoint_service_name(VPCES)
        .xks_proxy_uri_endpoint(format!("https://{HOST}"))
        .xks_proxy_uri_path("/kms/xks/v1")
        .xks_proxy_authentication_credential(credential(&FakeProxyOptions::default()))
        .send()
        .await
        .expect("create VPC store")
        .custom_key_store_id()
        .unwrap()
        .to_string();
    // Through the declared endpoint service the store reaches the proxy.
    assert_eq!(
        connect_and_wait(&kms, &id).await,
        (ConnectionStateType::Connected, None)
    );
    disconnect_and_wait(&kms, &id).await;

    for (config, code) in [
        (
            &missing,
            ConnectionErrorCodeType::XksVpcEndpointServiceNotFound,
        ),
        (
            &invalid,
            ConnectionErrorCodeType::XksVpcEndpointServiceInvalidConfiguration,
        ),
    ] {
        server.set_args(&["--config", config]);
        server.restart();
        let kms = client(&server);
        assert_eq!(
            connect_and_wait(&kms, &id).await,
            (ConnectionStateType::Failed, Some(code))
        );
        disconnect_and_wait(&kms, &id).await;
    }

    // The fix: declare the service correctly again.
    server.set_args(&["--config", &valid]);
    server.restart();
    let kms = client(&server);
    assert_eq!(
        connect_and_wait(&kms, &id).await,
        (ConnectionStateType::Connected, None)
    );
}

//! The client against a real loopback HTTPS proxy that misbehaves on purpose: every
//! `ConnectionErrorCode` an XKS health check can produce comes from a real cause here, and
//! each test then removes the cause and checks that the store would connect again.

use std::collections::BTreeMap;

use keyhold_core::ports::xks::{
    HealthCheckReason, XksConnectivity, XksConnector, XksFailure, XksHealth, XksRequestMetadata,
    XksTarget,
};
use keyhold_crypto::SecretBytes;
use keyhold_xks::testing::{Behaviour, CertMode, FakeProxyOptions, FakeXksProxy, TlsVersions};
use keyhold_xks::{VpcEndpointServiceConfig, XksClient, XksClientConfig};

const HOST: &str = "xks.example.test";
const VPC_SERVICE: &str = "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0";
/// Generous so a loaded CI machine does not turn healthy calls into timeouts; the timeout
/// test uses KMS's real 250 ms.
const RELAXED_MS: u64 = 5_000;

/// A predicate on the expected failure.
type Check = dyn Fn(&XksFailure) -> bool;

struct Fixture {
    proxy: FakeXksProxy,
    options: FakeProxyOptions,
    ca_dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(cert_mode: CertMode) -> Fixture {
        Self::start_with(FakeProxyOptions {
            cert_mode,
            ..FakeProxyOptions::default()
        })
        .await
    }

    async fn start_with(options: FakeProxyOptions) -> Fixture {
        let proxy = FakeXksProxy::start(options.clone()).await;
        let ca_dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(ca_dir.path().join("ca.pem"), proxy.ca_pem()).expect("write CA");
        Fixture {
            proxy,
            options,
            ca_dir,
        }
    }

    /// A client that trusts only the test CA and dials `host` at the proxy.
    fn config(&self, host: &str, timeout_ms: u64) -> XksClientConfig {
        XksClientConfig {
            extra_ca_files: vec![self.ca_dir.path().join("ca.pem")],
            use_system_roots: false,
            connect_to: BTreeMap::from([(host.to_string(), self.proxy.addr().to_string())]),
            timeout_ms,
            ..XksClientConfig::default()
        }
    }

    fn client(&self) -> XksClient {
        XksClient::new(self.config(HOST, RELAXED_MS)).expect("client")
    }

    fn target(&self) -> XksTarget {
        XksTarget {
            uri_endpoint: format!("https://{HOST}"),
            uri_path: self.options.uri_path.clone(),
            connectivity: XksConnectivity::PublicEndpoint,
            access_key_id: self.options.access_key_id.clone(),
            secret_access_key: SecretBytes::from_slice(self.options.secret.as_bytes()),
            region: self.options.region.clone(),
        }
    }
}

fn metadata() -> XksRequestMetadata {
    XksRequestMetadata {
        aws_principal_arn: "arn:aws:iam::111122223333:user/alice".to_string(),
        kms_request_id: "4112f4d6-db54-4af4-ae30-c55a22a8dfae".to_string(),
        custom_key_store_id: Some("cks-1234567890abcdef0".to_string()),
    }
}

async fn connect(client: &XksClient, target: &XksTarget) -> Result<XksHealth, XksFailure> {
    client
        .get_health_status(target, HealthCheckReason::Connect, &metadata())
        .await
}

/// Asserts the failure, its ConnectionErrorCode and its Create/Update exception.
fn expect_failure(
    result: Result<XksHealth, XksFailure>,
    matches: impl Fn(&XksFailure) -> bool,
    code: &str,
    exception: &str,
) -> XksFailure {
    let failure = result.expect_err("the call must fail");
    assert!(matches(&failure), "unexpected failure {failure:?}");
    assert_eq!(failure.connection_error_code(), code, "{failure:?}");
    assert_eq!(
        failure.create_update_exception().name(),
        exception,
        "{failure:?}"
    );
    failure
}

async fn expect_healthy(client: &XksClient, target: &XksTarget) {
    let health = connect(client, target).await.expect("healthy proxy");
    assert!(health
        .ekm_fleet_details
        .iter()
        .all(|m| m.health_status == "ACTIVE"));
}

#[tokio::test]
async fn signed_health_check_succeeds_and_carries_the_spec_metadata() {
    let f = Fixture::start(CertMode::Valid).await;
    // The default (system roots on) must also work alongside the extra CA.
    let client = XksClient::new(XksClientConfig {
        use_system_roots: true,
        ..f.config(HOST, RELAXED_MS)
    })
    .expect("client");
    let health = connect(&client, &f.target()).await.expect("healthy");
    assert_eq!(health.xks_proxy_fleet_size, 1);
    assert_eq!(health.ekm_fleet_details.len(), 2);
    assert_eq!(f.proxy.requests_seen(), 1);
    let seen = f.proxy.last_health_request().expect("request recorded");
    assert_eq!(seen.request_metadata.kms_operation, "ConnectCustomKeyStore");
    assert_eq!(
        seen.request_metadata.kms_request_id,
        metadata().kms_request_id
    );
    assert_eq!(seen.request_metadata.aws_principal_arn, None);

    client
        .get_health_status(&f.target(), HealthCheckReason::Periodic, &metadata())
        .await
        .expect("healthy");
    let seen = f.proxy.last_health_request().expect("request recorded");
    assert_eq!(seen.request_metadata.kms_operation, "KmsHealthCheck");
}

#[tokio::test]
async fn invalid_credentials() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = f.client();
    let akid = f.options.access_key_id.clone();
    f.proxy
        .set_credential(&akid, "QW5vdGhlclNlY3JldFRoYXRJc05vdFRoZUNsaWVudHNPbmU=");
    let auth_failed = |e: &XksFailure| *e == XksFailure::AuthenticationFailed;
    let code = "INVALID_CREDENTIALS";
    let exception = "XksProxyIncorrectAuthenticationCredentialException";
    expect_failure(
        connect(&client, &f.target()).await,
        auth_failed,
        code,
        exception,
    );
    // An unknown access key id, and a credential scoped to another region, fail the same way.
    f.proxy
        .set_credential("OTHERACCESSKEYID234567", &f.options.secret);
    expect_failure(
        connect(&client, &f.target()).await,
        auth_failed,
        code,
        exception,
    );
    f.proxy.set_credential(&akid, &f.options.secret);
    let mut other_region = f.target();
    other_region.region = "eu-west-1".to_string();
    expect_failure(
        connect(&client, &other_region).await,
        auth_failed,
        code,
        exception,
    );

    expect_healthy(&client, &f.target()).await;
}

#[tokio::test]
async fn access_denied() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = f.client();
    f.proxy.set_behaviour(Behaviour::Status {
        status: 403,
        error_name: "AccessDeniedException".to_string(),
    });
    expect_failure(
        connect(&client, &f.target()).await,
        |e| *e == XksFailure::AccessDenied,
        "XKS_PROXY_ACCESS_DENIED",
        "XksProxyInvalidConfigurationException",
    );
    f.proxy.set_behaviour(Behaviour::Healthy);
    expect_healthy(&client, &f.target()).await;
}

#[tokio::test]
async fn wrong_uri_path_is_an_invalid_configuration() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = f.client();
    let mut wrong = f.target();
    wrong.uri_path = "/tenant-b/kms/xks/v1".to_string();
    expect_failure(
        connect(&client, &wrong).await,
        |e| *e == XksFailure::InvalidUriPath,
        "XKS_PROXY_INVALID_CONFIGURATION",
        "XksProxyInvalidConfigurationException",
    );
    expect_healthy(&client, &f.target()).await;
}

#[tokio::test]
async fn invalid_responses() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = f.client();
    let status = |status: u16, name: &str| Behaviour::Status {
        status,
        error_name: name.to_string(),
    };
    let invalid = |e: &XksFailure| matches!(e, XksFailure::InvalidResponse { .. });
    let cases: [(Behaviour, &Check); 5] = [
        (Behaviour::Garbage, &invalid),
        (Behaviour::WrongShape, &invalid),
        (status(400, "ValidationException"), &invalid),
        (status(418, "TeapotException"), &invalid),
        (status(500, "InternalException"), &|e| {
            *e == XksFailure::ProxyInternal
        }),
    ];
    for (behaviour, matches) in cases {
        f.proxy.set_behaviour(behaviour);
        expect_failure(
            connect(&client, &f.target()).await,
            matches,
            "XKS_PROXY_INVALID_RESPONSE",
            "XksProxyInvalidResponseException",
        );
    }
    f.proxy.set_behaviour(Behaviour::Healthy);
    expect_healthy(&client, &f.target()).await;
}

#[tokio::test]
async fn every_spec_error_travels_end_to_end() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = f.client();
    let rows = [
        (404, "KeyNotFoundException", XksFailure::KeyNotFound),
        (400, "InvalidStateException", XksFailure::KeyInvalidState),
        (400, "InvalidKeyUsageException", XksFailure::KeyInvalidUsage),
        (
            501,
            "UnsupportedOperationException",
            XksFailure::UnsupportedOperation,
        ),
        (
            400,
            "InvalidCiphertextException",
            XksFailure::InvalidCiphertext,
        ),
        (429, "ThrottlingException", XksFailure::Throttled),
        (
            503,
            "DependencyTimeoutException",
            XksFailure::DependencyTimeout,
        ),
    ];
    for (status, name, want) in rows {
        f.proxy.set_behaviour(Behaviour::Status {
            status,
            error_name: name.to_string(),
        });
        assert_eq!(
            connect(&client, &f.target()).await,
            Err(want),
            "{status} {name}"
        );
    }
}

#[tokio::test]
async fn tls_failures() {
    let modes = [
        (CertMode::Expired, "expired"),
        (CertMode::WrongHostname, "name"),
        (CertMode::UnknownCa, "issuer"),
    ];
    for (mode, hint) in modes {
        let f = Fixture::start(mode).await;
        let failure = expect_failure(
            connect(&f.client(), &f.target()).await,
            |e| matches!(e, XksFailure::Tls { .. }),
            "XKS_PROXY_INVALID_TLS_CONFIGURATION",
            "XksProxyUriUnreachableException",
        );
        let XksFailure::Tls { detail, .. } = failure else {
            unreachable!("checked above");
        };
        assert!(detail.to_lowercase().contains(hint), "{mode:?}: {detail}");
        assert_eq!(
            f.proxy.requests_seen(),
            0,
            "no request after a failed handshake"
        );
    }
    // Fixing the cause (a valid certificate) makes the same client configuration work.
    let f = Fixture::start(CertMode::Valid).await;
    expect_healthy(&f.client(), &f.target()).await;
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_both_accepted() {
    for tls_versions in [TlsVersions::Tls12Only, TlsVersions::Tls13Only] {
        let f = Fixture::start_with(FakeProxyOptions {
            tls_versions,
            ..FakeProxyOptions::default()
        })
        .await;
        expect_healthy(&f.client(), &f.target()).await;
    }
}

#[tokio::test]
async fn connect_to_still_verifies_the_endpoint_name() {
    let f = Fixture::start(CertMode::Valid).await;
    // Dial the proxy for another endpoint name: its certificate is for xks.example.test.
    let client = XksClient::new(f.config("other.example.test", RELAXED_MS)).expect("client");
    let mut target = f.target();
    target.uri_endpoint = "https://other.example.test".to_string();
    expect_failure(
        connect(&client, &target).await,
        |e| matches!(e, XksFailure::Tls { .. }),
        "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        "XksProxyUriUnreachableException",
    );
    expect_healthy(&f.client(), &f.target()).await;
}

#[tokio::test]
async fn not_reachable() {
    let f = Fixture::start(CertMode::Valid).await;
    let not_reachable = |e: &XksFailure| matches!(e, XksFailure::NotReachable { .. });
    let (code, exception) = ("XKS_PROXY_NOT_REACHABLE", "XksProxyUriUnreachableException");

    // Nothing listens on the mapped port.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = free.local_addr().expect("addr");
    drop(free);
    let mut config = f.config(HOST, RELAXED_MS);
    config
        .connect_to
        .insert(HOST.to_string(), closed_port.to_string());
    let nowhere = XksClient::new(config).expect("client");
    expect_failure(
        connect(&nowhere, &f.target()).await,
        not_reachable,
        code,
        exception,
    );

    // The proxy accepts TCP and hangs up before TLS: no answer at all, so not reachable.
    let client = f.client();
    f.proxy.set_behaviour(Behaviour::CloseImmediately);
    expect_failure(
        connect(&client, &f.target()).await,
        not_reachable,
        code,
        exception,
    );

    // The proxy answers, but says no key manager can serve.
    f.proxy.set_behaviour(Behaviour::AllUnavailable);
    expect_failure(
        connect(&client, &f.target()).await,
        |e| *e == XksFailure::AllEkmsUnavailable,
        code,
        exception,
    );

    f.proxy.set_behaviour(Behaviour::Healthy);
    expect_healthy(&client, &f.target()).await;

    // A stopped proxy refuses connections.
    f.proxy.stop();
    expect_failure(
        connect(&client, &f.target()).await,
        not_reachable,
        code,
        exception,
    );
}

#[tokio::test]
async fn timed_out_with_the_kms_budget() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = XksClient::new(f.config(HOST, 250)).expect("client");
    f.proxy.set_behaviour(Behaviour::Slow { ms: 1_000 });
    expect_failure(
        connect(&client, &f.target()).await,
        |e| *e == XksFailure::TimedOut { budget_ms: 250 },
        "XKS_PROXY_TIMED_OUT",
        "XksProxyUriUnreachableException",
    );
    f.proxy.set_behaviour(Behaviour::Healthy);
    expect_healthy(&f.client(), &f.target()).await;
}

#[tokio::test]
async fn response_cut_short_is_a_network_error() {
    let f = Fixture::start(CertMode::Valid).await;
    let client = f.client();
    f.proxy.set_behaviour(Behaviour::TruncatedBody);
    expect_failure(
        connect(&client, &f.target()).await,
        |e| matches!(e, XksFailure::Network { .. }),
        "NETWORK_ERRORS",
        "XksProxyUriUnreachableException",
    );
    assert_eq!(f.proxy.requests_seen(), 1);
    f.proxy.set_behaviour(Behaviour::Healthy);
    expect_healthy(&client, &f.target()).await;
}

fn vpc_service(f: &Fixture) -> VpcEndpointServiceConfig {
    VpcEndpointServiceConfig {
        address: f.proxy.addr().to_string(),
        allowed_principals: vec!["cks.kms.us-east-1.amazonaws.com".to_string()],
        private_dns_verified: true,
        acceptance_required: false,
        availability_zones: 2,
    }
}

fn vpc_client(f: &Fixture, service: Option<VpcEndpointServiceConfig>) -> XksClient {
    let mut config = f.config(HOST, RELAXED_MS);
    // No connect_to: the VPC endpoint service address is what gets dialled.
    config.connect_to.clear();
    if let Some(service) = service {
        config
            .vpc_endpoint_services
            .insert(VPC_SERVICE.to_string(), service);
    }
    XksClient::new(config).expect("client")
}

#[tokio::test]
async fn vpc_endpoint_services() {
    let f = Fixture::start(CertMode::Valid).await;
    let mut target = f.target();
    target.connectivity = XksConnectivity::VpcEndpointService {
        service_name: VPC_SERVICE.to_string(),
        owner: None,
    };

    expect_failure(
        connect(&vpc_client(&f, None), &target).await,
        |e| *e == XksFailure::VpcEndpointServiceNotFound,
        "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
        "XksProxyVpcEndpointServiceNotFoundException",
    );

    let mut invalid = vpc_service(&f);
    invalid.acceptance_required = true;
    invalid.allowed_principals.clear();
    let failure = expect_failure(
        connect(&vpc_client(&f, Some(invalid)), &target).await,
        |e| matches!(e, XksFailure::VpcEndpointServiceInvalid { .. }),
        "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
        "XksProxyVpcEndpointServiceInvalidConfigurationException",
    );
    assert!(failure.to_string().contains("acceptance"), "{failure}");
    assert_eq!(
        f.proxy.requests_seen(),
        0,
        "an invalid service is never dialled"
    );

    // Declared and valid: dialled at its address, TLS verified against the private DNS name.
    expect_healthy(&vpc_client(&f, Some(vpc_service(&f))), &target).await;
    assert_eq!(f.proxy.requests_seen(), 1);
}

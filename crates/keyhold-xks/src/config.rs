//! The `[xks]` table of Keyhold's configuration: which CAs to trust, where to dial, which VPC
//! endpoint services exist, and the per-call time budget.
//!
//! Keyhold runs outside AWS, so the things KMS learns from DNS and from the VPC service are
//! declared here instead: `connect_to` stands in for DNS (the proxy's certificate is still
//! checked against the endpoint's own name) and `vpc_endpoint_services` stands in for the
//! VPC endpoint services KMS would look up in the caller's account.

use std::collections::BTreeMap;
use std::path::PathBuf;

use keyhold_core::ports::xks::XksFailure;
use serde::Deserialize;

/// KMS gives every XKS call 250 ms (XKS spec, "latency"), so that is the default budget.
pub const DEFAULT_TIMEOUT_MS: u64 = 250;

/// Client settings, deserialized from the `[xks]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XksClientConfig {
    /// PEM files whose certificates are trusted as CAs in addition to the system roots, so a
    /// private proxy CA can be used without touching the machine's trust store.
    pub extra_ca_files: Vec<PathBuf>,
    /// Trust the operating system's roots (KMS trusts a public CA list; the system store is
    /// the nearest local equivalent). An empty or missing store is tolerated.
    pub use_system_roots: bool,
    /// Endpoint host → `ip:port` actually dialled, in the spirit of curl's `--connect-to`:
    /// TLS still verifies the endpoint's own hostname. Hosts without an entry are dialled on
    /// port 443 after a normal DNS lookup.
    pub connect_to: BTreeMap<String, String>,
    /// VPC endpoint services keyed by service name (`com.amazonaws.vpce.<region>.vpce-svc-…`).
    pub vpc_endpoint_services: BTreeMap<String, VpcEndpointServiceConfig>,
    /// Per-call budget in milliseconds covering connect, TLS, request and response.
    pub timeout_ms: u64,
}

impl Default for XksClientConfig {
    fn default() -> Self {
        Self {
            extra_ca_files: Vec::new(),
            use_system_roots: true,
            connect_to: BTreeMap::new(),
            vpc_endpoint_services: BTreeMap::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }
}

/// One VPC endpoint service as KMS would see it in the proxy owner's account.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpointServiceConfig {
    /// `ip:port` dialled for this service (the network load balancer in front of the proxy).
    pub address: String,
    /// Principals allowed to create interface endpoints; KMS needs
    /// `cks.kms.<region>.amazonaws.com` here.
    #[serde(default)]
    pub allowed_principals: Vec<String>,
    /// Whether the service's private DNS domain is verified (KMS requires it).
    #[serde(default = "default_true")]
    pub private_dns_verified: bool,
    /// Whether endpoint connections need manual acceptance (KMS requires that they do not).
    #[serde(default)]
    pub acceptance_required: bool,
    /// Availability zones (subnets) of the load balancer; KMS requires at least two.
    #[serde(default = "default_azs")]
    pub availability_zones: u32,
}

fn default_true() -> bool {
    true
}

fn default_azs() -> u32 {
    2
}

impl VpcEndpointServiceConfig {
    /// Checks KMS's requirements for a VPC endpoint service used by an external key store in
    /// `region` (developer guide, "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"). Every
    /// unmet requirement is named so the operator can fix them all at once.
    pub fn validate(&self, region: &str) -> Result<(), XksFailure> {
        let principal = format!("cks.kms.{region}.amazonaws.com");
        let mut problems = Vec::new();
        if !self.allowed_principals.iter().any(|p| p == &principal) {
            problems.push(format!("allowed principals do not include {principal}"));
        }
        if !self.private_dns_verified {
            problems.push("private DNS name is not verified".to_string());
        }
        if self.acceptance_required {
            problems.push("endpoint acceptance is required".to_string());
        }
        if self.availability_zones < 2 {
            problems.push(format!(
                "load balancer spans {} availability zone(s), at least 2 are required",
                self.availability_zones
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(XksFailure::VpcEndpointServiceInvalid {
                detail: problems.join("; "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> VpcEndpointServiceConfig {
        VpcEndpointServiceConfig {
            address: "127.0.0.1:1".to_string(),
            allowed_principals: vec!["cks.kms.eu-west-1.amazonaws.com".to_string()],
            private_dns_verified: true,
            acceptance_required: false,
            availability_zones: 2,
        }
    }

    #[test]
    fn defaults_match_kms() {
        let c: XksClientConfig = toml::from_str("").expect("empty table");
        assert_eq!(c, XksClientConfig::default());
        assert!(c.use_system_roots);
        assert_eq!(c.timeout_ms, 250);
    }

    #[test]
    fn full_table_parses_and_unknown_fields_are_refused() {
        let c: XksClientConfig = toml::from_str(
            r#"
            extra_ca_files = ["/etc/keyhold/proxy-ca.pem"]
            use_system_roots = false
            timeout_ms = 400
            [connect_to]
            "xks.example.test" = "127.0.0.1:8443"
            [vpc_endpoint_services."com.amazonaws.vpce.eu-west-1.vpce-svc-1"]
            address = "127.0.0.1:9443"
            allowed_principals = ["cks.kms.eu-west-1.amazonaws.com"]
            "#,
        )
        .expect("valid table");
        assert_eq!(c.timeout_ms, 400);
        assert_eq!(c.connect_to["xks.example.test"], "127.0.0.1:8443");
        let svc = &c.vpc_endpoint_services["com.amazonaws.vpce.eu-west-1.vpce-svc-1"];
        assert!(svc.private_dns_verified && !svc.acceptance_required);
        assert_eq!(svc.availability_zones, 2);
        assert!(toml::from_str::<XksClientConfig>("timeout = 1").is_err());
        assert!(toml::from_str::<XksClientConfig>(
            "[vpc_endpoint_services.x]\naddress = \"127.0.0.1:1\"\nzones = 3"
        )
        .is_err());
    }

    #[test]
    fn each_vpc_requirement_is_checked() {
        assert_eq!(good().validate("eu-west-1"), Ok(()));
        let wrong_region = good().validate("us-east-1");
        assert!(matches!(
            wrong_region,
            Err(XksFailure::VpcEndpointServiceInvalid { .. })
        ));
        let cases: [fn(&mut VpcEndpointServiceConfig); 4] = [
            |s| s.allowed_principals.clear(),
            |s| s.private_dns_verified = false,
            |s| s.acceptance_required = true,
            |s| s.availability_zones = 1,
        ];
        for break_it in cases {
            let mut s = good();
            break_it(&mut s);
            let err = s.validate("eu-west-1").expect_err("must be invalid");
            assert_eq!(
                err.connection_error_code(),
                "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"
            );
        }
    }
}

//! Locating, extracting and verifying the pinned botocore service models (KMS and CloudHSM v2).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

/// The botocore release the generated code is pinned to.
pub const BOTOCORE_VERSION: &str = "1.43.11";

/// One pinned service model and where its generated code goes.
pub struct Service {
    /// Short name used in generated docs, e.g. `"KMS"`.
    pub label: &'static str,
    /// sha256 of the decompressed `service-2.json` of [`BOTOCORE_VERSION`].
    pub sha256: &'static str,
    /// Path of the model inside the `botocore` package.
    pub model_in_package: &'static str,
    /// Environment variable naming an explicit `service-2.json` or `service-2.json.gz`.
    pub env: &'static str,
    /// Where the generated files live, relative to the workspace root.
    pub generated_dir: &'static str,
    /// An operation named in generated doc examples, e.g. `"CreateKey"`.
    pub example_operation: &'static str,
    /// Name of the generated service trait, e.g. `"KmsService"`.
    pub service_trait: &'static str,
    /// The exception an operation the service does not implement answers with, and whether its
    /// message names the operation (KMS: `UnsupportedOperationException`, naming it; CloudHSM
    /// has no such shape, so an unserved operation is as unknown as a misspelt one).
    pub unsupported: (&'static str, bool),
}

/// Errors that every awsJson service answers although no model declares them: the protocol's
/// own (`SerializationException`, `UnknownOperationException`), authentication's (AWS's
/// "Common Errors" page), and the HTTP layer's. `(name, server fault, HTTP status)`; the statuses
/// are what AWS's JSON endpoints send (400 for every client fault, 413, 405). A model shape with
/// the same name wins.
pub const COMMON_ERRORS: &[(&str, bool, u16)] = &[
    ("AccessDeniedException", false, 400),
    ("IncompleteSignatureException", false, 400),
    ("InternalFailure", true, 500),
    ("InvalidSignatureException", false, 400),
    ("MethodNotAllowed", false, 405),
    ("MissingAuthenticationTokenException", false, 400),
    ("RequestEntityTooLargeException", false, 413),
    ("SerializationException", false, 400),
    ("ThrottlingException", false, 400),
    ("UnknownOperationException", false, 400),
    ("UnrecognizedClientException", false, 400),
    ("ValidationException", false, 400),
];

/// AWS KMS (`TrentService`), generated into `keyhold-kms-model`.
pub const KMS: Service = Service {
    label: "KMS",
    sha256: "dbc17eb64f705bc8932dddb30593877b30969c26d57c656bad44d8c8c9bd67f3",
    model_in_package: "data/kms/2014-11-01/service-2.json.gz",
    env: "KEYHOLD_KMS_MODEL",
    generated_dir: "crates/keyhold-kms-model/src/generated",
    example_operation: "CreateKey",
    service_trait: "KmsService",
    unsupported: ("UnsupportedOperationException", true),
};

/// AWS CloudHSM v2 (`BaldrApiService`), generated into `keyhold-cloudhsm-model`.
pub const CLOUDHSM: Service = Service {
    label: "CloudHSM v2",
    sha256: "922de79639fb66aeafcb7e102368b4de93d11930806f20dac5efeb6995d4ea05",
    model_in_package: "data/cloudhsmv2/2017-04-28/service-2.json.gz",
    env: "KEYHOLD_CLOUDHSM_MODEL",
    generated_dir: "crates/keyhold-cloudhsm-model/src/generated",
    example_operation: "CreateCluster",
    service_trait: "CloudHsmService",
    unsupported: ("UnknownOperationException", false),
};

/// Every generated service model.
pub const SERVICES: &[&Service] = &[&KMS, &CLOUDHSM];

/// The verified model bytes and a description of where they came from.
pub struct ModelSource {
    pub json: Vec<u8>,
    pub origin: String,
}

/// Resolves the model of `svc`: `$<svc.env>`, else the installed botocore if it is the pinned
/// version, else a `pip download` of the pinned wheel into `<target>/codegen-cache`.
pub fn load(svc: &Service, target_dir: &Path) -> Result<ModelSource> {
    let env = svc.env;
    let (raw, origin) = if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        let raw =
            std::fs::read(&path).with_context(|| format!("reading ${env}={}", path.display()))?;
        (raw, format!("${env} ({})", path.display()))
    } else if let Some(dir) = installed_botocore()? {
        let path = dir.join(svc.model_in_package);
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        (
            raw,
            format!("installed botocore {BOTOCORE_VERSION} ({})", path.display()),
        )
    } else {
        let wheel = download_wheel(&target_dir.join("codegen-cache"))?;
        let raw = read_from_wheel(&wheel, svc.model_in_package)?;
        (raw, format!("{}", wheel.display()))
    };
    let json = maybe_gunzip(raw).with_context(|| format!("decompressing model from {origin}"))?;
    verify(svc, &json, &origin)?;
    Ok(ModelSource { json, origin })
}

/// Fails unless `json` hashes to the sha256 pinned for `svc`.
pub fn verify(svc: &Service, json: &[u8], origin: &str) -> Result<()> {
    let actual = hex::encode(Sha256::digest(json));
    if actual != svc.sha256 {
        bail!(
            "{} service model from {origin} has sha256 {actual}, but botocore {BOTOCORE_VERSION}'s \
             service-2.json is pinned to {}. Use botocore=={BOTOCORE_VERSION} (or unset ${}); \
             to move to another release, update BOTOCORE_VERSION and the sha256 pins in \
             xtask/src/source.rs and regenerate.",
            svc.label,
            svc.sha256,
            svc.env
        );
    }
    Ok(())
}

fn maybe_gunzip(raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The installed botocore's package directory, if python3 can import it and it is the pinned
/// version.
fn installed_botocore() -> Result<Option<PathBuf>> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import botocore,os;print(botocore.__version__, os.path.dirname(botocore.__file__))",
        ])
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        _ => return Ok(None),
    };
    let text = String::from_utf8(out.stdout).context("python3 printed non-UTF-8")?;
    let text = text.trim();
    let Some((version, dir)) = text.split_once(' ') else {
        return Ok(None);
    };
    if version != BOTOCORE_VERSION {
        eprintln!(
            "xtask: installed botocore is {version}, not the pinned {BOTOCORE_VERSION}; \
             downloading the pinned wheel"
        );
        return Ok(None);
    }
    Ok(Some(PathBuf::from(dir)))
}

fn download_wheel(cache: &Path) -> Result<PathBuf> {
    let name = format!("botocore-{BOTOCORE_VERSION}-py3-none-any.whl");
    let wheel = cache.join(&name);
    if wheel.is_file() {
        return Ok(wheel);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    eprintln!(
        "xtask: downloading botocore=={BOTOCORE_VERSION} into {}",
        cache.display()
    );
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
        ])
        .arg(cache)
        .arg(format!("botocore=={BOTOCORE_VERSION}"))
        // Keep stdout for xtask's own output.
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status()
        .context("running `python3 -m pip download` (is python3 with pip installed?)")?;
    if !status.success() {
        bail!("`python3 -m pip download botocore=={BOTOCORE_VERSION}` failed ({status})");
    }
    if !wheel.is_file() {
        bail!("pip download did not produce {}", wheel.display());
    }
    Ok(wheel)
}

/// Reads the model out of the wheel (a zip) with python3's `zipfile`.
fn read_from_wheel(wheel: &Path, model_in_package: &str) -> Result<Vec<u8>> {
    let member = format!("botocore/{model_in_package}");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys,zipfile;sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(wheel)
        .arg(&member)
        .output()
        .context("running python3 to extract the model from the wheel")?;
    if !out.status.success() {
        return Err(anyhow!(
            "extracting {member} from {} failed: {}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_rejects_other_content() {
        let err = verify(&KMS, b"{}", "test").unwrap_err().to_string();
        assert!(err.contains(KMS.sha256), "{err}");
        assert!(err.contains("test"), "{err}");
    }

    #[test]
    fn gunzip_passthrough_and_decode() {
        use std::io::Write;
        assert_eq!(maybe_gunzip(b"{}".to_vec()).unwrap(), b"{}");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"{\"a\":1}").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(maybe_gunzip(gz).unwrap(), b"{\"a\":1}");
    }
}

//! Locating, extracting and verifying the pinned botocore KMS service model.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

/// The botocore release the generated code is pinned to.
pub const BOTOCORE_VERSION: &str = "1.43.11";
/// sha256 of the decompressed `service-2.json` of that release.
pub const SERVICE_MODEL_SHA256: &str =
    "dbc17eb64f705bc8932dddb30593877b30969c26d57c656bad44d8c8c9bd67f3";
/// Path of the model inside the `botocore` package.
const MODEL_IN_PACKAGE: &str = "data/kms/2014-11-01/service-2.json.gz";
/// Environment variable naming an explicit `service-2.json` or `service-2.json.gz`.
pub const MODEL_ENV: &str = "KEYHOLD_KMS_MODEL";

/// The verified model bytes and a description of where they came from.
pub struct ModelSource {
    pub json: Vec<u8>,
    pub origin: String,
}

/// Resolves the model: `$KEYHOLD_KMS_MODEL`, else the installed botocore if it is the pinned
/// version, else a `pip download` of the pinned wheel into `<target>/codegen-cache`.
pub fn load(target_dir: &Path) -> Result<ModelSource> {
    let (raw, origin) = if let Some(path) = std::env::var_os(MODEL_ENV) {
        let path = PathBuf::from(path);
        let raw = std::fs::read(&path)
            .with_context(|| format!("reading ${MODEL_ENV}={}", path.display()))?;
        (raw, format!("${MODEL_ENV} ({})", path.display()))
    } else if let Some(dir) = installed_botocore()? {
        let path = dir.join(MODEL_IN_PACKAGE);
        let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        (
            raw,
            format!("installed botocore {BOTOCORE_VERSION} ({})", path.display()),
        )
    } else {
        let wheel = download_wheel(&target_dir.join("codegen-cache"))?;
        let raw = read_from_wheel(&wheel)?;
        (raw, format!("{}", wheel.display()))
    };
    let json = maybe_gunzip(raw).with_context(|| format!("decompressing model from {origin}"))?;
    verify(&json, &origin)?;
    Ok(ModelSource { json, origin })
}

/// Fails unless `json` hashes to the pinned sha256.
pub fn verify(json: &[u8], origin: &str) -> Result<()> {
    let actual = hex::encode(Sha256::digest(json));
    if actual != SERVICE_MODEL_SHA256 {
        bail!(
            "KMS service model from {origin} has sha256 {actual}, but botocore {BOTOCORE_VERSION}'s \
             service-2.json is pinned to {SERVICE_MODEL_SHA256}. Use botocore=={BOTOCORE_VERSION} \
             (or unset ${MODEL_ENV}); to move to another release, update BOTOCORE_VERSION and \
             SERVICE_MODEL_SHA256 in xtask/src/source.rs and regenerate."
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
fn read_from_wheel(wheel: &Path) -> Result<Vec<u8>> {
    let member = format!("botocore/{MODEL_IN_PACKAGE}");
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
        let err = verify(b"{}", "test").unwrap_err().to_string();
        assert!(err.contains(SERVICE_MODEL_SHA256), "{err}");
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

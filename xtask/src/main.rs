//! Project automation.
//!
//! `cargo xtask codegen [--check]` generates `crates/keyhold-kms-model/src/generated/` and
//! `crates/keyhold-cloudhsm-model/src/generated/` from the pinned botocore KMS and CloudHSM v2
//! service models, with one generator (see `source.rs` for the pins and how models are found).

mod deps;
mod emit;
mod emit_contract;
mod json;
mod model;
mod names;
mod source;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};

const USAGE: &str = "usage: cargo xtask codegen [--check]\n\n\
  codegen          regenerate crates/keyhold-{kms,cloudhsm}-model/src/generated/ from botocore's\n\
                   KMS and CloudHSM v2 models\n\
  codegen --check  regenerate in memory and fail if the committed files differ\n\
  check-deps       check the crate-graph rules of xtask/src/deps.rs (non-dev dependencies)\n\n\
  Each model is read from $KEYHOLD_KMS_MODEL / $KEYHOLD_CLOUDHSM_MODEL (service-2.json[.gz]) if\n\
  set, else from the installed botocore if it is the pinned version, else from a pip-downloaded\n\
  wheel.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["codegen"] => codegen(false),
        ["codegen", "--check"] => codegen(true),
        ["check-deps"] => deps::check_deps(),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

/// Formats `code` with `rustfmt --edition 2021` (using the workspace's rustfmt config).
fn rustfmt(code: &str, root: &Path) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running rustfmt (install it with `rustup component add rustfmt`)")?;
    let mut stdin = child.stdin.take().context("rustfmt stdin")?;
    let input = code.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("rustfmt writer thread panicked"))??;
    if !out.status.success() {
        bail!(
            "rustfmt rejected generated code: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).context("rustfmt printed non-UTF-8")
}

/// The outcome of a generation run.
struct Rendered {
    /// Formatted generated files, `(name inside the generated directory, contents)`.
    files: Vec<(String, String)>,
    notes: emit::Notes,
    /// Where the model came from.
    origin: String,
}

fn render(root: &Path, svc: &source::Service) -> Result<Rendered> {
    let src = source::load(svc, &target_dir(root))?;
    let model = model::Model::parse(&src.json)?;
    let (files, notes) = emit::generate(&model, svc)?;
    let mut out = Vec::new();
    for f in files {
        let formatted =
            rustfmt(&f.contents, root).with_context(|| format!("formatting {}", f.name))?;
        out.push((f.name.to_owned(), formatted));
    }
    Ok(Rendered {
        files: out,
        notes,
        origin: src.origin,
    })
}

/// `.rs` files currently in the generated directory.
fn existing_files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    if dir.is_dir() {
        for e in std::fs::read_dir(dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".rs") {
                names.push(name);
            }
        }
    }
    names.sort();
    Ok(names)
}

/// One line describing how `committed` differs from `generated`.
fn diff_summary(committed: &str, generated: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (committed.lines().collect(), generated.lines().collect());
    let first = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let show = |l: Option<&&str>| match l {
        Some(l) if l.len() > 100 => format!("{:?}…", &l.chars().take(100).collect::<String>()),
        Some(l) => format!("{l:?}"),
        None => "<end of file>".to_owned(),
    };
    format!(
        "{} committed vs {} generated lines; first difference at line {}: committed {} / generated {}",
        a.len(),
        b.len(),
        first + 1,
        show(a.get(first)),
        show(b.get(first))
    )
}

/// Compares the committed files with freshly generated ones; returns the problems found.
fn stale(root: &Path, generated_dir: &str, files: &[(String, String)]) -> Result<Vec<String>> {
    let dir = root.join(generated_dir);
    let mut problems = Vec::new();
    for (name, contents) in files {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == *contents => {}
            Ok(committed) => problems.push(format!(
                "{generated_dir}/{name}: {}",
                diff_summary(&committed, contents)
            )),
            Err(_) => problems.push(format!("{generated_dir}/{name}: missing")),
        }
    }
    for name in existing_files(&dir)? {
        if !files.iter().any(|(n, _)| *n == name) {
            problems.push(format!(
                "{generated_dir}/{name}: not produced by codegen (stale)"
            ));
        }
    }
    Ok(problems)
}

fn codegen(check: bool) -> Result<bool> {
    let mut ok = true;
    for svc in source::SERVICES {
        ok &= codegen_one(svc, check)?;
    }
    Ok(ok)
}

fn codegen_one(svc: &source::Service, check: bool) -> Result<bool> {
    let root = workspace_root();
    let generated_dir = svc.generated_dir;
    let Rendered {
        files,
        notes,
        origin,
    } = render(&root, svc)?;
    eprintln!(
        "xtask: {} model from {origin}: {} operations, {} structures, {} enums, {} exceptions",
        svc.label, notes.operations, notes.structures, notes.enums, notes.exceptions
    );
    for (shape, pattern, err) in &notes.skipped_patterns {
        eprintln!("xtask: note: pattern of `{shape}` ({pattern}) does not compile in the regex crate and is not checked: {err}");
    }
    if check {
        let problems = stale(&root, generated_dir, &files)?;
        if problems.is_empty() {
            eprintln!("xtask: {generated_dir} is up to date");
            return Ok(true);
        }
        eprintln!(
            "xtask: generated code is out of date ({} file(s)); run `cargo xtask codegen`:",
            problems.len()
        );
        for p in problems {
            eprintln!("  {p}");
        }
        return Ok(false);
    }
    let dir = root.join(generated_dir);
    std::fs::create_dir_all(&dir)?;
    for name in existing_files(&dir)? {
        if !files.iter().any(|(n, _)| *n == name) {
            std::fs::remove_file(dir.join(&name))?;
            eprintln!("xtask: removed stale {generated_dir}/{name}");
        }
    }
    for (name, contents) in &files {
        let path = dir.join(name);
        // Leave unchanged files alone so that their mtime (and cargo's rebuild) is not touched.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("xtask: wrote {generated_dir}/{name}");
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same check CI runs (`cargo xtask codegen --check`): the committed output is what the
    /// pinned model generates. Needs the model (installed botocore or pip access).
    #[test]
    fn committed_generated_code_is_current() {
        let root = workspace_root();
        for (svc, operations) in [(&source::KMS, 54), (&source::CLOUDHSM, 18)] {
            let Rendered { files, notes, .. } = render(&root, svc).unwrap();
            assert_eq!(notes.operations, operations, "{}", svc.label);
            let problems = stale(&root, svc.generated_dir, &files).unwrap();
            assert!(
                problems.is_empty(),
                "run `cargo xtask codegen`:\n{}",
                problems.join("\n")
            );
            for (name, contents) in &files {
                assert!(
                    contents.starts_with(&emit::header()),
                    "{name} lacks the header"
                );
            }
        }
    }

    #[test]
    fn diff_summary_points_at_first_difference() {
        let s = diff_summary("a\nb\nc\n", "a\nx\nc\n");
        assert!(s.contains("line 2"), "{s}");
        assert!(diff_summary("a\n", "a\nb\n").contains("<end of file>"));
    }
}

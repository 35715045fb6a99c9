//! Unit tests of [`super::resolve`]: test mode only from the flag, fault injection only in
//! test mode, admin access keys, front-door limits.

use super::*;

const SECRET: &str = "kEyHoLdTeStSeCrEt0000000000000000000000000";

/// Resolves `config` (TOML text) with `args`' other flags.
fn resolve_with(config: &str, mut args: ServeArgs) -> anyhow::Result<Settings> {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("keyhold.toml");
    std::fs::write(&path, config).expect("config");
    args.config = Some(path);
    args.data_dir = Some(dir.path().join("data"));
    resolve(args)
}

#[test]
fn test_mode_in_the_config_file_is_refused_naming_the_flag() {
    for value in ["true", "false"] {
        let err = resolve_with(&format!("test_mode = {value}\n"), ServeArgs::default())
            .expect_err("test_mode in the file must be refused");
        let text = format!("{err:#}");
        assert!(text.contains("--test-mode"), "{text}");
        assert!(text.contains("test_mode"), "{text}");
    }
    let flag = ServeArgs {
        test_mode: true,
        ..ServeArgs::default()
    };
    assert!(resolve_with("", flag).expect("flag").test_mode);
    assert!(
        !resolve_with("", ServeArgs::default())
            .expect("off")
            .test_mode
    );
}

#[test]
fn fault_injection_needs_test_mode() {
    let cfg = "[cloudhsm]\nenabled = true\nfault_injection = true\n";
    let err = resolve_with(cfg, ServeArgs::default()).expect_err("refused without test mode");
    assert!(format!("{err:#}").contains("--test-mode"), "{err:#}");
    let flag = ServeArgs {
        test_mode: true,
        ..ServeArgs::default()
    };
    assert!(
        resolve_with(cfg, flag)
            .expect("test mode")
            .cloudhsm
            .fault_injection
    );
    // Without fault injection, the CloudHSM API needs no test mode.
    let plain = resolve_with("[cloudhsm]\nenabled = true\n", ServeArgs::default());
    assert_eq!(plain.expect("no faults").cloudhsm.enabled, Some(true));
}

#[test]
fn admin_access_keys_are_read_and_debug_hides_the_secret() {
    let cfg = format!(
        "[[access_keys]]\naccess_key_id = \"AKIAADMIN00000000001\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"111122223333\"\nadmin = true\n\
         [[access_keys]]\naccess_key_id = \"AKIAPLAIN00000000001\"\nsecret_access_key = \"{SECRET}\"\naccount_id = \"111122223333\"\n"
    );
    let s = resolve_with(&cfg, ServeArgs::default()).expect("valid");
    assert!(s.access_keys["AKIAADMIN00000000001"].admin);
    assert!(!s.access_keys["AKIAPLAIN00000000001"].admin);
    let shown = format!("{s:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(shown.contains("AKIAADMIN00000000001"));
}

#[test]
fn front_door_limits_have_defaults_file_values_and_flag_overrides() {
    let s = resolve_with("", ServeArgs::default()).expect("defaults");
    assert_eq!(s.header_read_timeout, std::time::Duration::from_secs(10));
    assert_eq!(s.tls_handshake_timeout, std::time::Duration::from_secs(10));
    assert_eq!(s.max_connections, 4096);
    assert_eq!(s.log_format, LogFormat::Text);

    let file = "header_read_timeout_secs = 3\ntls_handshake_timeout_secs = 4\nmax_connections = 5\nlog_format = \"json\"\n";
    let s = resolve_with(file, ServeArgs::default()).expect("file");
    assert_eq!(s.header_read_timeout, std::time::Duration::from_secs(3));
    assert_eq!(s.tls_handshake_timeout, std::time::Duration::from_secs(4));
    assert_eq!(s.max_connections, 5);
    assert_eq!(s.log_format, LogFormat::Json);

    let flags = ServeArgs {
        header_read_timeout_secs: Some(1),
        tls_handshake_timeout_secs: Some(2),
        max_connections: Some(7),
        log_format: Some(LogFormat::Text),
        ..ServeArgs::default()
    };
    let s = resolve_with(file, flags).expect("flags");
    assert_eq!(s.header_read_timeout, std::time::Duration::from_secs(1));
    assert_eq!(s.tls_handshake_timeout, std::time::Duration::from_secs(2));
    assert_eq!(s.max_connections, 7);
    assert_eq!(s.log_format, LogFormat::Text);

    for bad in [
        "header_read_timeout_secs = 0\n",
        "tls_handshake_timeout_secs = 0\n",
        "max_connections = 0\n",
    ] {
        assert!(resolve_with(bad, ServeArgs::default()).is_err(), "{bad}");
    }
}

#[test]
fn audit_log_from_the_file_is_overridden_by_the_flag() {
    use crate::audit::AuditTarget;
    let file = "audit_log = \"/var/log/keyhold/audit.log\"\naudit_log_max_bytes = 1000\n";
    let from_file = resolve_with(file, ServeArgs::default()).expect("file");
    assert_eq!(
        from_file.audit_log,
        Some(AuditTarget::File {
            path: PathBuf::from("/var/log/keyhold/audit.log"),
            max_bytes: 1000,
            max_files: crate::audit::writer::DEFAULT_MAX_FILES,
        })
    );
    let flag = ServeArgs {
        audit_log: Some("-".into()),
        ..ServeArgs::default()
    };
    assert_eq!(
        resolve_with(file, flag).expect("flag").audit_log,
        Some(AuditTarget::Stdout)
    );
    assert_eq!(
        resolve_with("", ServeArgs::default())
            .expect("off")
            .audit_log,
        None
    );
    let empty = ServeArgs {
        audit_log: Some(String::new()),
        ..ServeArgs::default()
    };
    assert!(resolve_with("", empty).is_err());
}

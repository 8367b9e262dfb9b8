//! `kthena-router validate`: the webhook's rules offline.

use std::path::{Path, PathBuf};

use kthena_operator::validate::run;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The rules of a router serving Gateways (`--enable-gateway-api`): the invalid examples'
/// conflicts are on Gateway listeners.
const GATEWAY: kthena_webhook::Options = kthena_webhook::Options {
    allow_duplicate_model_names: false,
    gateway_mode: true,
};

#[test]
fn every_example_is_valid_with_and_without_gateways() {
    for options in [Default::default(), GATEWAY] {
        let (read, denied) = run(&[examples()], options).expect("readable");
        assert!(read >= 20, "{read} objects");
        assert!(denied.is_empty(), "{options:?}: {denied:#?}");
    }
}

#[test]
fn every_invalid_example_is_denied_with_its_field() {
    let dir = examples().join("invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/invalid")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "{} invalid examples", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: no `# expect:` line", file.display()))
            .trim()
            .to_owned();
        let (_, denied) = run(&[dir.join("context"), file.clone()], GATEWAY).expect("readable");
        let mine: Vec<_> = denied.iter().filter(|d| d.file == file).collect();
        assert_eq!(mine.len(), 1, "{}: {denied:#?}", file.display());
        assert!(
            mine[0].problems.iter().any(|p| p.contains(&expect)),
            "{}: expected {expect:?} in {:?}",
            file.display(),
            mine[0].problems
        );
    }
}

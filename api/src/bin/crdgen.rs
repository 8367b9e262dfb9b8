//! Writes the CRDs of our kinds into a folder (default `crds/`), or with `--check` fails when
//! the folder differs from what the Rust types generate.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> anyhow::Result<ExitCode> {
    let mut check = false;
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../crds"));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: crdgen [--check] [DIR]   (DIR defaults to the repository's crds/)"
                );
                return Ok(ExitCode::SUCCESS);
            }
            _ => dir = PathBuf::from(arg),
        }
    }
    let drift = kthena_api::crds::sync(&dir, check)?;
    for file in &drift {
        eprintln!(
            "{}: {}",
            file.display(),
            if check { "out of date" } else { "written" }
        );
    }
    Ok(if check && !drift.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

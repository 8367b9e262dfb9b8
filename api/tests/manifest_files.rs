//! What the manifest reader lists and reads in a folder that holds more than manifests: a FIFO
//! or a symlink to a device would block or never end a read, a huge file would be loaded whole.

#![cfg(unix)]

use kthena_api::manifest::{MAX_FILE_BYTES, files, read, read_in};

#[test]
fn only_regular_files_are_listed_and_none_is_read_past_the_limit() {
    let dir = std::env::temp_dir().join(format!("kthena-manifest-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("a.yaml"), "kind: x\n").expect("write");
    let fifo = dir.join("b-fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    std::os::unix::fs::symlink("/dev/zero", dir.join("c-zero.yaml")).expect("symlink");
    std::os::unix::fs::symlink(dir.join("d-loop.yaml"), dir.join("d-loop.yaml")).expect("loop");
    let big = dir.join("e-big.yaml");
    std::fs::write(&big, vec![b'#'; MAX_FILE_BYTES as usize + 1]).expect("write");

    let listed: Vec<String> = files(&dir)
        .expect("lists")
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect();
    // Everything named like a manifest is listed, so that reading it refuses it by name.
    assert_eq!(
        listed,
        [
            "a.yaml",
            "b-fifo.yaml",
            "c-zero.yaml",
            "d-loop.yaml",
            "e-big.yaml"
        ]
    );
    assert_eq!(read(&dir.join("a.yaml")).expect("reads"), "kind: x\n");
    for (file, why) in [
        ("b-fifo.yaml", "not a regular file"),
        ("c-zero.yaml", "not a regular file"),
        ("e-big.yaml", "larger than"),
    ] {
        let err = read(&dir.join(file)).expect_err(file);
        assert!(err.to_string().contains(why), "{file}: {err}");
    }
    let looped = read(&dir.join("d-loop.yaml")).expect_err("a symlink loop");
    assert!(looped.to_string().contains("symbolic links"), "{looped}");
    // Read as a folder's manifest, a symlink out of the folder is refused before its target
    // is even looked at.
    let out = read_in(&dir, &dir.join("c-zero.yaml")).expect_err("out of the folder");
    assert!(
        out.to_string().contains("leading out of the folder"),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

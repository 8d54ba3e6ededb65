//! `scripts/test` runs every test binary even after one fails, still exits non-zero, and
//! `scripts/test-summary` (the closing count of `.ci/run`) adds up every binary's results and
//! says when one died without any. Run for real, with cargo, on a throwaway workspace of three
//! crates: the first has a failing test, the second passes, the third's test binary aborts. The
//! repository's scripts are copied in as they are; only the steps that install the real suite's
//! tools (OpenCode, Chromium, the desktop packages) are no-ops there.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use orchestra_testkit::opencode::{TempDir, workspace_root};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    write(path, text);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn crate_with(root: &Path, name: &str, tests: &str) {
    write(
        &root.join(name).join("Cargo.toml"),
        &format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
    );
    write(&root.join(name).join("src/lib.rs"), tests);
}

#[test]
fn every_test_binary_runs_after_a_failure_and_the_count_adds_them_all() {
    let dir = TempDir::new("orchestra-test-script").unwrap();
    let root = dir.path();
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"a-fails\", \"b-passes\", \"c-aborts\"]\nresolver = \"2\"\n",
    );
    crate_with(
        root,
        "a-fails",
        "#[test] fn passes() {}\n#[test] fn fails() { panic!(\"a-fails fails on purpose\"); }\n",
    );
    crate_with(
        root,
        "b-passes",
        "#[test] fn one() {}\n#[test] fn two() {}\n#[test] #[ignore] fn skipped() {}\n",
    );
    crate_with(
        root,
        "c-aborts",
        "#[test] fn dies() { std::process::abort(); }\n",
    );
    let repo = workspace_root();
    for script in ["test", "test-summary"] {
        let text = std::fs::read_to_string(repo.join("scripts").join(script)).unwrap();
        executable(&root.join("scripts").join(script), &text);
    }
    for installer in [
        "install-opencode",
        "install-chromium",
        "install-system-deps",
    ] {
        executable(&root.join("scripts").join(installer), "#!/bin/sh\nexit 0\n");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let lock = Command::new(&cargo)
        .args(["generate-lockfile", "--offline"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "{}",
        String::from_utf8_lossy(&lock.stderr)
    );

    let run = Command::new(root.join("scripts/test"))
        .current_dir(root)
        .env("CARGO_TARGET_DIR", root.join("target"))
        .env_remove("ORCHESTRA_NO_DESKTOP")
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !run.status.success(),
        "a failing test must fail the run: {output}"
    );
    // The failure of the first crate did not stop the others.
    let failed_at = output
        .find("test result: FAILED. 1 passed; 1 failed")
        .unwrap_or_else(|| panic!("a-fails' result is missing: {output}"));
    let passed_at = output
        .find("test result: ok. 2 passed; 0 failed; 1 ignored")
        .unwrap_or_else(|| panic!("b-passes did not run after a-fails failed: {output}"));
    assert!(failed_at < passed_at, "a-fails ran first: {output}");
    assert!(
        output.contains("rerun pass `-p c-aborts --lib`"),
        "c-aborts ran too: {output}"
    );
    assert!(
        output.contains("scripts/test: some tests failed"),
        "{output}"
    );

    let mut summary = Command::new(root.join("scripts/test-summary"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    summary
        .stdin
        .take()
        .unwrap()
        .write_all(output.as_bytes())
        .unwrap();
    let summary = summary.wait_with_output().unwrap();
    assert!(summary.status.success());
    let lines: Vec<String> = String::from_utf8_lossy(&summary.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines,
        [
            "ci: 1 test binary(ies) failed without a test result line (crashed?); see above",
            "ci: 3 passed, 1 failed, 1 skipped",
        ],
        "{output}"
    );
}

//! Without HOME and XDG_STATE_HOME there is no private place for the store, the hub's token
//! and its lock: the binary refuses and says why, instead of using a shared temp folder.
#![allow(clippy::unwrap_used)]

#[test]
fn without_home_the_cli_refuses_instead_of_using_tmp() {
    let project = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["status", "--project"])
        .arg(project.path())
        .env_remove("HOME")
        .env_remove("XDG_STATE_HOME")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(
        said.contains("neither HOME nor XDG_STATE_HOME is set"),
        "{said}"
    );
    // Nothing was written under the temp folder on its behalf.
    let tmp_state = std::env::temp_dir().join("orchestra").join("projects");
    let name = project
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let leaked = std::fs::read_dir(&tmp_state).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&name))
    });
    assert!(!leaked, "state was written under {}", tmp_state.display());
}

//! Issue 12 §8: every malformed `orchestrator.json` in `corpus/config/` is refused by config
//! loading with an error that names the file and what is wrong in it (the key, the value, or
//! where the syntax breaks), and never panics.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use orchestra_core::config::{self, LoadOptions};

#[test]
fn every_malformed_config_file_is_refused_with_a_clear_error() {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "jsonc"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 50,
        "only {} files in {}",
        files.len(),
        corpus.display()
    );
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect: Vec<&str> = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{} has no `// expect:` line", file.display()))
            .split(" && ")
            .collect();
        // Loaded as a project's own config, the way a repository brings it.
        let root = tempfile::tempdir().unwrap();
        let project = root.path().join("project");
        std::fs::create_dir_all(project.join(".opencode")).unwrap();
        let placed = project.join(".opencode/orchestrator.json");
        std::fs::write(&placed, &text).unwrap();
        let loaded = config::load(&LoadOptions {
            project_dir: project,
            global_dir: Some(root.path().join("no-global")),
            extra_file: None,
        });
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        match loaded {
            Ok(_) => wrong.push(format!("{name}: accepted")),
            Err(error) => {
                let message = error.to_string();
                let missing: Vec<&&str> = expect
                    .iter()
                    .filter(|needle| !message.contains(**needle))
                    .collect();
                if !missing.is_empty() || !message.contains(&placed.display().to_string()) {
                    wrong.push(format!(
                        "{name}: missing {missing:?} (or the path) in: {message}"
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        files.len(),
        wrong.join("\n")
    );
    eprintln!(
        "{} malformed config files, 0 accepted, 0 panics",
        files.len()
    );
}

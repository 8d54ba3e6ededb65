#![allow(clippy::unwrap_used)]
//! The catalog fixtures under `tests/fixtures/catalogs/` are what real OpenCode answers on
//! `/config/providers` and `/config` for the configs in `models_providers`. This test captures
//! them again and fails when they differ (`UPDATE_CATALOG_FIXTURES=1` rewrites them), so the
//! table-driven resolution tests always run on OpenCode's real output.

use super::models_providers;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use orchestra_core::models::Catalog;
use orchestra_core::opencode::ProvidersResponse;
use orchestra_core::supervisor::{ServeSpec, ServerProcess};
use orchestra_testkit::opencode::{IsolatedHome, TestProject, require_opencode};
use serde_json::{Value, json};

const PASSWORD: &str = "catalog-secret";
/// No provider is ever called: the catalog is configuration only.
const DEAD_URL: &str = "http://127.0.0.1:9/v1";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/catalogs/{name}.json"))
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .basic_auth("opencode", Some(PASSWORD))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Starts OpenCode with `config` and returns `{"config": {model, small_model}, "providers": …}`
/// without provider `options` and `key` (URLs and secrets).
async fn capture(config: &Value) -> Value {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let mut env = home.env();
    env.push(("OPENCODE_CONFIG_CONTENT".into(), config.to_string()));
    let started = Instant::now();
    let server = ServerProcess::spawn(ServeSpec {
        supervisor: None,
        binary: require_opencode(),
        cwd: project.dir.clone(),
        env,
        password: PASSWORD.into(),
        port: 0,
        startup_timeout: Duration::from_secs(60),
        label: "catalog".into(),
    })
    .await
    .unwrap();
    eprintln!("OpenCode ready after {:?}", started.elapsed());
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut providers = get(&http, &format!("{}/config/providers", server.url())).await;
    let merged = get(&http, &format!("{}/config", server.url())).await;
    server.stop(Duration::from_secs(3)).await.unwrap();
    for provider in providers["providers"].as_array_mut().unwrap() {
        let object = provider.as_object_mut().unwrap();
        object.remove("options");
        object.remove("key");
    }
    json!({
        "config": {"model": merged.get("model"), "small_model": merged.get("small_model")},
        "providers": providers,
    })
}

async fn check_fixture(name: &str, config: Value) -> Value {
    let captured = capture(&config).await;
    let path = fixture_path(name);
    if orchestra_testkit::fixtures::update_requested("UPDATE_CATALOG_FIXTURES") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&captured).unwrap() + "\n",
        )
        .unwrap();
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        stored,
        captured,
        "{} differs from what OpenCode answers now; rerun with UPDATE_CATALOG_FIXTURES=1 and review the diff",
        path.display()
    );
    captured
}

fn catalog_of(captured: &Value) -> Catalog {
    let providers: ProvidersResponse =
        serde_json::from_value(captured["providers"].clone()).unwrap();
    Catalog::from_configured(&providers, &captured["config"])
}

#[tokio::test]
async fn fixtures_match_what_real_opencode_reports() {
    let several = check_fixture(
        "several-providers",
        models_providers::several_providers(DEAD_URL),
    )
    .await;
    let catalog = catalog_of(&several);
    let ids: Vec<String> = catalog.usable().map(|m| m.full_id()).collect();
    // OpenCode itself drops deprecated models from the providers it lists.
    assert!(!ids.contains(&"cheap/old-v1".to_owned()), "{ids:?}");
    assert!(ids.contains(&"vis/seer-pro-20250101".to_owned()), "{ids:?}");
    let seer = catalog.find("vis", "seer-pro-20250101").unwrap();
    assert!(seer.image_input && seer.attachment && seer.temperature);
    assert_eq!((seer.cost_input, seer.context), (3.0, 200_000));
    assert!(catalog.find("cheap", "thinker").unwrap().reasoning);
    assert_eq!(catalog.default_model.as_deref(), Some("cheap/thinker"));
    assert_eq!(catalog.small_model.as_deref(), Some("cheap/tiny-mini"));

    let text = check_fixture("text-only", models_providers::text_only(DEAD_URL)).await;
    let catalog = catalog_of(&text);
    assert_eq!(catalog.default_model, None);
    assert!(catalog.usable().all(|m| !m.image_input));
    assert_eq!(
        catalog.provider_defaults.get("plain").map(String::as_str),
        Some("writer-small")
    );
}

#![allow(clippy::unwrap_used, clippy::print_stdout)]
use std::time::Duration;
#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap();
    let hash = std::env::args().nth(2).unwrap_or_default();
    let browser = orchestra_browser::Browser::launch(1280, 800).await.unwrap();
    let page = browser.new_page().await.unwrap();
    let mut events = page.events();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            let m = e["method"].as_str().unwrap_or("");
            if m == "Runtime.exceptionThrown"
                || m == "Runtime.consoleAPICalled"
                || m == "Log.entryAdded"
            {
                println!("EVENT {}", e["params"]);
            }
        }
    });
    page.call("Log.enable", serde_json::json!({}))
        .await
        .unwrap();
    page.goto(&url).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    if !hash.is_empty() {
        page.eval(&format!("location.hash = {:?}", hash))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let text = page.eval("document.body.innerText").await.unwrap();
    println!("{}", text.as_str().unwrap_or(""));
    page.screenshot(std::path::Path::new("/tmp/pt/shot.png"))
        .await
        .unwrap();
}

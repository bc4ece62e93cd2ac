//! The web console's files, served by the binary at `/`: the built app when
//! `console/` was built before the server, else a page saying how to build it.

use trainyard_tests::TestApp;

#[tokio::test]
async fn the_console_page_and_every_file_it_names_are_served() {
    let app = TestApp::spawn().await;
    let page = reqwest::get(format!("{}/", app.base)).await.unwrap();
    let status = page.status();
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    if status == 404 {
        assert!(html.contains("deploy/build-console.sh"), "{html}");
        println!("the console was not built: checked the page that says how");
        return;
    }
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-cache");
    // Every script, style and icon the page names is there, with its type.
    let named: Vec<&str> = html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/assets/") || *part == "/favicon.svg")
        .collect();
    assert!(named.iter().any(|p| p.ends_with(".js")), "{html}");
    for path in named {
        let file = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
        assert_eq!(file.status(), 200, "{path}");
        let kind = file.headers()["content-type"].to_str().unwrap().to_owned();
        let expected = match path.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            _ => "image/svg+xml",
        };
        assert_eq!(kind, expected, "{path}");
        if path.starts_with("/assets/") {
            assert!(file.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable"));
        }
    }
}

#[tokio::test]
async fn a_missing_console_file_is_a_problem_document() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(format!("{}/assets/no-such-file.js", app.base))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "not_found");
}

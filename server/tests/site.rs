//! The built site travels inside the binary: a server started far from the
//! repository (no `target/site` beside it) serves the pages' script, wasm
//! and style, compressed and revalidated by ETag, exactly as built.

mod common;

use common::TestServer;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, ETAG, IF_NONE_MATCH};

/// The site `make build` wrote, which the binary was built with.
fn built(file: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/site")
        .join(file);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the site before the tests (`make build`)",
            path.display()
        )
    })
}

#[tokio::test]
async fn the_binary_serves_its_own_site_from_any_directory() {
    let mut server = TestServer::new();
    // Nothing to read from disk: the working directory has no site, and
    // `site_root` names an empty folder.
    let empty = tempfile::tempdir().unwrap();
    let site_root = empty.path().to_str().unwrap().to_owned();
    server.start_with(&[
        ("ENVLINE_SERVER_SITE_ROOT", &site_root),
        ("ENVLINE_AUTH_ANONYMOUS_READ", "true"),
    ]);
    let http = reqwest::Client::new();

    // The page names the script, which is the one built.
    let page = http
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/pkg/envline.js"), "{page}");
    let js = http
        .get(server.url("/pkg/envline.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(js.bytes().await.unwrap().as_ref(), built("pkg/envline.js"));
    let css = http
        .get(server.url("/pkg/envline.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        css.bytes().await.unwrap().as_ref(),
        built("pkg/envline.css")
    );

    // The wasm goes out gzipped to a browser that accepts it, with an ETag;
    // names carry no hash, so browsers must ask again (and get a 304).
    let wasm = http
        .get(server.url("/pkg/envline.wasm"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(wasm.status(), StatusCode::OK);
    assert_eq!(wasm.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(wasm.headers()[CACHE_CONTROL], "no-cache");
    let etag = wasm.headers()[ETAG].clone();
    let gzipped = wasm.bytes().await.unwrap();
    assert!(gzipped.len() < built("pkg/envline.wasm").len() / 2);
    let again = http
        .get(server.url("/pkg/envline.wasm"))
        .header(IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    // A file the site does not have is not found.
    let missing = http
        .get(server.url("/pkg/nothing.wasm"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    server.stop();
}

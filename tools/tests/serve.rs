//! `fiq-index serve` over HTTP: the JSON API answers composed queries, refuses bad input with a 4xx
//! and a message (never a panic), batches concurrent queries, and stops cleanly on SIGTERM.

mod common;

use common::{get, multipart, post_json, request, tiny_catalog, tiny_model, Served};
use serde_json::json;

/// A first key of `category` in the index, and its image bytes.
fn some_item(served: &Served, category: &str) -> (String, Vec<u8>) {
    let page = get(served.addr, &format!("/items?category={category}&limit=3")).json();
    let key = page["items"][0]["key"].as_str().unwrap().to_owned();
    let image = get(served.addr, page["items"][0]["image_url"].as_str().unwrap());
    assert_eq!(image.status, 200);
    assert!(image.header("content-type").unwrap().starts_with("image/"));
    (key, image.body)
}

#[test]
fn query_api_answers_and_refuses_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, index) = tiny_catalog(tmp.path(), 50, Some(&tiny_model()));
    let served = Served::start(
        &index,
        Some(&tiny_model()),
        &["--max-body-bytes", "200000", "--max-k", "50"],
    );
    let addr = served.addr;

    let health = get(addr, "/healthz");
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["items"], 30);
    let info = get(addr, "/info").json();
    assert_eq!(info["categories"].as_array().unwrap().len(), 3, "{info}");
    let page = get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<script src=\"/app.js\">"));
    assert_eq!(get(addr, "/app.js").status, 200);

    let (key, image) = some_item(&served, "dress");
    let item = get(addr, &format!("/items/{key}")).json();
    assert_eq!(item["category"], "dress");

    // A composed query by key, in its category: k results, best first, with image URLs.
    let answer = post_json(
        addr,
        &json!({"key": key, "text": "is red and sleeveless", "k": 5, "category": "dress", "fusion": "sum"}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let hits = answer.json()["hits"].as_array().unwrap().clone();
    assert_eq!(hits.len(), 5);
    for pair in hits.windows(2) {
        assert!(pair[0]["score"].as_f64() >= pair[1]["score"].as_f64());
    }
    for hit in &hits {
        assert_eq!(hit["category"], "dress");
        let url = hit["image_url"].as_str().unwrap();
        assert!(url.ends_with("/image"), "{url}");
    }
    // Text alone, the image alone (the reference first, as it is its own nearest item), and the
    // reference left out of its results.
    let text_only = post_json(addr, &json!({"text": "is blue"}));
    assert_eq!(text_only.status, 200, "{}", text_only.text());
    assert_eq!(text_only.json()["hits"].as_array().unwrap().len(), 10);
    let image_only = post_json(addr, &json!({"key": key, "fusion": "image", "k": 1})).json();
    assert_eq!(image_only["hits"][0]["key"], key.as_str());
    let excluded = post_json(
        addr,
        &json!({"key": key, "fusion": "image", "k": 3, "exclude_reference": true}),
    )
    .json();
    assert!(excluded["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["key"] != key.as_str()));
    let weighted = post_json(
        addr,
        &json!({"key": key, "text": "is red", "fusion": "weighted", "alpha": 0.25}),
    );
    assert_eq!(weighted.status, 200, "{}", weighted.text());

    // An uploaded image (the item's own file) as a multipart form: the item itself comes first.
    let (content_type, body) = multipart(
        &[("k", "4"), ("fusion", "image"), ("text", "")],
        Some(("dress.png", &image)),
    );
    let uploaded = request(addr, "POST", "/query", Some(&content_type), &body);
    assert_eq!(uploaded.status, 200, "{}", uploaded.text());
    let uploaded = uploaded.json();
    assert_eq!(uploaded["hits"].as_array().unwrap().len(), 4);
    assert_eq!(uploaded["hits"][0]["key"], key.as_str());

    // Bad input: a 4xx with a message naming the problem.
    let big = vec![0u8; 300_000];
    let (form_type, not_image) = multipart(
        &[("text", "red")],
        Some(("notes.txt", b"hello, not an image")),
    );
    let (_, oversized) = multipart(&[("text", "red")], Some(("huge.png", &big)));
    let (_, unknown_field) = multipart(&[("colour", "red")], None);
    let (_, both) = multipart(&[("key", &key)], Some(("dress.png", &image)));
    let (_, bad_k_form) = multipart(&[("text", "red"), ("k", "ten")], None);
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("empty body", "application/json", vec![], 400, "empty"),
        (
            "not JSON",
            "application/json",
            b"{text".to_vec(),
            400,
            "not a query",
        ),
        (
            "JSON not an object",
            "application/json",
            b"[1, 2]".to_vec(),
            400,
            "not a query",
        ),
        (
            "unknown JSON field",
            "application/json",
            br#"{"txt": "red"}"#.to_vec(),
            400,
            "unknown field",
        ),
        (
            "nothing to search",
            "application/json",
            b"{}".to_vec(),
            422,
            "neither a reference nor a text",
        ),
        (
            "unknown key",
            "application/json",
            br#"{"key": "nope", "text": "red"}"#.to_vec(),
            422,
            "\"nope\"",
        ),
        (
            "unknown category",
            "application/json",
            br#"{"text": "red", "category": "hats"}"#.to_vec(),
            422,
            "\"hats\"",
        ),
        (
            "k = 0",
            "application/json",
            br#"{"text": "red", "k": 0}"#.to_vec(),
            400,
            "k = 0",
        ),
        (
            "huge k",
            "application/json",
            br#"{"text": "red", "k": 100000}"#.to_vec(),
            400,
            "k = 100000",
        ),
        (
            "negative k",
            "application/json",
            br#"{"text": "red", "k": -1}"#.to_vec(),
            400,
            "not a query",
        ),
        (
            "bad fusion",
            "application/json",
            br#"{"text": "red", "fusion": "max"}"#.to_vec(),
            400,
            "unknown fusion \"max\"",
        ),
        (
            "bad alpha",
            "application/json",
            br#"{"text": "red", "fusion": "weighted", "alpha": 2}"#.to_vec(),
            400,
            "alpha",
        ),
        (
            "other content type",
            "text/plain",
            b"red".to_vec(),
            415,
            "text/plain",
        ),
        (
            "non-image upload",
            &form_type,
            not_image,
            415,
            "not an image",
        ),
        (
            "oversized upload",
            &form_type,
            oversized,
            413,
            "larger than",
        ),
        (
            "unknown form field",
            &form_type,
            unknown_field,
            400,
            "colour",
        ),
        ("key and upload", &form_type, both, 400, "not both"),
        ("bad k in a form", &form_type, bad_k_form, 400, "\"ten\""),
        (
            "broken multipart",
            &form_type,
            b"--nope\r\n".to_vec(),
            400,
            "multipart",
        ),
    ];
    for (name, content_type, body, status, message) in cases {
        let response = request(addr, "POST", "/query", Some(content_type), &body);
        assert_eq!(response.status, status, "{name}: {}", response.text());
        let error = response.json()["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(message),
            "{name}: {error:?} should say {message:?}"
        );
    }
    let missing = get(addr, "/items/no-such-key");
    assert_eq!(missing.status, 404);
    assert!(missing.json()["error"]
        .as_str()
        .unwrap()
        .contains("no-such-key"));
    assert_eq!(get(addr, "/items/no-such-key/image").status, 404);
    assert_eq!(get(addr, "/items?limit=x").status, 400);
    assert_eq!(get(addr, "/items?category=hats").status, 400);
    assert_eq!(get(addr, "/nowhere").status, 404);
    assert_eq!(request(addr, "GET", "/query", None, b"").status, 405);

    // The server is still up after all of that, and counted it.
    assert_eq!(get(addr, "/healthz").status, 200);
    let metrics = get(addr, "/metrics").text();
    assert!(
        metrics.contains(r#"fiq_http_requests_total{route="/query",method="POST",status="200"}"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"status="413""#), "{metrics}");
    assert!(metrics.contains(r#"fiq_http_request_duration_seconds_count{route="/query"}"#));
}

/// Concurrent requests share batches, each gets its own answer, and SIGTERM stops the server cleanly.
#[test]
fn concurrent_queries_are_batched_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, index) = tiny_catalog(tmp.path(), 50, Some(&tiny_model()));
    // A long window, so that the concurrent requests surely meet in one batch.
    let mut served = Served::start(&index, Some(&tiny_model()), &["--batch-window-ms", "200"]);
    let addr = served.addr;
    let key = get(addr, "/items?limit=1").json()["items"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let answers: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let key = key.clone();
                scope.spawn(move || {
                    let body = if i % 2 == 0 {
                        json!({"text": format!("is colour {i}"), "k": i + 1})
                    } else {
                        json!({"key": key, "text": "is darker", "k": i + 1, "fusion": "image"})
                    };
                    let response = post_json(addr, &body);
                    assert_eq!(response.status, 200, "{}", response.text());
                    response.json()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["hits"].as_array().unwrap().len(), i + 1, "{answer}");
        if i % 2 == 1 {
            assert_eq!(answer["hits"][0]["key"], key.as_str());
        }
    }
    let metrics = get(addr, "/metrics").text();
    let largest: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fiq_query_largest_batch "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        largest > 1,
        "concurrent queries were never batched:\n{metrics}"
    );

    let status = served.terminate();
    assert!(
        status.success(),
        "SIGTERM should end the server cleanly: {status:?}"
    );
}

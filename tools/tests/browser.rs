//! The search page and the HTML evaluation report, end to end in headless Chromium: load, pick and
//! upload a reference, search, see results, see an error; open the report, filter its failures.
//!
//! Chromium is the system's (Debian's `chromium`; `.ci/run` installs it), found at $FIQ_CHROMIUM,
//! /usr/bin/chromium or /usr/bin/chromium-browser; without it these tests say so loudly and pass.
//! With FIQ_SCREENSHOTS=DIR they save their screenshots there: the README's `docs/serve-page.png`
//! comes from `FIQ_SCREENSHOTS=docs cargo test --workspace --test browser` (the report's screenshot
//! there, `eval-report-tiny.png`, shows the random test model and is not kept; `docs/eval-report.png`
//! is the 15k catalog's report, see README).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{tiny_catalog, Served};
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};

fn chromium() -> Option<PathBuf> {
    std::env::var_os("FIQ_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from))
        .find(|candidate| candidate.is_file())
}

/// A headless browser, or `None` (with a loud message) when Chromium is not installed.
fn browser(test: &str) -> Option<Browser> {
    let Some(path) = chromium() else {
        eprintln!(
            "\n\n*** SKIPPED {test}: no Chromium found (set FIQ_CHROMIUM, or `apt-get install chromium`; \
             .ci/run installs it). The browser tests did NOT run. ***\n"
        );
        return None;
    };
    let options = LaunchOptions::default_builder()
        .path(Some(path))
        .headless(true)
        // Containers run tests as root, where Chromium's sandbox cannot start.
        .sandbox(false)
        .window_size(Some((1280, 860)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .expect("launch options");
    Some(Browser::new(options).expect("start Chromium"))
}

fn screenshot(tab: &Tab, name: &str) {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    if let Some(dir) = std::env::var_os("FIQ_SCREENSHOTS") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

/// Runs `script` in the page and returns its value as JSON.
fn eval(tab: &Tab, script: &str) -> serde_json::Value {
    tab.evaluate(script, false)
        .expect("evaluate")
        .value
        .unwrap_or(serde_json::Value::Null)
}

fn result_keys(tab: &Arc<Tab>) -> Vec<String> {
    tab.wait_for_elements("#results .result").expect("results");
    // Objects come back as references, not values: pass the list as a JSON string.
    let json = eval(
        tab,
        "JSON.stringify([...document.querySelectorAll('#results .result')].map(e => e.dataset.key))",
    );
    serde_json::from_str(json.as_str().unwrap()).unwrap()
}

#[test]
fn search_page_in_chromium() {
    let Some(browser) = browser("search_page_in_chromium") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The built-in model, so that the screenshot shows results that mean something.
    let (data, index) = tiny_catalog(tmp.path(), 60, None);
    let served = Served::start(&index, None, &[]);
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(&served.url("/")).unwrap();
    tab.wait_until_navigated().unwrap();

    // Load: the catalog grid and the controls fill in from /info and /items.
    let items = tab.wait_for_elements("#items .item").unwrap();
    assert_eq!(items.len(), 24, "the first page of the catalog");
    let categories = eval(&tab, "document.querySelectorAll('#category option').length");
    assert_eq!(categories, 4, "all + three categories");

    // Pick a reference from the catalog, type a modification, search: a grid of k results with scores.
    let first = eval(&tab, "document.querySelector('#items .item').dataset.key");
    let first = first.as_str().unwrap().to_owned();
    items[0].click().unwrap();
    let label = tab.wait_for_element("#reference-label").unwrap();
    assert_eq!(label.get_inner_text().unwrap(), first);
    tab.find_element("#text")
        .unwrap()
        .type_into("is red and sleeveless")
        .unwrap();
    tab.find_element("#search").unwrap().click().unwrap();
    let keys = result_keys(&tab);
    assert_eq!(keys.len(), 12, "k = 12 results");
    assert!(
        !keys.contains(&first),
        "the reference is hidden from its results"
    );
    let scores = eval(
        &tab,
        "[...document.querySelectorAll('#results .score')].map(e => Number(e.textContent)).join(' ')",
    );
    let scores: Vec<f64> = scores
        .as_str()
        .unwrap()
        .split(' ')
        .map(|s| s.parse().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    let status = tab
        .find_element("#status")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert!(status.contains("12 results"), "{status}");
    screenshot(&tab, "serve-page.png");

    // Upload an image file as the reference, image only: the catalog item it came from ranks first.
    let upload_key = keys[3].clone();
    let upload = find_image(&data, &upload_key);
    eval(&tab, "document.querySelector('#results').replaceChildren()");
    tab.find_element("#upload")
        .unwrap()
        .set_input_files(&[upload.to_str().unwrap()])
        .unwrap();
    let label = tab.wait_for_element("#reference-label").unwrap();
    assert!(label.get_inner_text().unwrap().starts_with("upload:"));
    eval(&tab, "document.querySelector('#fusion').value = 'image'");
    eval(
        &tab,
        "document.querySelector('#exclude-reference').checked = false",
    );
    tab.find_element("#search").unwrap().click().unwrap();
    let keys = result_keys(&tab);
    assert_eq!(
        keys[0], upload_key,
        "the uploaded item's own image ranks first"
    );

    // A bad request shows the server's message, not a broken page.
    eval(&tab, "document.querySelector('#k').value = '5000'");
    tab.find_element("#search").unwrap().click().unwrap();
    let error = tab.wait_for_element("#error:not([hidden])").unwrap();
    let message = error.get_inner_text().unwrap();
    assert!(
        message.contains("400") && message.contains("k = 5000"),
        "{message}"
    );
}

/// The image file of catalog item `key` in the synthetic tree.
fn find_image(data: &Path, key: &str) -> PathBuf {
    let images = data.join("images");
    std::fs::read_dir(&images)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().and_then(|s| s.to_str()) == Some(key))
        .unwrap_or_else(|| panic!("no image for {key} in {}", images.display()))
}

/// `eval --html`: one offline file; the metrics table, a curve per run, and the query sample with its
/// failure filter, in Chromium.
#[test]
fn html_report_in_chromium() {
    let Some(browser) = browser("html_report_in_chromium") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The tiny random model on a gallery of 60 per category: plenty of targets outside the top 50.
    let model = common::tiny_model();
    let (data, index) = tiny_catalog(tmp.path(), 300, Some(&model));
    let report = tmp.path().join("report.html");
    let out = common::bin()
        .arg("eval")
        .arg("--fashioniq")
        .arg(&data)
        .arg("--model")
        .arg(&model)
        .arg("--index")
        .arg(&index)
        .args(["--quiet", "--baselines", "--html"])
        .arg(&report)
        .args(["--html-sample", "1000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing fetched from anywhere.
    for outside in ["src=\"http", "href=\"http", "src=\"//", "<link"] {
        assert!(
            !html.contains(outside),
            "the report must not load {outside}..."
        );
    }

    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(&format!("file://{}", report.display()))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    // Three fusions, each through the IVF index and exactly: six rows, six curves.
    let rows = eval(
        &tab,
        "document.querySelectorAll('table.metrics tbody tr').length",
    );
    assert_eq!(rows, 6);
    let curves = eval(
        &tab,
        "document.querySelectorAll('svg.chart polyline').length",
    );
    assert_eq!(curves, 6);
    let points = eval(
        &tab,
        "document.querySelector('svg.chart polyline').getAttribute('points').split(' ').length",
    );
    assert_eq!(points, 50, "k = 1..50");

    // The sample: failures first, each with its reference, captions, results with scores and the
    // target outlined when it is among them; the target's rank when it is not.
    // Every query is in the sample (fewer than 1000).
    let cards = tab.wait_for_elements("#samples .sample").unwrap().len() as u64;
    assert!(cards > 20, "{cards} queries");
    let first = eval(
        &tab,
        "document.querySelector('#samples .sample').dataset.miss",
    );
    assert_eq!(first, "true", "failures come first");
    let thumbs = eval(
        &tab,
        "document.querySelectorAll('#samples .sample:first-child .hits .thumb').length",
    );
    assert_eq!(thumbs, 10);
    let images = eval(&tab, "[...document.querySelectorAll('#samples img')].every(i => i.complete && i.naturalWidth > 0)");
    assert_eq!(images, true, "every thumbnail is embedded and decodes");
    let far = eval(
        &tab,
        "[...document.querySelectorAll('#samples .rank')].some(e => /rank (\\d+)/.test(e.textContent) && Number(e.textContent.match(/rank (\\d+)/)[1]) > 10)",
    );
    assert_eq!(far, true, "a target outside the top 10 shows its rank");
    let outlined = eval(
        &tab,
        "document.querySelectorAll('#samples .hits .thumb.target').length",
    );
    assert!(
        outlined.as_u64().unwrap() > 0,
        "some targets are found and outlined"
    );
    screenshot(&tab, "eval-report-tiny.png");

    // The filter: only queries whose target is not in the top 50.
    let misses = eval(
        &tab,
        "document.querySelectorAll('#samples .sample[data-miss=true]').length",
    );
    let misses = misses.as_u64().unwrap();
    assert!(
        misses > 0 && misses < cards,
        "{misses} failures among {cards}"
    );
    tab.find_element("#only-misses").unwrap().click().unwrap();
    let visible = eval(
        &tab,
        "[...document.querySelectorAll('#samples .sample')].filter(e => !e.hidden).length",
    );
    assert_eq!(visible.as_u64().unwrap(), misses);
    let shown = tab
        .find_element("#shown-count")
        .unwrap()
        .get_inner_text()
        .unwrap();
    assert_eq!(shown, format!("{misses} shown"));
    tab.find_element("#only-misses").unwrap().click().unwrap();
    let visible = eval(
        &tab,
        "[...document.querySelectorAll('#samples .sample')].filter(e => !e.hidden).length",
    );
    assert_eq!(visible.as_u64().unwrap(), cards);
}

//! The handlers: request parsing and checking, answers as JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path as UrlPath, RawQuery, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{json_response, ApiError, App};
use crate::fusion::Fusion;
use crate::index::SearchMode;
use crate::retriever::{Answer, Query, Reference};

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// The fusions a request may name (besides `default`, the server's own).
const FUSIONS: [&str; 5] = ["default", "sum", "weighted", "text", "image"];

pub(super) async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub(super) async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

pub(super) async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "no such route", "status": 404}),
    )
}

pub(super) async fn healthz(State(app): State<Arc<App>>) -> Response {
    json_response(
        StatusCode::OK,
        &serde_json::json!({"status": "ok", "items": app.retriever.index().len()}),
    )
}

pub(super) async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
        .into_response()
}

pub(super) async fn info(State(app): State<Arc<App>>) -> Response {
    let index = app.retriever.index();
    let categories: Vec<_> = app
        .categories
        .iter()
        .map(|(name, count)| serde_json::json!({"name": name, "items": count}))
        .collect();
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "items": index.len(),
            "dim": index.dim(),
            "model": index.model().name,
            "search": if index.ann().is_some() { "ivf" } else { "exact" },
            "categories": categories,
            "fusions": FUSIONS,
            "default_fusion": fusion_name(app.retriever.fusion()),
            "max_k": app.options.max_k,
            "max_body_bytes": app.options.max_body_bytes,
        }),
    )
}

/// How `fusion` is shown.
fn fusion_name(fusion: &Fusion) -> String {
    match fusion {
        Fusion::Sum => "sum".into(),
        Fusion::Weighted { alpha } if *alpha == 1.0 => "text".into(),
        Fusion::Weighted { alpha } if *alpha == 0.0 => "image".into(),
        Fusion::Weighted { alpha } => format!("weighted (alpha {alpha})"),
        Fusion::Combiner(_) => "combiner".into(),
    }
}

/// `/items/{key}` for `key`, its path segment percent-encoded.
pub(super) fn item_url(key: &str) -> String {
    let mut url = String::from("/items/");
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemsParams {
    category: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// A page of the catalog: `?category=dress&offset=0&limit=60`.
pub(super) async fn items(
    State(app): State<Arc<App>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params: ItemsParams = serde_urlencoded_from(raw.as_deref().unwrap_or(""))?;
    let limit = params.limit.unwrap_or(60).min(500);
    let category = params.category.filter(|c| !c.is_empty());
    if let Some(category) = &category {
        if !app.categories.iter().any(|(name, _)| name == category) {
            let known: Vec<&str> = app.categories.iter().map(|(n, _)| n.as_str()).collect();
            return Err(ApiError::BadParameters {
                reason: format!(
                    "unknown category {category:?} (known: {})",
                    known.join(", ")
                ),
            });
        }
    }
    let index = app.retriever.index();
    let mut total = 0usize;
    let mut page = Vec::new();
    for id in 0..index.total_rows() {
        if index.is_deleted(id) {
            continue;
        }
        let meta = index.meta(id)?;
        if category.as_ref().is_some_and(|c| *c != meta.category) {
            continue;
        }
        if total >= params.offset && page.len() < limit {
            page.push(item_json(
                index.key(id)?,
                &meta.category,
                !meta.source.is_empty(),
            ));
        }
        total += 1;
    }
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({"total": total, "offset": params.offset, "items": page}),
    ))
}

fn serde_urlencoded_from<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(&format!("/?{raw}").parse().map_err(|_| {
        ApiError::BadParameters {
            reason: "not a URL query".into(),
        }
    })?)
    .map(|q| q.0)
    .map_err(|rejection| ApiError::BadParameters {
        reason: rejection.body_text(),
    })
}

fn item_json(key: &str, category: &str, has_image: bool) -> serde_json::Value {
    let url = item_url(key);
    serde_json::json!({
        "key": key,
        "category": category,
        "url": url,
        "image_url": has_image.then(|| format!("{url}/image")),
    })
}

pub(super) async fn item(
    State(app): State<Arc<App>>,
    UrlPath(key): UrlPath<String>,
) -> Result<Response, ApiError> {
    let index = app.retriever.index();
    let id = live_id(&app, &key)?;
    let meta = index.meta(id)?;
    Ok(json_response(
        StatusCode::OK,
        &item_json(&key, &meta.category, !meta.source.is_empty()),
    ))
}

fn live_id(app: &App, key: &str) -> Result<u64, ApiError> {
    let index = app.retriever.index();
    match index.id_of(key)? {
        Some(id) if !index.is_deleted(id) => Ok(id),
        _ => Err(ApiError::UnknownItem {
            key: key.to_owned(),
        }),
    }
}

/// The item's image file, as the index recorded it (only files the index names are ever served).
pub(super) async fn item_image(
    State(app): State<Arc<App>>,
    UrlPath(key): UrlPath<String>,
) -> Result<Response, ApiError> {
    let id = live_id(&app, &key)?;
    let source = app.retriever.index().meta(id)?.source;
    if source.is_empty() {
        return Err(ApiError::NoImage { key, path: None });
    }
    let bytes = tokio::fs::read(&source)
        .await
        .map_err(|_| ApiError::NoImage {
            key,
            path: Some(source.clone()),
        })?;
    let content_type = match image::guess_format(&bytes) {
        Ok(image::ImageFormat::Jpeg) => "image/jpeg",
        Ok(image::ImageFormat::Png) => "image/png",
        Ok(image::ImageFormat::WebP) => "image/webp",
        Ok(image::ImageFormat::Gif) => "image/gif",
        Ok(image::ImageFormat::Bmp) => "image/bmp",
        Ok(image::ImageFormat::Tiff) => "image/tiff",
        _ => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /query` as JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    text: Option<String>,
    key: Option<String>,
    k: Option<usize>,
    fusion: Option<String>,
    alpha: Option<f32>,
    category: Option<String>,
    exclude_reference: Option<bool>,
}

/// A checked query, ready for the batcher.
struct Checked {
    query: Query,
    k: usize,
    exclude_reference: bool,
}

pub(super) async fn query(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let limit = app.options.max_body_bytes;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })?;
    if bytes.is_empty() {
        return Err(ApiError::EmptyBody);
    }
    let (fields, upload) = if content_type.starts_with("multipart/form-data") {
        let request = Request::from_parts(parts, Body::from(bytes));
        read_form(request).await?
    } else if content_type.starts_with("application/json") || content_type.is_empty() {
        let fields: QueryRequest =
            serde_json::from_slice(&bytes).map_err(|e| ApiError::BadJson {
                reason: e.to_string(),
            })?;
        (fields, None)
    } else {
        return Err(ApiError::UnsupportedContentType { content_type });
    };
    let checked = check(&app, fields, upload)?;
    let answer = app
        .batcher
        .ask(checked.query, checked.k, checked.exclude_reference)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &answer_json(&answer, started),
    ))
}

/// An uploaded reference image.
struct Upload {
    name: String,
    bytes: Vec<u8>,
}

async fn read_form(request: Request) -> Result<(QueryRequest, Option<Upload>), ApiError> {
    let multipart_error = |e: axum::extract::multipart::MultipartError| ApiError::Multipart {
        reason: e.body_text(),
    };
    let mut form =
        Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::Multipart {
                reason: e.body_text(),
            })?;
    let mut fields = QueryRequest::default();
    let mut upload = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "image" {
            let file = field.file_name().unwrap_or("upload").to_owned();
            let bytes = field.bytes().await.map_err(multipart_error)?;
            // A form whose file input was left empty sends an empty part: no upload.
            if !bytes.is_empty() {
                upload = Some(Upload {
                    name: file,
                    bytes: bytes.to_vec(),
                });
            }
            continue;
        }
        let value = field.text().await.map_err(multipart_error)?;
        // Empty fields are absent (a form sends every input).
        if value.trim().is_empty() {
            continue;
        }
        match name.as_str() {
            "text" => fields.text = Some(value),
            "key" => fields.key = Some(value),
            "category" => fields.category = Some(value),
            "fusion" => fields.fusion = Some(value),
            "k" => {
                fields.k = Some(value.trim().parse().map_err(|_| ApiError::BadField {
                    name: "k",
                    value,
                    expected: "a whole number",
                })?)
            }
            "alpha" => {
                fields.alpha = Some(value.trim().parse().map_err(|_| ApiError::BadField {
                    name: "alpha",
                    value,
                    expected: "a number",
                })?)
            }
            "exclude_reference" => {
                fields.exclude_reference = Some(match value.trim() {
                    "true" | "on" | "1" => true,
                    "false" | "off" | "0" => false,
                    _ => {
                        return Err(ApiError::BadField {
                            name: "exclude_reference",
                            value,
                            expected: "true or false",
                        })
                    }
                })
            }
            _ => return Err(ApiError::UnknownField { name }),
        }
    }
    Ok((fields, upload))
}

/// Checks a request's fields and makes its query; everything the retriever would refuse for the
/// request's own sake (k, fusion, category, a non-image) is refused here, before it joins a batch.
fn check(app: &App, fields: QueryRequest, upload: Option<Upload>) -> Result<Checked, ApiError> {
    let k = fields.k.unwrap_or(10);
    if k == 0 || k > app.options.max_k {
        return Err(ApiError::BadK {
            k,
            max: app.options.max_k,
        });
    }
    let fusion = match fields.fusion.as_deref().map(str::trim) {
        None | Some("") | Some("default") => None,
        Some("sum") => Some(Fusion::Sum),
        Some("text") => Some(Fusion::Weighted { alpha: 1.0 }),
        Some("image") => Some(Fusion::Weighted { alpha: 0.0 }),
        Some("weighted") => {
            let alpha = fields.alpha.unwrap_or(0.5);
            if !(0.0..=1.0).contains(&alpha) {
                return Err(ApiError::BadAlpha { alpha });
            }
            Some(Fusion::Weighted { alpha })
        }
        Some("combiner") if matches!(app.retriever.fusion(), Fusion::Combiner(_)) => None,
        Some(other) => {
            let mut known = FUSIONS.to_vec();
            if matches!(app.retriever.fusion(), Fusion::Combiner(_)) {
                known.push("combiner");
            }
            return Err(ApiError::BadFusion {
                name: other.to_owned(),
                known: known.join(", "),
            });
        }
    };
    if let Some(alpha) = fields.alpha {
        if !alpha.is_finite() || !(0.0..=1.0).contains(&alpha) {
            return Err(ApiError::BadAlpha { alpha });
        }
    }
    let key = fields.key.filter(|k| !k.is_empty());
    let reference = match (key, upload) {
        (Some(_), Some(_)) => return Err(ApiError::TwoReferences),
        (Some(key), None) => Some(Reference::Key(key)),
        (None, Some(upload)) => {
            if image::guess_format(&upload.bytes).is_err() {
                return Err(ApiError::NotAnImage { name: upload.name });
            }
            Some(Reference::ImageBytes {
                name: upload.name,
                bytes: upload.bytes,
            })
        }
        (None, None) => None,
    };
    let mut query = Query::new(fields.text.unwrap_or_default());
    query.reference = reference;
    query.fusion = fusion;
    if let Some(category) = fields.category.filter(|c| !c.is_empty()) {
        if !app.categories.iter().any(|(name, _)| *name == category) {
            let known: Vec<&str> = app.categories.iter().map(|(n, _)| n.as_str()).collect();
            return Err(ApiError::Query(crate::retriever::QueryError::Filter(
                crate::retriever::FilterError::UnknownCategory {
                    category,
                    index: app.retriever.index().path().to_owned(),
                    known: known.join(", "),
                },
            )));
        }
        query = query.category(category);
    }
    if query.reference.is_none() && query.text.trim().is_empty() {
        return Err(ApiError::Query(crate::retriever::QueryError::Empty));
    }
    Ok(Checked {
        query,
        k,
        exclude_reference: fields.exclude_reference.unwrap_or(false),
    })
}

fn answer_json(answer: &Answer, started: Instant) -> serde_json::Value {
    let hits: Vec<_> = answer
        .hits
        .iter()
        .enumerate()
        .map(|(rank, hit)| {
            let url = item_url(&hit.key);
            serde_json::json!({
                "rank": rank + 1,
                "key": hit.key,
                "score": hit.score,
                "category": hit.category,
                "url": url,
                "image_url": hit.image.as_deref().map(|_: &Path| format!("{url}/image")),
            })
        })
        .collect();
    let (mode, nprobe) = match answer.mode {
        SearchMode::Exact => ("exact", None),
        SearchMode::Ivf { nprobe } => ("ivf", nprobe),
    };
    serde_json::json!({
        "hits": hits,
        "mode": mode,
        "nprobe": nprobe,
        "exact_fallback": answer.exact_fallback,
        "took_ms": started.elapsed().as_secs_f64() * 1e3,
    })
}

#[cfg(test)]
mod tests {
    use super::item_url;

    #[test]
    fn item_urls_percent_encode_the_key() {
        for (key, url) in [
            ("B00A0I8E7O", "/items/B00A0I8E7O"),
            ("a b/c?d#e", "/items/a%20b%2Fc%3Fd%23e"),
            ("dress_1.jpg", "/items/dress_1.jpg"),
            ("é", "/items/%C3%A9"),
        ] {
            assert_eq!(item_url(key), url, "{key:?}");
        }
    }
}

//! What a request can do wrong, and how each answer looks: a status and `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::retriever::{QueryError, RetrieverError};

/// Why a request was refused or failed. Each variant maps to one HTTP status ([`ApiError::status`]);
/// the message is the body's `error`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `POST /query` with nothing in it.
    #[error("the request body is empty: send a JSON object or a multipart form")]
    EmptyBody,
    /// A JSON body that does not parse as a query.
    #[error("the JSON body is not a query: {reason}")]
    BadJson {
        /// serde's message (line, column, what was expected).
        reason: String,
    },
    /// A body neither JSON nor a multipart form.
    #[error(
        "unsupported content type {content_type:?}: send application/json or multipart/form-data"
    )]
    UnsupportedContentType {
        /// The `Content-Type` sent ("" when none).
        content_type: String,
    },
    /// A multipart form that cannot be read.
    #[error("the multipart form cannot be read: {reason}")]
    Multipart {
        /// The parser's message.
        reason: String,
    },
    /// A form field the API does not know.
    #[error("unknown form field {name:?} (known: text, key, image, k, fusion, alpha, category, exclude_reference)")]
    UnknownField {
        /// The field's name.
        name: String,
    },
    /// A form field whose value does not parse.
    #[error("form field {name:?}: {value:?} is not {expected}")]
    BadField {
        /// The field.
        name: &'static str,
        /// What was sent.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// `k` out of range.
    #[error("k = {k} is out of range: ask for 1 to {max} results")]
    BadK {
        /// The k asked for.
        k: usize,
        /// The largest k served.
        max: usize,
    },
    /// A fusion name the server does not know.
    #[error("unknown fusion {name:?} (known: {known})")]
    BadFusion {
        /// The name sent.
        name: String,
        /// The names served, comma-separated.
        known: String,
    },
    /// `alpha` outside `[0, 1]` or not finite.
    #[error("alpha = {alpha} is out of range: the text's weight is between 0 and 1")]
    BadAlpha {
        /// The value sent.
        alpha: f32,
    },
    /// Both a key and an uploaded image.
    #[error("give a reference key or an uploaded image, not both")]
    TwoReferences,
    /// An upload that is not an image fiq can decode.
    #[error("the upload {name:?} is not an image (JPEG, PNG, WebP, TIFF or BMP)")]
    NotAnImage {
        /// The upload's file name.
        name: String,
    },
    /// A body over the server's limit.
    #[error("the request body is larger than the server's limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A query the retriever refused (no reference and no text, an unknown key or category, an
    /// undecodable image).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// `GET /items/{key}` for a key the index does not hold.
    #[error("no item {key:?} in the index")]
    UnknownItem {
        /// The key asked for.
        key: String,
    },
    /// `GET /items/{key}/image` for an item whose image file is not recorded or not readable.
    #[error("item {key:?} has no readable image{}", path.as_deref().map(|p| format!(" ({p})")).unwrap_or_default())]
    NoImage {
        /// The key.
        key: String,
        /// The recorded path, when there is one.
        path: Option<String>,
    },
    /// A query parameter of `GET /items` that does not parse.
    #[error("bad query string: {reason}")]
    BadParameters {
        /// The parser's message.
        reason: String,
    },
    /// The encoder or the index failed (not the request's fault).
    #[error("the search failed: {reason}")]
    Internal {
        /// The error chain.
        reason: String,
    },
    /// The server is shutting down and answers no more queries.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::UnsupportedContentType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAnImage { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Query(QueryError::Image(_)) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnknownItem { .. } | ApiError::NoImage { .. } => StatusCode::NOT_FOUND,
            ApiError::Query(QueryError::UnknownKey { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Query(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// An internal failure from the library's error.
    pub(crate) fn internal(error: &crate::Error) -> ApiError {
        // A single query's failure, when it comes wrapped, is the request's fault.
        ApiError::Internal {
            reason: crate::error::chain(error),
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(error: crate::Error) -> ApiError {
        match error {
            crate::Error::Retriever(RetrieverError::Query(query)) => ApiError::Query(query),
            other => ApiError::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "error": crate::error::chain(&self),
            "status": status.as_u16(),
        });
        super::json_response(status, &body)
    }
}

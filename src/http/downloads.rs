//! `GET /downloads/{path}?expires=…&signature=…`: files under `storage/exports`, for links
//! signed with `APP_KEY` (see `signed_url`).
//!
//! A path that could leave the folder (`..`, `.`, empty segments, absolute, backslashes,
//! including their percent-encoded forms, which are decoded first) answers 404 before the
//! file system is touched; a missing, tampered or expired signature 403; a file that resolves
//! outside the folder through a symbolic link 404. Files are streamed with their type, length
//! and a `Content-Disposition` naming them.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{AppState, error, not_configured};
use crate::signed_url::is_contained;

#[derive(Debug, Deserialize)]
pub(super) struct Signed {
    pub(super) expires: Option<String>,
    pub(super) signature: Option<String>,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "csv" => "text/csv; charset=utf-8",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

pub(super) async fn download(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    Query(signed): Query<Signed>,
) -> Response {
    let Some(signer) = &state.signer else {
        return not_configured("GET /downloads/{path}", "APP_KEY");
    };
    if !is_contained(&path) {
        return error(StatusCode::NOT_FOUND, "no such file");
    }
    let now = state.rt.clock.now();
    if let Err(refused) = signer.check(
        &path,
        signed.expires.as_deref(),
        signed.signature.as_deref(),
        now,
    ) {
        return error(StatusCode::FORBIDDEN, refused.to_string());
    }
    // Resolve links, then insist the file is still inside the folder.
    let (Ok(root), Ok(file)) = (
        tokio::fs::canonicalize(&state.exports).await,
        tokio::fs::canonicalize(state.exports.join(&path)).await,
    ) else {
        return error(StatusCode::NOT_FOUND, "no such file");
    };
    if !file.starts_with(&root) {
        return error(StatusCode::NOT_FOUND, "no such file");
    }
    let (Ok(handle), Ok(meta)) = (
        tokio::fs::File::open(&file).await,
        tokio::fs::metadata(&file).await,
    ) else {
        return error(StatusCode::NOT_FOUND, "no such file");
    };
    if !meta.is_file() {
        return error(StatusCode::NOT_FOUND, "no such file");
    }
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or("download")
        .replace('"', "");
    let stream = tokio_util::io::ReaderStream::new(handle);
    (
        [
            (header::CONTENT_TYPE, content_type(&path).to_string()),
            (header::CONTENT_LENGTH, meta.len().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

//! `GET` or `POST /unsubscribe/{campaign}/{customer}?expires=…&signature=…`: the signed link
//! every campaign mail carries (the POST is the one-click form mail clients send). A valid
//! link opts the customer out of campaign mail at once; a tampered or expired one answers
//! 403 and changes nothing. Following a link twice is fine.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::downloads::Signed;
use super::{AppState, error, not_configured};
use crate::store::campaigns;

pub(super) async fn unsubscribe(
    State(state): State<Arc<AppState>>,
    Path((campaign, customer)): Path<(i64, i64)>,
    Query(signed): Query<Signed>,
) -> Response {
    let Some(signer) = &state.signer else {
        return not_configured("/unsubscribe/{campaign}/{customer}", "APP_KEY");
    };
    let now = state.rt.clock.now();
    if let Err(refused) = signer.check(
        &format!("unsubscribe/{campaign}/{customer}"),
        signed.expires.as_deref(),
        signed.signature.as_deref(),
        now,
    ) {
        return error(StatusCode::FORBIDDEN, refused.to_string());
    }
    match campaigns::unsubscribe(&state.rt.db, customer, now).await {
        Ok(changed) => {
            tracing::info!(
                campaign,
                customer,
                changed,
                "unsubscribed from campaign mail"
            );
            Html(
                "<!doctype html><title>Unsubscribed</title><p>You will not receive campaign \
                 emails from this business any more.</p>",
            )
            .into_response()
        }
        Err(e) => {
            tracing::warn!(campaign, customer, error = %e, "unsubscribe could not be saved");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the unsubscribe could not be saved right now; please follow the link again later",
            )
        }
    }
}

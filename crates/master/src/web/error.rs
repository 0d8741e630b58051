//! Why a web request was refused, and how each reason maps to an HTTP status.
//!
//! Every refusal answers with Locust's body shape
//! `{"success": false, "message": "..."}` but, unlike Locust, with a status
//! that says what went wrong, so CI scripts can check the status alone.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::MasterError;
use crate::ext::ExtError;
use crate::scale::ScaleError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A form or JSON field is missing or wrong; names the field.
    #[error("{field}: {problem}")]
    BadField {
        field: &'static str,
        problem: String,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Master(#[from] MasterError),
    #[error("scaling failed: {0}")]
    Scale(#[from] ScaleError),
    #[error(
        "scaling is not configured: start the master with --scaler kubernetes or --scaler local"
    )]
    NoScaler,
    #[error("authentication required")]
    Unauthorized,
    /// A cross-site request, refused before it reached the master.
    #[error("{0}")]
    CrossSite(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A `Host` the UI does not answer to (see `hosts`).
    #[error(
        "refused: Host {0:?} is not a name of this server (a guard against DNS rebinding while \
         the UI has no --web-auth); use its IP address or localhost, or allow the name with \
         --web-allowed-hosts (SWARMER_WEB_ALLOWED_HOSTS)"
    )]
    ForeignHost(String),
    /// A script extension gave no result: an unknown id, arguments that
    /// do not fit, a script error or timeout.
    #[error(transparent)]
    Ext(#[from] ExtError),
    /// An uploaded script was refused (size, path, encoding, or it does
    /// not load).
    #[error(transparent)]
    Upload(#[from] crate::upload::UploadError),
    /// The run history's database failed (e.g. the server is down).
    #[error("the run history is unavailable: {0}")]
    History(String),
}

impl ApiError {
    pub fn field(field: &'static str, problem: impl Into<String>) -> Self {
        ApiError::BadField {
            field,
            problem: problem.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadField { .. } | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Master(e) => master_status(e),
            ApiError::Scale(e) => scale_status(e),
            ApiError::NoScaler => StatusCode::CONFLICT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::CrossSite(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::ForeignHost(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::Ext(e) => ext_status(e),
            ApiError::History(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Upload(e) if e.is_too_large() => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Upload(crate::upload::UploadError::Load(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Upload(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Whose fault it was: the caller's (404, 422) or the script's (500).
fn ext_status(e: &ExtError) -> StatusCode {
    match e {
        ExtError::NotFound { .. } => StatusCode::NOT_FOUND,
        ExtError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ExtError::Script(_) | ExtError::Timeout(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ExtError::Gone | ExtError::Busy(_) | ExtError::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn master_status(e: &MasterError) -> StatusCode {
    match e {
        MasterError::Invalid(_) | MasterError::Shape(_) => StatusCode::BAD_REQUEST,
        // The request was fine; the master's situation does not allow it now.
        MasterError::NoWorkers | MasterError::NotRunning | MasterError::RunActive => {
            StatusCode::CONFLICT
        }
        MasterError::Script(_) => StatusCode::UNPROCESSABLE_ENTITY,
        MasterError::Gone => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn scale_status(e: &ScaleError) -> StatusCode {
    match e {
        ScaleError::Forbidden(_) => StatusCode::FORBIDDEN,
        ScaleError::NotFound(_) => StatusCode::NOT_FOUND,
        ScaleError::Conflict(_) => StatusCode::CONFLICT,
        ScaleError::Unreachable(_) => StatusCode::BAD_GATEWAY,
        ScaleError::Invalid(_) => StatusCode::BAD_REQUEST,
        ScaleError::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "success": false, "message": self.to_string() });
        if let ApiError::Ext(ExtError::Invalid { field, .. }) = &self {
            // The UI marks the action's field that was refused.
            body["field"] = json!(field);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // Basic lets a browser prompt; the token works as the password.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"swarmer\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_reason() {
        assert_eq!(ApiError::field("user_count", "x").status(), 400);
        assert_eq!(ApiError::Master(MasterError::NoWorkers).status(), 409);
        let forbidden = ApiError::Scale(ScaleError::Forbidden("rbac".into()));
        assert_eq!(forbidden.status(), 403);
        let unreachable = ApiError::Scale(ScaleError::Unreachable("x".into()));
        assert_eq!(unreachable.status(), 502);
        assert_eq!(ApiError::Unauthorized.into_response().status(), 401);
        let script = ApiError::Ext(ExtError::Script("x.lua:3: boom".into()));
        assert_eq!(script.status(), 500);
        // A full extension queue and a cancelled call are the server's
        // momentary state, not the script's fault: retry later.
        assert_eq!(ApiError::Ext(ExtError::Busy(16)).status(), 503);
        assert_eq!(ApiError::Ext(ExtError::Cancelled).status(), 503);
    }
}

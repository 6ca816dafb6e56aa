//! The operations of the core's table ([`mm_core::operations!`]) as HTTP: for each row, an axum handler (its path
//! parameters, query and body extracted in the API's error shape), its OpenAPI entry, and its route. Each handler
//! is one call of the core's [`Operations`] on this machine, once [`crate::machine_only`] found it is not the
//! machine's own to do.

use crate::error::ApiResult;
use crate::extract::{Body, Path, Query};
use crate::Served;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use mm_core::{ErrorPayload, Operations};
use serde::Serialize;

/// An operation's answer under its status: the first of `ok`, except that a `202 Accepted` whose answer `joined`
/// a job already under way is `200` when the row lists it, and a `204` has no body.
fn reply(ok: &[u16], answer: impl Serialize) -> Response {
    if ok[0] == 204 {
        return StatusCode::NO_CONTENT.into_response();
    }
    if ok[0] != 202 {
        // Written as it is (a list of a thousand models is no tree of values first).
        return (StatusCode::from_u16(ok[0]).expect("the table's statuses are statuses"), Json(answer)).into_response();
    }
    let answer = match serde_json::to_value(answer) {
        Ok(answer) => answer,
        Err(e) => return crate::error::ApiError::new(mm_core::ErrorCode::Internal, e.to_string()).into_response(),
    };
    let joined = answer.get("joined") == Some(&serde_json::Value::Bool(true));
    let status = if ok[0] == 202 && joined && ok.contains(&200) { 200 } else { ok[0] };
    (StatusCode::from_u16(status).expect("the table's statuses are statuses"), Json(answer)).into_response()
}

macro_rules! over_http {
    ([] $(
        $(#[$meta:meta])*
        $name:ident $method:ident $path:literal $tag:literal
        path[$( $(#[$pmeta:meta])* $p:ident: $pt:ty ),*]
        query[$($q:ident: $qt:ty)?]
        body[$($b:ident: $bt:ty)?]
        progress[$($prt:ty, $event:literal)?]
        answer[$answer:ty] ok[$($ok:literal),+] errors[$($err:literal),*];
    )*) => {
        $(
            pub mod $name {
                use super::*;

                /// The path's parameters.
                #[derive(serde::Deserialize, serde::Serialize, utoipa::IntoParams)]
                #[into_params(parameter_in = Path)]
                pub struct Params {
                    $( $(#[$pmeta])* pub $p: $pt, )*
                }

                $(#[$meta])*
                #[utoipa::path($method, path = $path, tag = $tag, params(Params $(, $qt)?), $(request_body = $bt,)?
                    responses($((status = $ok, body = $answer),)+ $((status = $err, body = ErrorPayload)),*))]
                pub async fn $name(
                    State(s): State<Served>,
                    Path(params): Path<Params>,
                    $(Query($q): Query<$qt>,)?
                    $(Body($b): Body<$bt>,)?
                ) -> ApiResult<Response> {
                    let body: Option<serde_json::Value> = None $(.or(serde_json::to_value(&$b).ok()))?;
                    let path = serde_json::to_value(&params).unwrap_or_default();
                    crate::machine_only::check(&s.manager, stringify!($name), &path, body).await?;
                    let Params { $($p),* } = params;
                    let answer = Operations::$name(
                        &s.manager, $($p,)* $($q,)? $($b,)? $(|_: $prt| {},)?
                    ).await?;
                    Ok(reply(&[$($ok),+], answer))
                }
            }
        )*

        /// Every operation's route.
        pub fn routes(router: Router<Served>) -> Router<Served> {
            router $(.route($path, axum::routing::$method($name::$name)))*
        }

        /// Every operation's OpenAPI entry.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($name::$name),*))]
        pub struct Documented;
    };
}

mm_core::operations!(over_http);

//! The HTTPS admission server: `POST /validate/<kind>` takes an `AdmissionReview` v1 and
//! answers one, `GET /healthz` answers 200.
//!
//! A body that is not an `AdmissionReview`, or one without `request`, is answered 400 and
//! logged; a body over [`MAX_BODY_BYTES`] is answered 413. Everything else is answered 200
//! with the decision inside the review, as the API server expects.

mod admission;
mod endpoint;
mod tls;

use std::fmt;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::{HttpResponse, HttpServer, web};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};

use crate::{Cluster, Options};

pub use endpoint::Endpoint;
pub use tls::{Error, PROTOCOL_VERSIONS, ServingCert, tls_config};

/// Largest request body accepted; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Worker threads of [`serve`]: admission traffic is light.
pub const WORKERS: usize = 2;

/// What every request handler shares: the other objects of the cluster and the review options.
#[derive(Clone)]
pub struct State {
    /// The objects already stored (the router's watcher stores in Kubernetes mode).
    pub cluster: Arc<dyn Cluster + Send + Sync>,
    /// How strict reviews are.
    pub options: Options,
}

impl State {
    /// Reviews against `cluster` with `options`.
    pub fn new(cluster: Arc<dyn Cluster + Send + Sync>, options: Options) -> Self {
        Self { cluster, options }
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Registers `/healthz` and the `/validate/...` endpoints of every [`Endpoint`] on an app.
pub fn configure(cfg: &mut web::ServiceConfig, state: State) {
    cfg.app_data(web::Data::new(state))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .route("/healthz", web::get().to(healthz));
    for endpoint in Endpoint::ALL {
        cfg.route(
            endpoint.path(),
            web::post().to(move |state, body| validate(endpoint, state, body)),
        );
    }
}

/// Starts the HTTPS server on an already bound `listener` (bind first, then start: the port
/// is known and taken before anything runs). Call inside an actix system; await or spawn the
/// returned server, and stop it through its handle.
pub fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    state: State,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        let state = state.clone();
        actix_web::App::new().configure(move |cfg| configure(cfg, state))
    })
    .workers(WORKERS)
    .listen_rustls_0_23(listener, tls)?
    .run();
    Ok(server)
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

async fn validate(
    endpoint: Endpoint,
    state: web::Data<State>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let path = endpoint.path();
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(path, error = %e, "admission request body refused");
            return e.error_response();
        }
    };
    match answer(endpoint, &body, state.cluster.as_ref(), state.options) {
        Ok(review) => HttpResponse::Ok().json(review),
        Err(refused) => {
            tracing::warn!(path, error = %refused, "admission request refused");
            HttpResponse::BadRequest().body(refused)
        }
    }
}

/// The answer to the AdmissionReview `body` sent to `endpoint`, or why the body is refused
/// (400): not an AdmissionReview, or one without `request`.
pub fn answer(
    endpoint: Endpoint,
    body: &[u8],
    cluster: &dyn Cluster,
    options: Options,
) -> Result<AdmissionReview<DynamicObject>, String> {
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_slice(body).map_err(|e| format!("malformed AdmissionReview: {e}"))?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| "AdmissionReview has no request".to_owned())?;
    Ok(admission::decide(endpoint, &request, cluster, options).into_review())
}

//! The debug server (`--debug-port`, bound to localhost only): the configuration in force.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::handlers::RouterContext;

/// Registers `/debug/config_dump/{modelroutes,modelservers,pods}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/debug/config_dump/modelroutes", web::get().to(modelroutes))
        .route(
            "/debug/config_dump/modelservers",
            web::get().to(modelservers),
        )
        .route("/debug/config_dump/pods", web::get().to(pods));
}

async fn modelroutes(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let table = ctx.shared.routes.load();
    let skipped: Vec<_> = table
        .skipped()
        .iter()
        .map(|s| json!({"route": s.route.to_string(), "reason": s.reason.to_string()}))
        .collect();
    HttpResponse::Ok().json(json!({"modelroutes": dump.modelroutes, "skipped": skipped}))
}

async fn modelservers(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    HttpResponse::Ok().json(json!({"modelservers": dump.modelservers}))
}

/// Pods, and for each ModelServer the endpoints in use with their in-flight counts.
async fn pods(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let pools = ctx.shared.pools.load();
    let mut endpoints: Vec<_> = pools
        .values()
        .map(|cell| {
            let snap = cell.load();
            json!({
                "pool": snap.upstream.key.to_string(),
                "endpoints": snap.endpoints.iter().map(|e| json!({
                    "pod": e.pod.to_string(),
                    "address": e.addr.to_string(),
                    "inFlight": e.in_flight(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    endpoints.sort_by(|a, b| a["pool"].as_str().cmp(&b["pool"].as_str()));
    HttpResponse::Ok().json(json!({"pods": dump.pods, "endpoints": endpoints}))
}

//! The debug server (`--debug-port`, bound to localhost only): the configuration in force.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::handlers::RouterContext;

/// Registers `/debug/config_dump/{modelroutes,modelservers,pods,gateways,httproutes,
/// inferencepools,inferencemodels}` (Kthena's paths, plus InferenceModels).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/debug/config_dump/gateways", web::get().to(gateways))
        .route("/debug/config_dump/httproutes", web::get().to(httproutes))
        .route(
            "/debug/config_dump/inferencepools",
            web::get().to(inferencepools),
        )
        .route(
            "/debug/config_dump/inferencemodels",
            web::get().to(inferencemodels),
        );
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

async fn gateways(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let ports = ctx.shared.ports.load();
    let mut served: Vec<u16> = ports.keys().copied().collect();
    served.sort_unstable();
    HttpResponse::Ok().json(json!({"gateways": dump.gateways, "servedPorts": served}))
}

async fn httproutes(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let tables = ctx.shared.http_routes.load();
    let mut attached: Vec<_> = tables
        .iter()
        .map(|(l, t)| {
            json!({
                "listener": format!("{}/{}:{}", l.gateway, l.section_name, l.port),
                "httproutes": t.routes().iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
                "noMatchingHostname": t.skipped().iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    attached.sort_by(|a, b| a["listener"].as_str().cmp(&b["listener"].as_str()));
    HttpResponse::Ok().json(json!({"httproutes": dump.httproutes, "attached": attached}))
}

async fn inferencepools(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    HttpResponse::Ok().json(json!({"inferencepools": dump.inferencepools}))
}

async fn inferencemodels(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    HttpResponse::Ok().json(json!({"inferencemodels": dump.inferencemodels}))
}

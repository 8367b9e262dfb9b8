//! The debug server (`--debug-port`, bound to localhost only): the configuration in force.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::handlers::RouterContext;

/// Registers `/debug/config_dump/{modelroutes,modelservers,pods,gateways,httproutes,
/// inferencepools,inferencemodels}` (Kthena's paths, plus InferenceModels) and `/debug/status`
/// (the status conditions the router computes for each object).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/debug/status", web::get().to(status))
        .route("/debug/config_dump/gateways", web::get().to(gateways))
        .route("/debug/config_dump/httproutes", web::get().to(httproutes))
        .route(
            "/debug/config_dump/inferencepools",
            web::get().to(inferencepools),
        )
        .route(
            "/debug/config_dump/inferencemodels",
            web::get().to(inferencemodels),
        )
        .route(
            "/debug/config_dump/inferenceobjectives",
            web::get().to(inferenceobjectives),
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

/// InferenceObjectives as read, and the priority each keeps for the scheduler.
async fn inferenceobjectives(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let kept: Vec<_> = ctx
        .shared
        .objectives
        .load()
        .iter()
        .map(|o| json!({"name": o.id.to_string(), "pool": o.pool.1.to_string(), "priority": o.priority}))
        .collect();
    HttpResponse::Ok()
        .json(json!({"inferenceobjectives": dump.inferenceobjectives, "priorities": kept}))
}

async fn inferencemodels(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    HttpResponse::Ok().json(json!({"inferencemodels": dump.inferencemodels}))
}

/// Status of every object, computed by [`crate::status::report`] from the configuration in
/// force, grouped by kind: `{"gateways": [{"namespace", "name", "generation", "status"}], ...}`.
async fn status(ctx: web::Data<RouterContext>) -> HttpResponse {
    use crate::state::ObjectKind;
    let inputs = ctx.shared.status_inputs.load();
    let pools = ctx.shared.pools.load();
    let tables = ctx.shared.http_routes.load();
    let report = crate::status::report(crate::status::Sources {
        inputs: &inputs,
        pools: &pools,
        tables: &tables,
        controller_name: &inputs.controller_name,
    });
    let mut grouped = serde_json::Map::new();
    for kind in ObjectKind::ALL.iter().filter(|k| k.writes_status()) {
        grouped.insert(kind.plural().to_owned(), json!([]));
    }
    for o in report {
        if !o.kind.writes_status() {
            continue;
        }
        let key = o.kind.plural();
        let mut entry = json!({
            "namespace": o.namespace,
            "name": o.name,
            "status": o.status,
        });
        if let Some(g) = o.generation {
            entry["generation"] = json!(g);
        }
        if o.kind == ObjectKind::InferencePoolV1alpha2 {
            entry["group"] = json!(o.kind.group());
        }
        if let Some(list) = grouped.get_mut(key).and_then(|v| v.as_array_mut()) {
            list.push(entry);
        }
    }
    HttpResponse::Ok().json(grouped)
}

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

fn conditions(cs: &[kthena_core::status::Condition]) -> serde_json::Value {
    cs.iter()
        .map(|c| {
            json!({
                "type": c.kind,
                "status": if c.status { "True" } else { "False" },
                "reason": c.reason,
                "message": c.message,
            })
        })
        .collect()
}

fn parents(ps: &[kthena_core::status::ParentStatus]) -> serde_json::Value {
    ps.iter()
        .map(|p| {
            json!({
                "parentRef": {
                    "namespace": p.parent.gateway.namespace,
                    "name": p.parent.gateway.name,
                    "sectionName": p.parent.section_name,
                    "port": p.parent.port,
                },
                "conditions": conditions(&p.conditions),
            })
        })
        .collect()
}

/// Status of every ModelRoute, ModelServer, HTTPRoute and InferencePool, computed by
/// `kthena_core::status` from the configuration in force.
async fn status(ctx: web::Data<RouterContext>) -> HttpResponse {
    use crate::pool::PoolKey;
    use kthena_core::status;
    let inputs = ctx.shared.status_inputs.load();
    let pools = ctx.shared.pools.load();
    let listeners: Vec<kthena_core::ListenerRef> = inputs
        .gateways
        .iter()
        .flat_map(|g| {
            g.listeners.iter().map(|l| kthena_core::ListenerRef {
                gateway: g.id.clone(),
                section_name: l.name.clone(),
                port: l.port,
            })
        })
        .collect();
    let backend_exists = |b: &kthena_core::Backend| match b {
        kthena_core::Backend::ModelServer(id) => {
            pools.contains_key(&PoolKey::ModelServer(id.clone()))
        }
        kthena_core::Backend::ExternalProvider(_) => false,
    };
    let modelroutes: Vec<_> = inputs
        .routes
        .iter()
        .map(|r| {
            let s = status::model_route(r, inputs.gateway_mode, &listeners, backend_exists);
            json!({"name": r.id.to_string(), "conditions": conditions(&s.conditions), "parents": parents(&s.parents)})
        })
        .collect();
    let mut upstreams: Vec<_> = pools
        .iter()
        .map(|(key, cell)| {
            let snap = cell.load();
            let kind = match key {
                PoolKey::ModelServer(_) => "ModelServer",
                PoolKey::InferencePool(..) => "InferencePool",
            };
            json!({
                "kind": kind,
                "name": key.id().to_string(),
                "readyEndpoints": snap.endpoints.len(),
                "conditions": conditions(&status::ready(snap.endpoints.len())),
            })
        })
        .collect();
    upstreams.sort_by(|a, b| {
        (a["kind"].as_str(), a["name"].as_str()).cmp(&(b["kind"].as_str(), b["name"].as_str()))
    });
    let pool_exists = |t: &kthena_core::http_route::BackendTarget| match t {
        kthena_core::http_route::BackendTarget::InferencePool { api, pool } => {
            pools.contains_key(&PoolKey::InferencePool(*api, pool.clone()))
        }
        _ => false,
    };
    let httproutes: Vec<_> = inputs
        .http_routes
        .iter()
        .map(|r| {
            let ps = status::http_route_parents(r, &inputs.gateways, pool_exists);
            json!({"name": r.route.id.to_string(), "parents": parents(&ps)})
        })
        .collect();
    let tables = ctx.shared.http_routes.load();
    let attached = |l: &kthena_core::ListenerRef| {
        let http = tables
            .get(l)
            .map_or(0, |t| t.routes().len() - t.skipped().len());
        let model = inputs
            .routes
            .iter()
            .filter(|r| {
                if r.parents.is_empty() {
                    r.id.namespace == l.gateway.namespace
                } else {
                    r.parents.iter().any(|p| p.selects(l))
                }
            })
            .count();
        http + model
    };
    let gateways: Vec<_> = inputs
        .gateways
        .iter()
        .map(|g| {
            let certificate = |l: &kthena_core::ListenerRef| {
                inputs.bad_certificates.iter().find(|(r, ..)| r == l).map(|(_, why, e)| (*why, e.clone()))
            };
            let s = status::gateway(g, attached, |port| !inputs.unbound_ports.contains(&port), certificate);
            let listeners: Vec<_> = s
                .listeners
                .iter()
                .map(|l| {
                    json!({
                        "name": l.name,
                        "supportedKinds": l.supported_kinds.iter().map(|(g, k)| json!({"group": g, "kind": k})).collect::<Vec<_>>(),
                        "attachedRoutes": l.attached_routes,
                        "conditions": conditions(&l.conditions),
                    })
                })
                .collect();
            json!({"name": g.id.to_string(), "conditions": conditions(&s.conditions), "listeners": listeners})
        })
        .collect();
    let inferencepools: Vec<_> = inputs
        .pools
        .iter()
        .map(|p| {
            let parents: Vec<_> = status::inference_pool_parents(p, &inputs.http_routes)
                .iter()
                .map(|(g, cs)| {
                    json!({
                        "parentRef": {"namespace": g.namespace, "name": g.name},
                        "conditions": conditions(cs),
                    })
                })
                .collect();
            json!({"name": p.id.to_string(), "group": p.api.group(), "parents": parents})
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "inferencepools": inferencepools,
        "gateways": gateways,
        "modelroutes": modelroutes,
        "upstreams": upstreams,
        "httproutes": httproutes,
    }))
}

//! The debug server (`--debug-port`, bound to localhost only): the configuration in force.

use actix_web::{HttpResponse, web};
use serde_json::json;

use kthena_core::scheduler::EngineState;

use crate::handlers::RouterContext;
use crate::pool::now_ms;

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
        .route("/debug/config_dump/pods", web::get().to(pods))
        .route(
            "/debug/config_dump/externalmodelproviders",
            web::get().to(externalmodelproviders),
        )
        .route(
            "/debug/config_dump/namespaces/{namespace}/pods/{pod}",
            web::get().to(pod),
        )
        .route("/debug/explain", web::post().to(explain));
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

/// ExternalModelProviders as read, and whether each credential resolves (the state names the
/// Secret and key, never the value).
async fn externalmodelproviders(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let providers = ctx.shared.providers.load();
    let mut states: Vec<_> = providers
        .values()
        .map(
            |p| json!({"provider": p.spec.id.to_string(), "credentials": format!("{:?}", p.state)}),
        )
        .collect();
    states.sort_by(|a, b| a["provider"].as_str().cmp(&b["provider"].as_str()));
    HttpResponse::Ok()
        .json(json!({"externalmodelproviders": dump.externalmodelproviders, "credentials": states}))
}

async fn modelservers(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    HttpResponse::Ok().json(json!({"modelservers": dump.modelservers}))
}

/// One endpoint as the debug endpoints show it: router counters, outlier state, the
/// engine's scraped state and the prompt blocks the prefix cache remembers for it.
fn endpoint_json(
    e: &crate::pool::Endpoint,
    engine: &EngineState,
    prefix: Option<&kthena_core::scheduler::PrefixIndex>,
    now: u64,
) -> serde_json::Value {
    json!({
        "pod": e.pod.to_string(),
        "address": e.addr.to_string(),
        "inFlight": e.in_flight(),
        "ejected": e.health.ejected(now),
        "ejectedForMs": e.health.ejected_for(now),
        "ejections": e.health.ejections(),
        "consecutiveFailures": e.health.failures(),
        "engine": engine_json(engine),
        "cachedPrefixBlocks": prefix.map_or(0, |p| p.entries_of(e.key)),
    })
}

fn engine_json(s: &EngineState) -> serde_json::Value {
    json!({
        "running": s.running,
        "peakRunning": s.peak_running,
        "queuedSeen": s.queued_seen,
        "waiting": s.waiting,
        "kvCacheUsage": s.kv_cache_usage,
        "inFlightAtReading": s.in_flight_at_reading,
        "ttftSeconds": s.ttft,
        "tpotSeconds": s.tpot,
        "models": s.models.as_ref().map(|m| m.iter().collect::<Vec<_>>()),
    })
}

/// Pods, and for each pool the endpoints in use with their counters and engine state.
async fn pods(ctx: web::Data<RouterContext>) -> HttpResponse {
    let dump = ctx.shared.dump.load();
    let pools = ctx.shared.pools.load();
    let scheduler = ctx.shared.scheduler.load();
    let prefix = scheduler.carried.prefix.as_deref();
    let now = now_ms();
    let mut endpoints: Vec<_> = pools
        .values()
        .map(|cell| {
            let snap = cell.load();
            let mut list: Vec<_> = snap
                .endpoints
                .iter()
                .zip(&snap.engine)
                .map(|(e, s)| endpoint_json(e, s, prefix, now))
                .collect();
            list.sort_by(|a, b| a["pod"].as_str().cmp(&b["pod"].as_str()));
            json!({"pool": snap.upstream.key.to_string(), "endpoints": list})
        })
        .collect();
    endpoints.sort_by(|a, b| a["pool"].as_str().cmp(&b["pool"].as_str()));
    HttpResponse::Ok().json(json!({"pods": dump.pods, "endpoints": endpoints}))
}

/// Kthena's `/debug/config_dump/namespaces/{ns}/pods/{pod}`: one Pod's engine metrics
/// (Kthena's field names) and models, from the first pool that has it.
async fn pod(ctx: web::Data<RouterContext>, path: web::Path<(String, String)>) -> HttpResponse {
    let (namespace, name) = path.into_inner();
    let pools = ctx.shared.pools.load();
    let mut found = None;
    for cell in pools.values() {
        let snap = cell.load();
        if let Some((e, s)) = snap
            .endpoints
            .iter()
            .zip(&snap.engine)
            .find(|(e, _)| e.pod.namespace == namespace && e.pod.name == name)
        {
            found = Some(json!({
                "name": name,
                "namespace": namespace,
                "pool": snap.upstream.key.to_string(),
                "metrics": {
                    "requestRunningNum": s.running.unwrap_or(0.0),
                    "requestWaitingNum": s.waiting.unwrap_or(0.0),
                    "gpuCacheUsage": s.kv_cache_usage.unwrap_or(0.0),
                    "TTFT": s.ttft.unwrap_or(0.0),
                    "TPOT": s.tpot.unwrap_or(0.0),
                },
                "models": s.models.as_ref().map(|m| m.iter().collect::<Vec<_>>()).unwrap_or_default(),
                "endpoint": endpoint_json(e, s, ctx.shared.scheduler.load().carried.prefix.as_deref(), now_ms()),
            }));
            break;
        }
    }
    match found {
        Some(v) => HttpResponse::Ok().json(v),
        None => HttpResponse::NotFound()
            .json(json!({"error": format!("pod {namespace}/{name} serves no pool")})),
    }
}

#[derive(serde::Deserialize)]
struct ExplainQuery {
    /// The path the request would be sent to.
    #[serde(default = "default_explain_path")]
    path: String,
    /// Gateway mode: the listener port it would arrive on (default: `--port`'s listeners).
    port: Option<u16>,
}

fn default_explain_path() -> String {
    "/v1/chat/completions".into()
}

/// `POST /debug/explain?path=..&port=..`: the body and headers of a request; answers which
/// route, rule, ModelServer and Pod would serve it and why — every filter's verdict and every
/// score per Pod — through the same selection and scheduler as the request path, sending
/// nothing upstream.
async fn explain(
    req: actix_web::HttpRequest,
    body: web::Bytes,
    query: web::Query<ExplainQuery>,
    ctx: web::Data<RouterContext>,
) -> HttpResponse {
    let bad = |msg: String| HttpResponse::BadRequest().json(json!({"error": msg}));
    let view = match crate::body::BodyView::parse(&body) {
        Ok(v) => v,
        Err(e) => return bad(e.to_string()),
    };
    let table = ctx.shared.routes.load();
    let ports = ctx.shared.ports.load();
    let host = req.headers().get("host").and_then(|h| h.to_str().ok());
    let via = if table.gateway_mode() {
        let Some(port) = query.port.or_else(|| ports.keys().min().copied()) else {
            return bad("no Gateway listener is served".into());
        };
        match ports.get(&port).and_then(|l| l.select(host)) {
            Some(l) => Some(l),
            None => return bad(format!("no listener of port {port} accepts host {host:?}")),
        }
    } else {
        None
    };
    let request = kthena_core::Request::new(view.model.clone()).path(query.path.clone());
    let request = req.headers().iter().fold(request, |r, (k, v)| {
        r.header(k.as_str(), v.to_str().unwrap_or_default())
    });
    let selection = match table.select(&request, via) {
        Ok(s) => s,
        Err(e) => {
            return HttpResponse::NotFound()
                .json(json!({"model": view.model, "error": e.to_string()}));
        }
    };
    let server = match &selection.target.backend {
        kthena_core::Backend::ModelServer(id) => id.clone(),
        kthena_core::Backend::ExternalProvider(id) => {
            let providers = ctx.shared.providers.load();
            let provider = providers.get(id);
            return HttpResponse::Ok().json(json!({
                "model": view.model,
                "route": selection.route.id.to_string(),
                "rule": selection.rule_index,
                "externalModelProvider": id.to_string(),
                "found": provider.is_some(),
                "ready": provider.is_some_and(|p| p.state.usable()),
                "upstreamModel": provider
                    .and_then(|p| p.spec.model.clone())
                    .unwrap_or_else(|| view.model.clone()),
            }));
        }
    };
    let key = crate::pool::PoolKey::ModelServer(server.clone());
    let Some(cell) = ctx.shared.pools.load().get(&key).cloned() else {
        return HttpResponse::NotFound()
            .json(json!({"error": format!("can't find model server: {server}")}));
    };
    let snap = cell.load_full();
    let target = if selection.lora {
        view.model.clone()
    } else {
        snap.upstream
            .model
            .clone()
            .unwrap_or_else(|| view.model.clone())
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut sctx =
        kthena_core::scheduler::RequestContext::new(&view.model, &target, view.prompt(&body));
    sctx.lora = selection.lora;
    sctx.headers = &headers;
    let scheduler = ctx.shared.scheduler.load();
    let now = now_ms();
    let candidates = snap.candidates(now);
    let explained = scheduler.scheduler.explain(&sctx, &candidates);
    let prefix = scheduler.carried.prefix.as_deref();
    let pods: Vec<_> = explained
        .verdicts
        .iter()
        .map(|v| {
            let e = &snap.endpoints[v.index];
            let mut j = endpoint_json(e, &snap.engine[v.index], prefix, now);
            j["dropped"] = match &v.dropped {
                Some((by, why)) => json!({"by": by, "reason": why}),
                None => serde_json::Value::Null,
            };
            j["scores"] = v
                .scores
                .iter()
                .map(|(name, score, weight)| {
                    (
                        (*name).to_owned(),
                        json!({"score": score, "weight": weight}),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into();
            j["total"] = json!(v.total);
            j
        })
        .collect();
    let mut out = json!({
        "model": view.model,
        "route": selection.route.id.to_string(),
        "rule": selection.rule_index,
        "lora": selection.lora,
        "modelServer": server.to_string(),
        "targetModel": target,
        "scheduler": {
            "source": scheduler.source,
            "filters": scheduler.scheduler.filter_names().collect::<Vec<_>>(),
            "scores": scheduler.scheduler.score_names().map(|(n, w)| json!({"name": n, "weight": w})).collect::<Vec<_>>(),
        },
        "pods": pods,
    });
    match explained.outcome {
        Ok(d) => {
            out["ranked"] = d
                .ranked
                .iter()
                .map(|&i| json!(snap.endpoints[i].pod.to_string()))
                .collect();
        }
        Err(e) => out["error"] = json!(e.to_string()),
    }
    HttpResponse::Ok().json(out)
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
        priority_queueing: ctx.fairness.is_some(),
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

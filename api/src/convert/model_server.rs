//! ModelServer -> [`kthena_core::ModelServer`], and the Go-style durations its fields use.

use std::time::Duration;

use kthena_core::{self as core, FieldErrors, validate};

use super::object_ref;

use crate::modelserver::{self, ModelServer};

/// Converts a ModelServer: durations parsed, defaults applied, every rule of
/// [`validate::model_server`] checked.
pub fn model_server(ms: &ModelServer) -> Result<core::ModelServer, FieldErrors> {
    let mut errs = FieldErrors::new();
    let spec = &ms.spec;
    let port = match u16::try_from(spec.workload_port.port) {
        Ok(p) if p > 0 => p,
        _ => {
            errs.push(
                "spec.workloadPort.port",
                format!(
                    "must be between 1 and 65535, got {}",
                    spec.workload_port.port
                ),
            );
            0
        }
    };
    let policy = spec.traffic_policy.clone().unwrap_or_default();
    let timeout = policy
        .timeout
        .as_deref()
        .and_then(|t| duration(&mut errs, "spec.trafficPolicy.timeout", t))
        .unwrap_or(core::model_server::DEFAULT_TIMEOUT);
    let retry = match &policy.retry {
        None => core::RetryPolicy::default(),
        Some(r) => core::RetryPolicy {
            attempts: u32::try_from(r.attempts).unwrap_or_else(|_| {
                errs.push(
                    "spec.trafficPolicy.retry.attempts",
                    format!("must not be negative, got {}", r.attempts),
                );
                0
            }),
            interval: duration(
                &mut errs,
                "spec.trafficPolicy.retry.retryInterval",
                &r.retry_interval,
            )
            .unwrap_or(core::model_server::DEFAULT_RETRY_INTERVAL),
        },
    };
    let session_sticky = policy.session_sticky.as_ref().map(|s| {
        let path = "spec.trafficPolicy.sessionSticky";
        let affinity = match s.session_affinity_seconds {
            None => core::model_server::DEFAULT_SESSION_AFFINITY,
            Some(n) => match u64::try_from(n) {
                Ok(n) if n > 0 => Duration::from_secs(n),
                _ => {
                    errs.push(
                        format!("{path}.sessionAffinitySeconds"),
                        format!("must be at least 1, got {n}"),
                    );
                    core::model_server::DEFAULT_SESSION_AFFINITY
                }
            },
        };
        if s.sources.is_empty() {
            errs.push(format!("{path}.sources"), "must name at least one source");
        }
        if s.sources.len() > core::model_server::MAX_SESSION_SOURCES {
            errs.push(
                format!("{path}.sources"),
                format!(
                    "at most {} sources, got {}",
                    core::model_server::MAX_SESSION_SOURCES,
                    s.sources.len()
                ),
            );
        }
        let sources = s
            .sources
            .iter()
            .enumerate()
            .map(|(i, src)| {
                if src.name.is_empty() {
                    errs.push(format!("{path}.sources[{i}].name"), "must not be empty");
                }
                let name = src.name.clone();
                match src.type_ {
                    modelserver::SessionSourceType::Header => core::SessionSource::Header(name),
                    modelserver::SessionSourceType::Query => core::SessionSource::Query(name),
                    modelserver::SessionSourceType::Cookie => core::SessionSource::Cookie(name),
                    modelserver::SessionSourceType::JwtClaim => core::SessionSource::JwtClaim(name),
                }
            })
            .collect();
        core::SessionSticky { affinity, sources }
    });
    let server = core::ModelServer {
        id: object_ref(ms),
        model: spec.model.clone().filter(|m| !m.is_empty()),
        engine: match spec.inference_engine {
            modelserver::InferenceEngine::Vllm => core::Engine::Vllm,
            modelserver::InferenceEngine::Sglang => core::Engine::Sglang,
        },
        match_labels: spec.workload_selector.match_labels.clone(),
        pd_group: spec
            .workload_selector
            .pd_group
            .as_ref()
            .map(|g| core::PdGroup {
                group_key: g.group_key.clone(),
                prefill_labels: g.prefill_labels.clone(),
                decode_labels: g.decode_labels.clone(),
            }),
        port,
        protocol: match spec.workload_port.protocol {
            modelserver::WorkloadProtocol::Http => core::Protocol::Http,
            modelserver::WorkloadProtocol::Https => core::Protocol::Https,
        },
        timeout,
        retry,
        kv_connector: spec.kv_connector.as_ref().map(|k| match k.type_ {
            modelserver::KvConnectorType::Http => core::KvConnector::Http,
            modelserver::KvConnectorType::Lmcache => core::KvConnector::Lmcache,
            modelserver::KvConnectorType::Nixl => core::KvConnector::Nixl,
            modelserver::KvConnectorType::Mooncake => core::KvConnector::Mooncake,
        }),
        session_sticky,
    };
    errs.extend(validate::model_server(&server));
    errs.into_result(server)
}

/// Parses a Go duration (`1m30s`, `100ms`) that must not be negative, as Kubernetes'
/// `metav1.Duration` fields and the router's duration flags are written.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match text.parse::<kube::core::Duration>() {
        Ok(d) if d.is_negative() => Err(format!("must not be negative, got {text:?}")),
        Ok(d) => Ok(d.into()),
        Err(e) => Err(format!("invalid duration {text:?}: {e}")),
    }
}

fn duration(errs: &mut FieldErrors, path: &str, text: &str) -> Option<Duration> {
    parse_duration(text).map_err(|e| errs.push(path, e)).ok()
}

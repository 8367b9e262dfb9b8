//! Service -> [`kthena_core::Service`] (HTTPRoute backends).

use kthena_core::{self as core, FieldErrors};

use super::object_ref;

/// Converts a core Service: its selector and TCP ports (`targetPort` defaults to `port`).
pub fn service(s: &k8s_openapi::api::core::v1::Service) -> Result<core::Service, FieldErrors> {
    use core::service::{ServicePort, TargetPort};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let mut errs = FieldErrors::new();
    let spec = s.spec.clone().unwrap_or_default();
    let mut ports = Vec::new();
    for (i, p) in spec.ports.iter().flatten().enumerate() {
        if p.protocol.as_deref().is_some_and(|proto| proto != "TCP") {
            continue;
        }
        let path = format!("spec.ports[{i}]");
        let Ok(port) = u16::try_from(p.port)
            .map_err(|_| ())
            .and_then(|n| if n == 0 { Err(()) } else { Ok(n) })
        else {
            errs.push(
                format!("{path}.port"),
                format!("must be between 1 and 65535, got {}", p.port),
            );
            continue;
        };
        let target = match &p.target_port {
            None => TargetPort::Number(port),
            Some(IntOrString::Int(n)) => match u16::try_from(*n) {
                Ok(0) => TargetPort::Number(port),
                Ok(t) => TargetPort::Number(t),
                Err(_) => {
                    errs.push(
                        format!("{path}.targetPort"),
                        format!("must be between 1 and 65535, got {n}"),
                    );
                    continue;
                }
            },
            Some(IntOrString::String(name)) => match name.parse::<u16>() {
                Ok(t) if t > 0 => TargetPort::Number(t),
                _ => TargetPort::Name(name.clone()),
            },
        };
        ports.push(ServicePort {
            port,
            target,
            protocol: core::Protocol::from_app_protocol(p.app_protocol.as_deref()),
            app_protocol: p.app_protocol.clone(),
        });
    }
    errs.into_result(core::Service {
        id: object_ref(s),
        selector: spec.selector.filter(|sel| !sel.is_empty()),
        ports,
    })
}

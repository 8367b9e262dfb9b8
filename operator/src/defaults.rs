//! Kthena's defaults: with the Gateway API on, the GatewayClass `kthena-router` (our
//! controllerName) and the Gateway `<namespace>/default` (listener `default`, HTTP on
//! `--port`, routes from every namespace) are created when missing. Existing ones are never
//! touched, whatever a user changed in them.

use gateway_api::apis::standard::gatewayclasses::{GatewayClass, GatewayClassSpec};
use gateway_api::apis::standard::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutes,
    GatewayListenersAllowedRoutesNamespaces, GatewayListenersAllowedRoutesNamespacesFrom,
    GatewaySpec,
};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

/// Name of the default GatewayClass and of the default Gateway's class.
pub const CLASS_NAME: &str = "kthena-router";
/// Name of the default Gateway.
pub const GATEWAY_NAME: &str = "default";

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ensured {
    /// The GatewayClass was created.
    pub created_class: bool,
    /// The Gateway was created.
    pub created_gateway: bool,
}

/// The default GatewayClass.
pub fn default_class(controller_name: &str) -> GatewayClass {
    GatewayClass {
        metadata: ObjectMeta {
            name: Some(CLASS_NAME.to_owned()),
            ..ObjectMeta::default()
        },
        spec: GatewayClassSpec {
            controller_name: controller_name.to_owned(),
            ..GatewayClassSpec::default()
        },
        status: None,
    }
}

/// The default Gateway in `namespace`, serving HTTP on `port`.
pub fn default_gateway(namespace: &str, port: u16) -> Gateway {
    Gateway {
        metadata: ObjectMeta {
            name: Some(GATEWAY_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: GatewaySpec {
            gateway_class_name: CLASS_NAME.to_owned(),
            listeners: vec![GatewayListeners {
                name: "default".to_owned(),
                port: i32::from(port),
                protocol: "HTTP".to_owned(),
                allowed_routes: Some(GatewayListenersAllowedRoutes {
                    namespaces: Some(GatewayListenersAllowedRoutesNamespaces {
                        from: Some(GatewayListenersAllowedRoutesNamespacesFrom::All),
                        selector: None,
                    }),
                    kinds: None,
                }),
                ..GatewayListeners::default()
            }],
            ..GatewaySpec::default()
        },
        status: None,
    }
}

/// Creates the default GatewayClass and Gateway when they do not exist. An object that exists
/// (or is created concurrently by another replica) is left as it is.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    port: u16,
    controller_name: &str,
) -> Result<Ensured, kube::Error> {
    let mut done = Ensured::default();
    let classes: Api<GatewayClass> = Api::all(client.clone());
    if classes.get_opt(CLASS_NAME).await?.is_none() {
        done.created_class = create(&classes, &default_class(controller_name)).await?;
    }
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), namespace);
    if gateways.get_opt(GATEWAY_NAME).await?.is_none() {
        done.created_gateway = create(&gateways, &default_gateway(namespace, port)).await?;
    }
    Ok(done)
}

/// Creates `object`; false when it already exists.
async fn create<K>(api: &Api<K>, object: &K) -> Result<bool, kube::Error>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

//! Where configurations come from. A source turns objects into one [`Config`] (through the
//! shared api -> core conversion) and hands it to the Index actor whole.
//!
//! - [`manifests`]: a folder of YAML files, watched (standalone mode).

pub mod manifests;

use kthena_core::{ModelServer, Route};

use crate::pool::PodInfo;
use crate::state::ConfigDump;

/// A complete, valid configuration.
#[derive(Debug, Default)]
pub struct Config {
    /// Converted ModelRoutes.
    pub routes: Vec<Route>,
    /// Converted ModelServers.
    pub servers: Vec<ModelServer>,
    /// Every Pod.
    pub pods: Vec<PodInfo>,
    /// The objects as read, for the debug endpoints.
    pub dump: ConfigDump,
}

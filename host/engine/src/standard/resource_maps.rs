//! The resource maps that serve a state machine's AWS service integrations: its own map
//! (kept in the catalog), then `$WEFT_HOME/resource-map.yaml`'s.

use super::{Runtime, RuntimeError};
use crate::resource_map::{ResourceMap, ResourceMaps};
use std::sync::Arc;

/// The state machine's own map, if it has one.
pub fn own_map(rt: &Runtime, name: &str) -> Result<Option<ResourceMap>, RuntimeError> {
    let Some(bytes) = rt.catalog.resource_map(name)? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    ResourceMap::parse(&text, &format!("the resource map of {name}"))
        .map(Some)
        .map_err(|errs| RuntimeError::internal(errs[0].to_string()))
}

/// The maps an execution of state machine `name` uses: its own, then `$WEFT_HOME`'s. A stored
/// map that no longer parses is left out (and logged), so the integrations it served fail as
/// unmapped rather than run something else.
pub fn maps_for(rt: &Runtime, name: &str) -> ResourceMaps {
    let mut layers = Vec::new();
    match own_map(rt, name) {
        Ok(Some(m)) => layers.push(Arc::new(m)),
        Ok(None) => {}
        Err(e) => tracing::error!(state_machine = name, "{}", e.message),
    }
    layers.push(rt.home_map.clone());
    ResourceMaps::new(layers)
}

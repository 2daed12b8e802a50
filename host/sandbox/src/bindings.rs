//! Host-side bindings of the `weft:operator` WIT package (`guest-sdk/wit`), one module per world.
//! The `sensor` world reuses the `task` world's interfaces so one host implementation serves both.

pub mod task {
    wasmtime::component::bindgen!({
        path: "../../guest-sdk/wit",
        world: "task",
    });
}

pub mod sensor {
    wasmtime::component::bindgen!({
        path: "../../guest-sdk/wit",
        world: "sensor-task",
        with: {
            "weft:operator/types": super::task::weft::operator::types,
            "weft:operator/host": super::task::weft::operator::host,
            "weft:operator/http": super::task::weft::operator::http,
        },
    });
}

pub use task::weft::operator::{host, http, types};

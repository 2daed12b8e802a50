// Template: build.rs replaces the WIT placeholder with the text of wit/operator.wit.

/// Export a task operator (world `weft:operator/task`) from one plain function.
///
/// ```ignore
/// fn run(ctx: &weft_guest::Context, input: serde_json::Value)
///     -> Result<serde_json::Value, weft_guest::TaskError> { Ok(input) }
/// weft_guest::export_operator!(run);
/// ```
///
/// The function may take any `serde::de::DeserializeOwned` input, return any
/// `serde::Serialize` output, and any error that converts into [`TaskError`](crate::TaskError).
/// Use it once per crate, which must be a `cdylib`.
#[macro_export]
macro_rules! export_operator {
    ($run:expr) => {
        #[doc(hidden)]
        #[allow(dead_code, unused_imports, clippy::all)]
        mod __weft_task_bindings {
            $crate::__private::wit_bindgen::generate!({
                inline: __WEFT_WIT_SOURCE__,
                // No `path`: never pick up a `wit/` folder of the operator crate itself.
                path: [],
                world: "weft:operator/task@0.1.0",
                runtime_path: "::weft_guest::__private::wit_bindgen::rt",
                with: {
                    "weft:operator/types@0.1.0": ::weft_guest::bindings::weft::operator::types,
                    "weft:operator/host@0.1.0": ::weft_guest::bindings::weft::operator::host,
                    "weft:operator/http@0.1.0": ::weft_guest::bindings::weft::operator::http,
                },
            });
        }

        #[doc(hidden)]
        struct __WeftOperator;

        impl __weft_task_bindings::exports::weft::operator::operator::Guest for __WeftOperator {
            fn run(
                input: ::std::string::String,
                ctx: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, $crate::__private::WitTaskError> {
                $crate::__private::run_operator(input, ctx, $run)
            }
        }

        __weft_task_bindings::export!(__WeftOperator with_types_in __weft_task_bindings);
    };
}

/// Export a sensor (world `weft:operator/sensor-task`) from one plain function
/// `fn poke(ctx: &Context) -> Result<bool, TaskError>`.
///
/// ```ignore
/// fn poke(ctx: &weft_guest::Context) -> Result<bool, weft_guest::TaskError> {
///     ctx.exists(ctx.param_str("path")?)
/// }
/// weft_guest::export_sensor!(poke);
/// ```
#[macro_export]
macro_rules! export_sensor {
    ($poke:expr) => {
        #[doc(hidden)]
        #[allow(dead_code, unused_imports, clippy::all)]
        mod __weft_sensor_bindings {
            $crate::__private::wit_bindgen::generate!({
                inline: __WEFT_WIT_SOURCE__,
                // No `path`: never pick up a `wit/` folder of the operator crate itself.
                path: [],
                world: "weft:operator/sensor-task@0.1.0",
                runtime_path: "::weft_guest::__private::wit_bindgen::rt",
                with: {
                    "weft:operator/types@0.1.0": ::weft_guest::bindings::weft::operator::types,
                    "weft:operator/host@0.1.0": ::weft_guest::bindings::weft::operator::host,
                    "weft:operator/http@0.1.0": ::weft_guest::bindings::weft::operator::http,
                },
            });
        }

        #[doc(hidden)]
        struct __WeftSensor;

        impl __weft_sensor_bindings::exports::weft::operator::sensor::Guest for __WeftSensor {
            fn poke(
                ctx: ::std::string::String,
            ) -> ::std::result::Result<bool, $crate::__private::WitTaskError> {
                $crate::__private::run_sensor(ctx, $poke)
            }
        }

        __weft_sensor_bindings::export!(__WeftSensor with_types_in __weft_sensor_bindings);
    };
}

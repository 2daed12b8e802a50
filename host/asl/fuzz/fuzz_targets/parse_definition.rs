//! Fuzz target: any text given to the definition parser/validator is accepted or refused
//! with validation errors, never a panic, a stack overflow or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// libfuzzer-sys aborts on every panic, even one the code under test catches (weft-asl
/// catches the JSONata crate's panics and reports an error). The hook is made silent and a
/// panic that escapes the call is what aborts.
fn escaped_panic_aborts(f: impl FnOnce()) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        std::process::abort();
    }
}

fuzz_target!(|data: &[u8]| escaped_panic_aborts(|| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = weft_asl::parse(text);
    }
}));

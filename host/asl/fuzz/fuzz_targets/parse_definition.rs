//! Fuzz target: any text given to the definition parser/validator is accepted or refused
//! with validation errors, never a panic, a stack overflow or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = weft_asl::parse(text);
    }
});

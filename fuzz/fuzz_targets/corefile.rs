//! Bytes → the Corefile lexer, parser and typed config.
//! Properties: no panic; every error names a position inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

use clusterdns::config::{self, LoadOptions};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Imports of absolute paths would read whatever the machine holds; relative ones read the
    // fuzz folder, which is fine.
    if text.contains("import") && text.contains('/') {
        return;
    }
    let lines = text.lines().count().max(1) as u32;
    if let Err(errors) = config::from_str("fuzz.Corefile", &text, &LoadOptions::default()) {
        assert!(!errors.0.is_empty());
        for e in &errors.0 {
            if &*e.pos.file == "fuzz.Corefile" {
                assert!(
                    e.pos.line >= 1 && e.pos.line <= lines + 1,
                    "{e} (input has {lines} lines)"
                );
                assert!(e.pos.col >= 1, "{e}");
            }
            assert!(!e.msg.is_empty());
        }
    }
});

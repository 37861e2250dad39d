//! Arbitrary bytes into the golden-case reader and runner (the
//! `conformance` example's path): a typed error or a result, never a
//! panic or an allocation sized by the metadata alone.
#![no_main]

use fusedrnn::conformance::{parse_case, run_case};
use fusedrnn::KernelFamily;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(case) = parse_case(data, "fuzz", "fuzz") {
        let cfg = case.model.config();
        if cfg.input_size * cfg.hidden_size * cfg.num_layers <= 1 << 16 {
            for family in [KernelFamily::Reference, KernelFamily::detect()] {
                let _ = run_case(&case, family).map(|r| r.passes(1e-5));
            }
        }
    }
});

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skein_fuzz::record_batch::check(data));

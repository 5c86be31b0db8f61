#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skein_fuzz::request_decode::check(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| musync::fuzzing::genre_rules(data));

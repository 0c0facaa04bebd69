#![no_main]
//! `mangaassist_fuzz::body`: tests/fuzz/src says what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mangaassist_fuzz::body(data));

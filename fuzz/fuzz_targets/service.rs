#![no_main]
//! `mangaassist_fuzz::service`: tests/fuzz/src says what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mangaassist_fuzz::service(data));

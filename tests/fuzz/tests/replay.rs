//! Every regression input under `testdata/<target>/` through its target's
//! invariants, as the fuzzer ran it. A crash the fuzzer finds is copied
//! here with a name that says what it was, and stays fixed.

use std::path::PathBuf;

#[test]
fn every_regression_input_passes_its_target() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut replayed = 0;
    for (target, check) in mangaassist_fuzz::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).unwrap();
            eprintln!("replaying {}", file.display());
            check(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed > 0,
        "no regression inputs under {}",
        root.display()
    );
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/fuzz_targets");
    for (target, _) in mangaassist_fuzz::TARGETS {
        let file = fuzz.join(format!("{target}.rs"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            text.contains(&format!("mangaassist_fuzz::{target}(")),
            "{} does not call mangaassist_fuzz::{target}",
            file.display()
        );
    }
}

//! Every committed seed goes through the same properties as in fuzzing, on
//! stable Rust and without libFuzzer.

use std::path::Path;

/// A target's name and its property function.
type Target = (&'static str, fn(&[u8]));

#[test]
fn seed_corpora_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let targets: [Target; 4] = [
        ("dotenv", envcloak_fuzz::dotenv),
        ("reference", envcloak_fuzz::reference),
        ("config", envcloak_fuzz::config),
        ("age_file", envcloak_fuzz::age_file),
    ];
    for (target, check) in targets {
        let dir = root.join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a corpus entry").path();
            check(&std::fs::read(&path).expect("a corpus file"));
            count += 1;
        }
        assert!(count > 0, "no seeds for {target}");
        eprintln!("{target}: {count} seeds replayed");
    }
}

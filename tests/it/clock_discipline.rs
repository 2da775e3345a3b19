//! Only `src/clock.rs` may read the system clock: everything else gets time injected, so
//! tests can travel in time. This test fails when a direct read appears anywhere else.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn nothing_outside_the_clock_module_reads_the_system_clock() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let forbidden = [
        "Utc::now()",
        "Local::now()",
        "SystemTime::now()",
        "Instant::now()",
        "chrono::offset::Utc::now",
        "UNIX_EPOCH.elapsed",
    ];
    let mut offenders = Vec::new();
    for file in files {
        if file.ends_with("clock.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for f in forbidden {
                if line.contains(f) {
                    offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read the time through a Clock instead:\n{}",
        offenders.join("\n")
    );
}

//! The module graph of ARCHITECTURE.md, checked: each layer names only the layers below it,
//! only `store/sql.rs` calls sqlx's query API, and no command file imports another.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Lines of the files under `src/<module>` (or `src/<module>.rs`) that mention any of
/// `needles`, as `file:line: text`.
fn mentions(module: &str, needles: &[String]) -> Vec<String> {
    let dir = src().join(module);
    let files = if dir.is_dir() {
        rust_files(&dir)
    } else {
        vec![src().join(format!("{module}.rs"))]
    };
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle.as_str())) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn each_layer_names_only_the_layers_below_it() {
    // Top to bottom; a module may use any module after it in this list, none before it.
    let order = [
        "cli", "http", "schedule", "tasks", "queue", "outage", "settings", "mail", "store",
        "config",
    ];
    for (i, module) in order.iter().enumerate() {
        let above: Vec<String> = order[..i]
            .iter()
            .flat_map(|m| [format!("crate::{m}::"), format!("crate::{m};")])
            .collect();
        let found = mentions(module, &above);
        assert!(
            found.is_empty(),
            "{module} reaches up:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn only_the_sql_seam_calls_the_drivers() {
    let mut offenders = Vec::new();
    for file in rust_files(&src()) {
        if file.ends_with("store/sql.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if ["sqlx::query", "on_pool!", "on_tx!"]
                .iter()
                .any(|p| line.contains(p))
            {
                offenders.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

#[test]
fn no_command_file_imports_another() {
    let cli = src().join("cli");
    let shared = ["mod", "args", "output", "daemon"];
    let commands: Vec<String> = rust_files(&cli)
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| !shared.contains(&n.as_str()))
        .collect();
    let mut offenders = Vec::new();
    for command in &commands {
        let text = std::fs::read_to_string(cli.join(format!("{command}.rs"))).unwrap();
        for other in commands.iter().filter(|o| *o != command) {
            if text.contains(&format!("super::{other}::"))
                || text.contains(&format!("super::{other};"))
            {
                offenders.push(format!("{command} imports {other}"));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

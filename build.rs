//! Link arguments for conecta's own binaries (the library, the tests' helpers and the
//! proc-macros build as before):
//!
//! - `-no-pie`: a fixed-address executable. A PIE's pointers in read-only data are fixed up by
//!   the dynamic loader at every start: that reads about 2 MB of relocation records and leaves
//!   the fixed-up pages as private memory in every process.
//! - `--symbol-ordering-file=link/hot-symbols.txt`: the functions a worker runs (start-up,
//!   reserving, running and settling jobs, idling on Redis and on PostgreSQL, listed by
//!   `link/hot-symbols.sh`) are laid out together at the start of the code. The kernel maps
//!   code in 64 KB windows around each page a process touches, so with the few thousand
//!   functions it runs spread over the whole binary an idle worker held nearly all of it.
//!   Names the linker does not find (after a dependency or compiler upgrade changes their
//!   hashes) are skipped without a warning; the binary is then only less compact, and
//!   running the script again brings the list up to date.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    // sqlx::migrate! embeds migrations/ but cannot tell cargo that a new file appeared.
    println!("cargo:rerun-if-changed=migrations");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    // Only LLD reads an ordering file: the default linker of this target since Rust 1.90,
    // unless the build chose another.
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if target == "x86_64-unknown-linux-gnu" && !flags.contains("linker") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={dir}/link/hot-symbols.txt");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

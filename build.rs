//! Links conecta's own binary as a position-dependent executable (`-no-pie`). A PIE's
//! pointers in read-only data are fixed up by the dynamic loader at every start: that reads
//! about 2 MB of relocation records and leaves the fixed-up pages as private memory in every
//! process, which is most of an idle worker's resident set after its code. A fixed-address
//! executable has those pointers resolved at link time. Only the binaries get the flag; the
//! library, the tests' helpers and the proc-macros build as before.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}

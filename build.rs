//! Generates the protobuf messages and grpcio stubs of proto/mcr.proto at
//! build time: a pure-Rust parse (protobuf-parse 3, which keeps `service`
//! blocks), re-read as protobuf 2 descriptors (the only major grpcio's code
//! generator supports), then protobuf-codegen and grpcio-compiler. Also
//! checks that htmx (embedded by the web UI) has been fetched.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=proto/mcr.proto");
    // The web UI embeds htmx, which scripts/deps fetches (not committed).
    println!("cargo:rerun-if-changed=vendor/htmx.min.js");
    if !std::path::Path::new("vendor/htmx.min.js").exists() {
        panic!(
            "vendor/htmx.min.js is missing: run ./scripts/deps build, which fetches htmx.org from the npm \
             registry at the pinned version and checks its integrity"
        );
    }
    let fds3 = protobuf_parse::Parser::new()
        .pure()
        .include("proto")
        .input("proto/mcr.proto")
        .file_descriptor_set()
        .expect("proto/mcr.proto parses");
    let bytes = protobuf3::Message::write_to_bytes(&fds3).expect("descriptor set serializes");
    let fds: protobuf::descriptor::FileDescriptorSet =
        protobuf::Message::parse_from_bytes(&bytes).expect("descriptor set re-reads as protobuf 2");
    let files: Vec<String> = fds.get_file().iter().map(|f| f.get_name().to_string()).collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let mut results = protobuf_codegen::gen(fds.get_file(), &files, &protobuf_codegen::Customize::default());
    results.extend(grpcio_compiler::codegen::gen(fds.get_file(), &files));
    for r in results {
        // include! rejects inner attributes and inner doc comments.
        let text = String::from_utf8(r.content).expect("generated code is UTF-8");
        let cleaned: String = text
            .lines()
            .filter(|l| !l.starts_with("#![") && !l.starts_with("//!"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(out.join(&r.name), cleaned).expect("write generated code");
    }
}

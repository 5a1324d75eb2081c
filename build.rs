//! Generates the dnstap types (`src/plugin/dnstap`) from `proto/dnstap.proto` with prost,
//! parsing the schema with protox (pure Rust), so that no `protoc` is needed to build.

fn main() {
    println!("cargo:rerun-if-changed=proto/dnstap.proto");
    let files =
        protox::compile(["proto/dnstap.proto"], ["proto"]).expect("proto/dnstap.proto parses");
    prost_build::Config::new()
        .compile_fds(files)
        .expect("the dnstap types are generated");
}

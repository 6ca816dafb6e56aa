// tauri.conf.json sits at the repository root beside the Cargo.toml of this package, where tauri-build looks by
// default; the capabilities live with the shell's sources.
fn main() {
    let attributes = tauri_build::Attributes::new().capabilities_path_pattern("./src-tauri/capabilities/**/*");
    tauri_build::try_build(attributes).expect("tauri-build failed");
}

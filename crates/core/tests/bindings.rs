//! The checked-in TypeScript bindings match the Rust types.

use std::path::PathBuf;

#[test]
fn checked_in_bindings_are_fresh() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/bindings.ts");
    let generated = mm_core::bindings::typescript();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is stale: run `UPDATE_BINDINGS=1 cargo test -p mm-core --test bindings` and commit the result",
        path.display()
    );
}

/// The README's settings table is the settings table (`settings::schema`), between its two markers.
#[test]
fn the_readmes_settings_table_is_the_declared_one() {
    const START: &str = "<!-- settings: generated from crates/core/src/settings/schema.rs -->\n";
    const END: &str = "<!-- end of settings -->";
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the settings table's markers")
    };
    let fresh = format!("{}{START}{}{}", &readme[..start], mm_core::settings::readme_table(), &readme[end..]);
    if std::env::var_os("UPDATE_README").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        readme == fresh,
        "README.md's settings table is stale: run `UPDATE_README=1 cargo test -p mm-core --test bindings` and commit it"
    );
}

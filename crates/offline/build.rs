//! Embeds the application templates: every file under `app/templates` and `app/contract`,
//! as `(path relative to app/, text)`, in `$OUT_DIR/templates.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("app");
    println!("cargo:rerun-if-changed=app");
    let mut found = Vec::new();
    for dir in ["templates", "contract"] {
        files(&root.join(dir), &mut found);
    }
    let mut code = String::from(
        "/// Every template, by its path under `app/`.\npub(crate) const TEMPLATES: &[(&str, &str)] = &[\n",
    );
    for path in found {
        let relative = path
            .strip_prefix(&root)
            .expect("under app/")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a string");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("templates.rs");
    std::fs::write(out, code).expect("writing templates.rs");
}

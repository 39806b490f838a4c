//! The layering of docs/architecture.md, checked on the source: every `crate::` path a layer
//! names must point down (`routes/cli → service → access/jwt/store → domain`; `config` and
//! `mail` below the services). A new upward import fails here with the file and the line.

use std::path::{Path, PathBuf};

/// (layer, the source it covers under `src/`, the top-level modules it must not name).
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "domain",
        &["domain"],
        &[
            "access", "jwt", "store", "service", "routes", "cli", "config", "mail", "startup",
            "state", "auth", "metrics", "views", "error",
        ],
    ),
    (
        "access",
        &["access"],
        &[
            "store", "service", "routes", "cli", "startup", "state", "config", "mail",
        ],
    ),
    (
        "jwt",
        &["jwt"],
        &[
            "store", "service", "routes", "cli", "startup", "state", "config", "mail", "access",
        ],
    ),
    (
        "oidc",
        &["oidc"],
        &[
            "store", "service", "routes", "cli", "startup", "state", "mail", "access", "auth",
        ],
    ),
    (
        "store",
        &["store"],
        &[
            "access", "service", "routes", "cli", "startup", "state", "config", "mail",
        ],
    ),
    (
        "config",
        &["config.rs", "config"],
        &[
            "service", "routes", "cli", "startup", "state", "mail", "auth", "metrics",
        ],
    ),
    (
        "redact",
        &["redact.rs"],
        &["service", "routes", "cli", "config", "mail"],
    ),
    (
        "os_user",
        &["os_user.rs"],
        &["service", "routes", "cli", "config", "store", "domain"],
    ),
    (
        "mail",
        &["mail.rs"],
        &["service", "routes", "cli", "startup", "state"],
    ),
    (
        "service",
        &["service"],
        &["routes", "cli", "startup", "state"],
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            rust_files(&entry.unwrap().path(), out);
        }
    } else if path.extension().is_some_and(|ext| ext == "rs") {
        out.push(path.to_owned());
    }
}

/// The top-level modules a line names through `crate::` (also `crate::{a::x, b}`).
fn crate_modules(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    let mut modules = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut word = String::new();
            let mut expecting = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => expecting = true,
                    c if c.is_ascii_alphanumeric() || c == '_' => {
                        if expecting && depth == 0 {
                            word.push(c);
                        }
                    }
                    _ => {
                        if !word.is_empty() {
                            modules.push(std::mem::take(&mut word));
                        }
                        if c != ' ' {
                            expecting = false;
                        }
                    }
                }
            }
            if !word.is_empty() {
                modules.push(word);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            modules.push(name);
        }
    }
    modules
}

#[test]
fn crate_modules_reads_plain_and_grouped_paths() {
    assert_eq!(crate_modules("use crate::domain::Role;"), ["domain"]);
    assert_eq!(
        crate_modules("use crate::{service::caller::Caller, store};"),
        ["service", "store"]
    );
    assert!(crate_modules("// see crate::service").is_empty());
}

#[test]
fn every_import_points_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    for (layer, roots, forbidden) in RULES {
        let mut files = Vec::new();
        for root in *roots {
            let path = src.join(root);
            if path.exists() {
                rust_files(&path, &mut files);
            }
        }
        assert!(!files.is_empty(), "no source found for layer {layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (number, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for module in crate_modules(line) {
                    if forbidden.contains(&module.as_str()) {
                        violations.push(format!(
                            "{}:{}: {layer} names crate::{module}: {}",
                            file.strip_prefix(&src).unwrap_or(&file).display(),
                            number + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports pointing up the layers (docs/architecture.md):\n{}",
        violations.join("\n")
    );
}

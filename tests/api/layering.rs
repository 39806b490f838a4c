//! The layering of docs/architecture.md, checked on the source read as Rust (`syn`): every
//! path into the crate — `use` trees however rustfmt wraps them, `crate::`, `super::` and
//! `self::` paths anywhere in code, names re-exported at the crate root — must point down the
//! layers, or be one of the few known exceptions listed below with the reason it stands.
//! Every top-level module has a layer: a new module fails here until it is given one.
//! Test code (`#[cfg(test)]`) is not checked: tests may reach across.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// Each top-level module of `src/` and its layer, lowest first. A module may name modules of
/// its own layer or below; `main` and `lib` stand above everything.
const LAYERS: &[(&str, u8)] = &[
    // Imports nothing of the crate.
    ("redact", 0),
    ("os_user", 0),
    ("build_info", 0),
    // Plain types and their parsers.
    ("domain", 1),
    // Pure rules, keys, settings, errors, metrics, mail: below the services.
    ("access", 2),
    ("jwt", 2),
    ("config", 2),
    ("ci_secret", 2),
    ("mail", 3),
    ("oidc", 3),
    ("store", 3),
    ("error", 3),
    ("metrics", 3),
    ("tls", 3),
    ("telemetry", 3),
    // Operations shared by HTTP and the command line.
    ("auth", 4),
    ("service", 4),
    ("views", 4),
    // What handlers reach, and the front ends.
    ("state", 5),
    ("client_address", 5),
    ("routes", 6),
    ("startup", 7),
    ("cli", 8),
];

/// Known exceptions: (from, to, why it stands). Keep this short; remove an entry with its cause.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(path)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.extension().is_some_and(|ext| ext == "rs") {
        out.push(path.to_owned());
    }
}

/// The module path of a source file: `src/service/leaks.rs` → `service::leaks`,
/// `src/routes/ui/mod.rs` → `routes::ui`, `src/lib.rs` → the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        path.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        path.pop();
    }
    path
}

/// A path into the crate as the source wrote it, made absolute (`None`: not into the crate,
/// e.g. a dependency, a local name or `std`).
fn resolve(module: &[String], segments: &[String]) -> Option<Vec<String>> {
    let mut resolved: Vec<String>;
    let mut rest = segments;
    match segments.first().map(String::as_str) {
        Some("crate") => {
            resolved = Vec::new();
            rest = &segments[1..];
        }
        Some("self") => {
            resolved = module.to_vec();
            rest = &segments[1..];
        }
        Some("super") => {
            resolved = module.to_vec();
            while rest.first().map(String::as_str) == Some("super") {
                resolved.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    resolved.extend(rest.iter().cloned());
    Some(resolved)
}

struct Reference {
    line: usize,
    path: Vec<String>,
}

/// Every path into the crate in one file's non-test code.
struct Collector<'a> {
    module: &'a [String],
    found: Vec<Reference>,
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

impl Collector<'_> {
    fn note(&mut self, line: usize, segments: Vec<String>) {
        if let Some(path) = resolve(self.module, &segments) {
            self.found.push(Reference { line, path });
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) => {
                let mut full = prefix.clone();
                if name.ident != "self" {
                    full.push(name.ident.to_string());
                }
                self.note(name.ident.span().start().line, full);
            }
            syn::UseTree::Rename(rename) => {
                let mut full = prefix.clone();
                if rename.ident != "self" {
                    full.push(rename.ident.to_string());
                }
                self.note(rename.ident.span().start().line, full);
            }
            syn::UseTree::Glob(glob) => {
                self.note(glob.star_token.spans[0].start().line, prefix.clone());
            }
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_fn(self, item);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_impl(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if !is_cfg_test(&item.attrs) {
            self.use_tree(&mut Vec::new(), &item.tree);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path
            .segments
            .iter()
            .map(|segment| segment.ident.to_string())
            .collect();
        if let Some(first) = path.segments.first() {
            self.note(first.ident.span().start().line, segments);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        // Inside a macro call (`tracing::info!(id = %crate::x::y())`, `json!`) there is no
        // syntax to visit, only tokens: read every `crate::`/`super::`/`self::` path in them.
        self.macro_tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

impl Collector<'_> {
    fn macro_tokens(&mut self, tokens: proc_macro2::TokenStream) {
        use proc_macro2::TokenTree;
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut at = 0;
        while at < tokens.len() {
            match &tokens[at] {
                TokenTree::Group(group) => self.macro_tokens(group.stream()),
                TokenTree::Ident(ident)
                    if matches!(ident.to_string().as_str(), "crate" | "super" | "self") =>
                {
                    let line = ident.span().start().line;
                    let mut segments = vec![ident.to_string()];
                    // `ident (:: ident)*`
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(at + 1), tokens.get(at + 2), tokens.get(at + 3))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        at += 3;
                    }
                    if segments.len() > 1 {
                        self.note(line, segments);
                    }
                }
                _ => {}
            }
            at += 1;
        }
    }
}

/// Names the crate root re-exports (`pub use domain::X;` in lib.rs), and the module each
/// comes from: `crate::X` is a path into that module.
fn root_reexports(src: &Path) -> BTreeMap<String, String> {
    let file = syn::parse_file(&std::fs::read_to_string(src.join("lib.rs")).unwrap()).unwrap();
    let mut names = BTreeMap::new();
    for item in file.items {
        if let syn::Item::Use(item) = item {
            let mut collector = Collector {
                module: &[],
                found: Vec::new(),
            };
            // `pub use domain::X` has no `crate::`: read it as such.
            let tree = syn::UseTree::Path(syn::UsePath {
                ident: syn::Ident::new("crate", proc_macro2::Span::call_site()),
                colon2_token: Default::default(),
                tree: Box::new(item.tree.clone()),
            });
            collector.use_tree(&mut Vec::new(), &tree);
            for reference in collector.found {
                if let (Some(module), Some(name)) = (reference.path.first(), reference.path.last())
                {
                    names.insert(name.clone(), module.clone());
                }
            }
        }
    }
    names
}

/// (file, line, from, to, the path) for every path into another top-level module.
fn edges(src: &Path) -> Vec<(String, usize, String, String, String)> {
    let reexports = root_reexports(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges = Vec::new();
    for file in files {
        let module = module_of(src, &file);
        let Some(from) = module.first().cloned() else {
            continue; // lib.rs / main.rs: the top
        };
        if from == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed =
            syn::parse_file(&text).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        let mut collector = Collector {
            module: &module,
            found: Vec::new(),
        };
        collector.visit_file(&parsed);
        for reference in collector.found {
            let Some(first) = reference.path.first() else {
                continue;
            };
            let to = reexports
                .get(first)
                .cloned()
                .unwrap_or_else(|| first.clone());
            if to != from {
                edges.push((
                    file.strip_prefix(src).unwrap().display().to_string(),
                    reference.line,
                    from.clone(),
                    to,
                    reference.path.join("::"),
                ));
            }
        }
    }
    edges
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn paths_are_resolved_from_the_module_that_names_them() {
    let module = ["service".to_owned(), "leaks".to_owned()];
    let path = |text: &str| text.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        resolve(&module, &path("super::super::routes::api")),
        Some(path("routes::api"))
    );
    assert_eq!(
        resolve(&module, &path("super::users")),
        Some(path("service::users"))
    );
    assert_eq!(
        resolve(&module, &path("self::inner")),
        Some(path("service::leaks::inner"))
    );
    assert_eq!(resolve(&module, &path("serde_json::json")), None);
    assert_eq!(resolve(&module, &path("super::super::super::x")), None);
    // A rustfmt-wrapped group, a glob, a path in code and one inside a macro call.
    let file: syn::File = syn::parse_str(
        "use crate::{\n    service::caller::Caller,\n    store::{self, Store},\n};\n\
         use super::super::routes::*;\n\
         fn f() { crate::startup::go(); tracing::info!(x = %crate::state::name()); }\n\
         #[cfg(test)] mod tests { use crate::cli::Cli; }",
    )
    .unwrap();
    let mut collector = Collector {
        module: &module,
        found: Vec::new(),
    };
    collector.visit_file(&file);
    let found: BTreeSet<String> = collector
        .found
        .iter()
        .filter_map(|reference| reference.path.first().cloned())
        .collect();
    assert_eq!(
        found,
        ["routes", "service", "startup", "state", "store"]
            .map(str::to_owned)
            .into()
    );
}

#[test]
fn every_module_has_a_layer() {
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !matches!(name.as_str(), "lib" | "main") {
            modules.push(name);
        }
    }
    modules.sort();
    modules.dedup();
    let missing: Vec<_> = modules
        .iter()
        .filter(|module| layer_of(module).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules with no layer in tests/api/layering.rs: {missing:?}"
    );
}

#[test]
fn every_path_points_down_the_layers() {
    let mut violations = Vec::new();
    let mut used_exceptions = BTreeSet::new();
    for (file, line, from, to, path) in edges(&src()) {
        let (Some(from_layer), Some(to_layer)) = (layer_of(&from), layer_of(&to)) else {
            continue; // a name that is no module of the crate (an item of lib.rs)
        };
        if to_layer <= from_layer {
            continue;
        }
        if ALLOWED.iter().any(|(f, t, _)| *f == from && *t == to) {
            used_exceptions.insert((from, to));
            continue;
        }
        violations.push(format!(
            "{file}:{line}: {from} (layer {from_layer}) names {path} (layer {to_layer})"
        ));
    }
    assert!(
        violations.is_empty(),
        "paths pointing up the layers (docs/architecture.md):\n{}",
        violations.join("\n")
    );
    let stale: Vec<_> = ALLOWED
        .iter()
        .filter(|(f, t, _)| !used_exceptions.contains(&(f.to_string(), t.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions no longer needed, remove them: {stale:?}"
    );
}

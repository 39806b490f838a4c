//! Test support shared by regauth's test binaries, each of which uses it as an ordinary
//! dependency (no `#[path]` includes):
//!
//! - [`helpers`]: `spawn_app()` (a fresh database, fresh keys, the app on port 0) and request
//!   helpers — the API, browser, forward-auth, e2e and compose tests all start from it;
//! - [`server`]: `regauth serve` as a real process (logs, signals, the database after a stop);
//! - [`test_ca`]: a throwaway certificate authority for the HTTPS tests;
//! - [`e2e`]: the real registry, the OCI fixtures, every real client behind one `Client`
//!   trait, and the one process supervisor (`e2e::process`).
//!
//! Test code: it panics on failure by design.

pub mod e2e;
pub mod helpers;
pub mod oidc;
pub mod server;
pub mod test_ca;

use std::path::PathBuf;

/// The `regauth` binary Cargo built for this test run. Cargo hands integration tests its path
/// only at compile time (`CARGO_BIN_EXE_regauth`, not visible to a library), so it is found
/// where Cargo puts it: `target/<profile>/regauth`, beside the `deps/` directory of the running
/// test binary. `REGAUTH_TEST_BIN` overrides it.
pub fn regauth_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REGAUTH_TEST_BIN") {
        return PathBuf::from(path);
    }
    let test_binary = std::env::current_exe().expect("the running test binary's path");
    let deps = test_binary
        .parent()
        .expect("the test binary lives in a directory");
    let profile = if deps.ends_with("deps") {
        deps.parent().unwrap_or(deps)
    } else {
        deps
    };
    let binary = profile.join(format!("regauth{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "the regauth binary is not at {} (set REGAUTH_TEST_BIN)",
        binary.display()
    );
    binary
}

//! An OIDC issuer of its own for `scripts/bench.sh`'s federated case: a fresh ES256 key, its
//! JWKS written to a file (the issuer's `jwks_file`), and one ID token with GitHub Actions'
//! claims printed on stdout.
//! `cargo run --release --example oidc_fixture -- JWKS_OUT ISSUER AUDIENCE LIFETIME_SECONDS`

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jwks_out, issuer, audience, lifetime] = args.as_slice() else {
        eprintln!("usage: oidc_fixture JWKS_OUT ISSUER AUDIENCE LIFETIME_SECONDS");
        std::process::exit(2);
    };
    let lifetime: i64 = lifetime.parse().expect("LIFETIME_SECONDS is a number");
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = key.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "bench", "use": "sig", "alg": "ES256",
        "x": b64(&point[1..33]), "y": b64(&point[33..65]),
    }]});
    std::fs::write(jwks_out, jwks.to_string()).expect("write the JWKS");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = json!({
        "iss": issuer, "aud": audience, "sub": "repo:acme/web:ref:refs/heads/main",
        "jti": "bench", "iat": now, "nbf": now, "exp": now + lifetime,
        "repository": "acme/web", "repository_id": "74", "repository_owner_id": "65",
        "ref": "refs/heads/main", "sha": "d6cd1e2bd19e03a81132a23b2025920577f84e37",
        "run_id": "1", "run_attempt": "1",
    });
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "ES256", "typ": "JWT", "kid": "bench"})
            .to_string()
            .as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = key.sign(&rng, input.as_bytes()).unwrap();
    println!("{input}.{}", b64(signature.as_ref()));
}

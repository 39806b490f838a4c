//! ring's raw RS256 signing rate with a key file, for `scripts/bench.sh` to compare the token
//! endpoint's RS256 rate with:
//! `cargo run --release --example rs256_sign_rate -- KEY.pem [SECONDS] [THREADS ...]`.
//! Prints `threads=N signatures_per_second=R` for each thread count given, by default one
//! thread and one per core.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};

fn rate(key: &Arc<RsaKeyPair>, threads: usize, seconds: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    // What a registry token's signing input looks like in size.
    let message = vec![b'x'; 600];
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (key, stop, count, message) = (
                Arc::clone(key),
                Arc::clone(&stop),
                Arc::clone(&count),
                message.clone(),
            );
            std::thread::spawn(move || {
                let rng = SystemRandom::new();
                let mut signature = vec![0u8; key.public().modulus_len()];
                while !stop.load(Ordering::Relaxed) {
                    key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature)
                        .expect("sign");
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("join");
    }
    count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: rs256_sign_rate KEY.pem [SECONDS] [THREADS ...]");
    let seconds: f64 = args.next().map_or(3.0, |s| s.parse().expect("seconds"));
    let text = std::fs::read_to_string(&path).expect("read key");
    let block = pem::parse(text).expect("PEM");
    let key = match block.tag() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(block.contents()),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(block.contents()),
        other => panic!("unsupported key block {other}"),
    }
    .expect("an RSA key");
    let key = Arc::new(key);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts: Vec<usize> = args.map(|n| n.parse().expect("threads")).collect();
    if counts.is_empty() {
        counts = vec![1, cores];
    }
    for threads in counts {
        println!(
            "threads={threads} signatures_per_second={:.0}",
            rate(&key, threads, seconds)
        );
    }
}

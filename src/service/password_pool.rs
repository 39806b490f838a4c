//! Where web sign-in passwords are verified: a few threads (one per core), each with its own
//! argon2 working memory allocated once, behind a short bounded queue.
//!
//! argon2id with the default parameters fills 19 MiB per hash. Hashed on tokio's blocking
//! pool, 80 parallel unauthenticated sign-ins took the server to 2.2 GiB, and the allocator
//! kept it. Here at most one hash per thread runs at once, each thread reuses its memory, so
//! hashing costs `threads × 19 MiB` whatever the load; sign-ins beyond the queue are answered
//! 503 at once (`Error::Busy`) instead of waiting in an unbounded line.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;

use crate::error::Error;

/// Verifications waiting per thread before more are refused.
const QUEUED_PER_THREAD: usize = 4;
/// The most argon2 memory one verification may ask for (64 MiB): a stored hash with larger
/// parameters is not verified (regauth's own hashes use 19 MiB).
const MAX_BLOCKS: u32 = 64 * 1024;

type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

struct Pool {
    jobs: Mutex<SyncSender<Job>>,
}

static POOL: OnceLock<Option<Pool>> = OnceLock::new();

fn start() -> Option<Pool> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (jobs, queue) = mpsc::sync_channel::<Job>(threads * QUEUED_PER_THREAD);
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for index in 0..threads {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("regauth-password-{index}"))
            .spawn(move || serve(&queue));
        match spawned {
            Ok(_) => started += 1,
            Err(error) => tracing::warn!(%error, "starting a password thread failed"),
        }
    }
    (started > 0).then(|| Pool {
        jobs: Mutex::new(jobs),
    })
}

fn serve(queue: &Mutex<Receiver<Job>>) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => drop(catch_unwind(AssertUnwindSafe(|| job(&mut memory)))),
            Err(_) => return,
        }
    }
}

/// Whether `password` matches the PHC-format argon2 hash `stored`, computed on a password
/// thread. `Error::Busy` when the queue is full.
pub async fn verify(password: String, stored: String) -> Result<bool, Error> {
    let pool = POOL
        .get_or_init(start)
        .as_ref()
        .ok_or_else(|| Error::internal("no password thread could be started"))?;
    let (answer, answered) = oneshot::channel();
    let job: Job = Box::new(move |memory| {
        if !answer.is_closed() {
            let _ = answer.send(verify_with(&password, &stored, memory));
        }
    });
    let sent = match pool.jobs.lock() {
        Ok(jobs) => jobs.try_send(job),
        Err(_) => return Err(Error::internal("the password queue is poisoned")),
    };
    match sent {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Err(Error::Busy("too many sign-ins at once")),
        Err(TrySendError::Disconnected(_)) => {
            return Err(Error::internal("the password threads have stopped"))
        }
    }
    answered
        .await
        .map_err(|_| Error::internal("a password verification failed"))
}

/// The verification itself, in `memory` (grown once to what the hash's parameters need).
fn verify_with(password: &str, stored: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|version| Version::try_from(version).ok())
        .unwrap_or_default();
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if blocks > MAX_BLOCKS as usize {
        tracing::warn!(blocks, "a stored password hash asks for too much memory");
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    let hasher = Argon2::new(algorithm, version, params);
    if hasher
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut computed,
            &mut memory[..blocks],
        )
        .is_err()
    {
        return false;
    }
    crate::domain::secret::constant_time_eq(expected.as_bytes(), computed.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, SaltString};

    fn hash(password: &str) -> String {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn the_right_password_verifies_and_a_wrong_or_broken_one_does_not() {
        let stored = hash("correct horse battery");
        assert!(verify("correct horse battery".into(), stored.clone())
            .await
            .unwrap());
        assert!(!verify("correct horse batterz".into(), stored.clone())
            .await
            .unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
        assert!(!verify("x".into(), stored.replace("m=19456", "m=9999999"))
            .await
            .unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_verifications_are_refused_at_once() {
        let stored = hash("correct horse battery");
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let sent = threads * (QUEUED_PER_THREAD + 1) + 40;
        let tasks: Vec<_> = (0..sent)
            .map(|_| tokio::spawn(verify("wrong password".into(), stored.clone())))
            .collect();
        let mut busy = 0;
        let mut verified = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(false) => verified += 1,
                Err(Error::Busy(_)) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!(busy > 0, "nothing refused of {sent}");
        assert!(verified >= threads, "{verified} verified");
    }
}

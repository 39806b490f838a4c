//! Where RSA signatures run: a pool of one thread per CPU core, shared by the whole process.
//!
//! An RSA-2048 signature costs ~0.5 ms of CPU, too long to hold an executor thread. tokio's
//! blocking pool (one per actix worker) starts a thread for every signature in flight: under
//! 32 connections the process ran ~65 threads time-sliced over 2 cores, and the endpoint
//! served ~0.7 of ring's raw signing rate. One thread per core keeps each core on one
//! signature at a time and the queue in front of them, which served ~0.9 of the raw rate in
//! alternating runs (`scripts/bench.sh`). The pool is per process, not per server: the cores
//! are.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Why a job gave no answer: the work panicked, or no signing thread could be started.
#[derive(Debug, thiserror::Error)]
#[error("the signing pool gave no answer")]
pub struct NoAnswer;

struct Pool {
    jobs: Mutex<Sender<Job>>,
}

static POOL: OnceLock<Option<Pool>> = OnceLock::new();

fn start() -> Option<Pool> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let mut started = 0;
    for index in 0..threads {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("regauth-sign-{index}"))
            .spawn(move || serve(&queue));
        match spawned {
            Ok(_) => started += 1,
            Err(error) => tracing::warn!(%error, "starting a signing thread failed"),
        }
    }
    (started > 0).then(|| Pool {
        jobs: Mutex::new(jobs),
    })
}

fn serve(queue: &Mutex<Receiver<Job>>) {
    loop {
        // Held only while waiting for the next job: the other threads are idle anyway then.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job drops its answer channel (its caller gets `NoAnswer`); the
            // thread lives on.
            Ok(job) => drop(catch_unwind(AssertUnwindSafe(job))),
            Err(_) => return,
        }
    }
}

/// Runs `work` on a signing thread and waits for its result without blocking the executor.
/// Work whose caller has gone (a client that hung up) is skipped.
///
/// # Errors
///
/// [`NoAnswer`] when `work` panicked or no signing thread could be started.
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NoAnswer> {
    let (answer, answered) = oneshot::channel();
    let job: Job = Box::new(move || {
        if !answer.is_closed() {
            let _ = answer.send(work());
        }
    });
    let sent = POOL
        .get_or_init(start)
        .as_ref()
        .and_then(|pool| pool.jobs.lock().ok()?.send(job).ok());
    if sent.is_none() {
        return Err(NoAnswer);
    }
    answered.await.map_err(|_| NoAnswer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_the_work_and_returns_its_result() {
        let thread = run(|| std::thread::current().name().map(str::to_owned))
            .await
            .unwrap();
        assert!(thread.unwrap().starts_with("regauth-sign-"));
    }

    #[tokio::test]
    async fn a_panicking_job_answers_no_answer_and_the_pool_keeps_working() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        // More panics than threads: a thread that died with its job would leave none.
        for _ in 0..threads + 1 {
            assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
        }
        assert_eq!(run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn many_jobs_in_flight_all_answer() {
        let mut in_flight = tokio::task::JoinSet::new();
        for n in 0..200u32 {
            in_flight.spawn(run(move || n * 2));
        }
        let mut sum = 0;
        while let Some(answer) = in_flight.join_next().await {
            sum += answer.unwrap().unwrap();
        }
        assert_eq!(sum, (0..200u32).map(|n| n * 2).sum::<u32>());
    }
}

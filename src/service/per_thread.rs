//! Per-thread slots for what request threads add to and one background task collects, so that
//! recording something per request wakes no other thread: a request locks only its own
//! thread's slot (uncontended but for the collector's visit), and the collector takes every
//! slot's contents on its own timer. A channel send per request woke the collecting task on
//! another thread for every request (futex and eventfd wakes: a sixth of the CPU of a token
//! request under load, PERFORMANCE.md).
//!
//! Threads are spread over the slots by the order they first record; two threads sharing a
//! slot only contend for it, nothing is lost.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One slot, on a cache line (pair) of its own: slots of different threads never share one.
#[repr(align(128))]
struct Slot<T>(Mutex<T>);

pub struct PerThread<T> {
    slots: Box<[Slot<T>]>,
}

/// The next thread's slot number, process-wide.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_NUMBER: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

impl<T: Default> PerThread<T> {
    /// Enough slots for the threads that record (the HTTP workers, the runtime's workers):
    /// four per core, at least 8.
    pub fn new() -> PerThread<T> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        PerThread::with_slots((cores * 4).max(8))
    }

    pub fn with_slots(slots: usize) -> PerThread<T> {
        PerThread {
            slots: (0..slots.max(1))
                .map(|_| Slot(Mutex::new(T::default())))
                .collect(),
        }
    }

    /// Runs `f` on this thread's slot.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let index = THREAD_NUMBER.with(|number| *number) % self.slots.len();
        f(&mut lock(&self.slots[index].0))
    }

    /// Takes every slot's contents, leaving each empty (`T::default()`).
    pub fn take_all(&self) -> impl Iterator<Item = T> + '_ {
        self.slots
            .iter()
            .map(|slot| std::mem::take(&mut *lock(&slot.0)))
    }
}

impl<T: Default> Default for PerThread<T> {
    fn default() -> Self {
        PerThread::new()
    }
}

/// A slot whose holder panicked still holds consistent data for our uses (plain adds).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn what_every_thread_adds_is_taken_exactly_once() {
        let counts: Arc<PerThread<u64>> = Arc::new(PerThread::with_slots(3));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let counts = Arc::clone(&counts);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        counts.with(|count| *count += 1);
                    }
                })
            })
            .collect();
        let mut taken = 0;
        // Collected while the threads still add, as the background task does.
        for _ in 0..50 {
            taken += counts.take_all().sum::<u64>();
        }
        for thread in threads {
            thread.join().unwrap();
        }
        taken += counts.take_all().sum::<u64>();
        assert_eq!(taken, 80_000);
        assert_eq!(counts.take_all().sum::<u64>(), 0);
    }
}

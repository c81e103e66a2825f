//! Helper threads that never spin: a helper sleeps on a condition variable until handed a
//! share of a call, and sleeps again as soon as it is done. (A pool that spins while idle, as
//! rayon's and OpenMP's active policy do, keeps a core busy for a while after each call, and
//! the other pipeline stage, which needs that core next, pays for it.)

use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;

type Job = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

/// Counts a call's shares down to zero; remembers whether any panicked.
struct Latch {
    state: Mutex<(usize, bool)>,
    done: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // the data guarded here (a queue, a counter) stays valid even if a holder panicked
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Latch {
    fn finish(&self, panicked: bool) {
        let mut state = lock(&self.state);
        state.0 -= 1;
        state.1 |= panicked;
        if state.0 == 0 {
            self.done.notify_all();
        }
    }

    /// Waits for every share; true if one panicked.
    fn wait(&self) -> bool {
        let mut state = lock(&self.state);
        while state.0 > 0 {
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.1
    }
}

/// Runs every task, on the helpers where they could be started, else one after another on the
/// calling thread; returns when all have finished. A single task runs on the calling thread
/// without starting (or waking) any helper.
pub(crate) fn run_all<'a>(mut tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
    if tasks.len() == 1 {
        return (tasks.pop().expect("one task"))();
    }
    match Helpers::get() {
        Some(helpers) => helpers.run(tasks),
        None => tasks.into_iter().for_each(|task| task()),
    }
}

/// The process's helper threads: one fewer than the cores, started on first use in each
/// process. A child made by `fork` has none of its parent's threads (only the forking one is
/// copied), so it starts helpers of its own on first use rather than waiting on the parent's.
pub(crate) struct Helpers {
    queue: Arc<Queue>,
}

/// The helpers of the process `OWNER` names (a process id; 0: none started yet); null where no
/// thread could be started there.
static POOL: AtomicPtr<Helpers> = AtomicPtr::new(ptr::null_mut());
static OWNER: AtomicU32 = AtomicU32::new(0);
static STARTING: Mutex<()> = Mutex::new(());

impl Helpers {
    /// This process's helpers, or None if no thread could be started (shares then run in turn).
    pub(crate) fn get() -> Option<&'static Helpers> {
        let pid = std::process::id();
        if OWNER.load(Ordering::Acquire) != pid {
            let _starting = lock(&STARTING);
            if OWNER.load(Ordering::Acquire) != pid {
                let cores = thread::available_parallelism().map_or(1, |n| n.get());
                let helpers = Helpers::start(cores.saturating_sub(1).max(1))
                    .map_or(ptr::null_mut(), |h| Box::into_raw(Box::new(h)));
                // a parent's pool is left as it is: its threads are not in this process
                POOL.store(helpers, Ordering::Release);
                OWNER.store(pid, Ordering::Release);
            }
        }
        // SAFETY: POOL is null or points at helpers that are never freed.
        unsafe { POOL.load(Ordering::Acquire).as_ref() }
    }

    fn start(count: usize) -> Option<Self> {
        let queue = Arc::new(Queue {
            jobs: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        });
        for i in 0..count {
            let q = Arc::clone(&queue);
            thread::Builder::new()
                .name(format!("voxlet-int8-{i}"))
                .spawn(move || loop {
                    let job = {
                        let mut jobs = lock(&q.jobs);
                        loop {
                            if let Some(job) = jobs.pop_front() {
                                break job;
                            }
                            jobs = q.ready.wait(jobs).unwrap_or_else(PoisonError::into_inner);
                        }
                    };
                    job();
                })
                .ok()?;
        }
        Some(Self { queue })
    }

    /// Runs every task, the first on the calling thread and the rest on helpers, and returns
    /// when all have finished; a panic in any task is resumed here, after all have finished.
    pub(crate) fn run<'a>(&self, mut tasks: Vec<Box<dyn FnOnce() + Send + 'a>>) {
        if tasks.is_empty() {
            return;
        }
        let own = tasks.remove(0);
        let latch = Arc::new(Latch {
            state: Mutex::new((tasks.len(), false)),
            done: Condvar::new(),
        });
        {
            let mut jobs = lock(&self.queue.jobs);
            for task in tasks {
                let latch = Arc::clone(&latch);
                let job: Box<dyn FnOnce() + Send + 'a> = Box::new(move || {
                    let result = panic::catch_unwind(AssertUnwindSafe(task));
                    latch.finish(result.is_err());
                });
                // SAFETY: the job borrows data that lives for 'a; this function does not
                // return (or unwind) before the latch has counted every job as finished, and a
                // job touches nothing borrowed after finishing (the latch is reference-counted).
                let job: Job =
                    unsafe { std::mem::transmute::<Box<dyn FnOnce() + Send + 'a>, Job>(job) };
                jobs.push_back(job);
            }
        }
        self.queue.ready.notify_all();
        let own_result = panic::catch_unwind(AssertUnwindSafe(own));
        let helper_panicked = latch.wait();
        if let Err(payload) = own_result {
            panic::resume_unwind(payload);
        }
        if helper_panicked {
            panic!("an int8 kernel share panicked on a helper thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn every_task_runs_once_and_borrows_stay_valid() {
        let helpers = Helpers::start(2).unwrap();
        let mut parts = vec![0usize; 7];
        let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = parts
            .iter_mut()
            .enumerate()
            .map(|(i, p)| Box::new(move || *p = i * i) as Box<dyn FnOnce() + Send>)
            .collect();
        helpers.run(tasks);
        assert_eq!(parts, [0, 1, 4, 9, 16, 25, 36]);
    }

    #[test]
    fn a_panicking_share_surfaces_after_the_others_finish() {
        let helpers = Helpers::start(1).unwrap();
        let finished = AtomicUsize::new(0);
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let tasks: Vec<Box<dyn FnOnce() + Send + '_>> = (0..4)
                .map(|i| {
                    let finished = &finished;
                    Box::new(move || {
                        if i == 2 {
                            panic!("share {i} failed");
                        }
                        thread::sleep(std::time::Duration::from_millis(5));
                        finished.fetch_add(1, Ordering::SeqCst);
                    }) as Box<dyn FnOnce() + Send>
                })
                .collect();
            helpers.run(tasks);
        }));
        assert!(result.is_err());
        assert_eq!(finished.load(Ordering::SeqCst), 3);
        // the helpers still serve later calls
        let mut x = 0;
        helpers.run(vec![Box::new(|| x = 1)]);
        assert_eq!(x, 1);
    }
}

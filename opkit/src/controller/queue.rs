//! The work queue of one controller: which objects to reconcile, in what order and when.
//!
//! Two priorities: a change (of a primary's spec, its deletion, a dependent's drift) is
//! reconciled before the resyncs and the initial list, so a user's edit is not stuck behind ten
//! thousand objects being relisted. An object is never reconciled twice at once: a request for a
//! running object is held until it finishes, then runs (at the higher of the two priorities).
//! Timed requests keep the earliest time. Each object costs one small slot (and one heap entry
//! while a timer is set) instead of kube-runtime's scheduler, which kept each pending resync
//! twice with its full `ObjectRef`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::cache::Key;

/// How urgent a reconcile is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Priority {
    /// Resyncs, requeues and the objects of an initial list or relist.
    Low,
    /// Changes: a primary's spec, finalizers or deletion, a dependent's change.
    High,
}

/// What to do with an object after its reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing until something changes.
    Await,
    /// Again after this long, at this priority.
    After(Duration, Priority),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing pending, or only a timer.
    Idle,
    /// In the ready queue of its priority.
    Ready,
    /// Reconciling; `again` holds a request that came meanwhile.
    Running { again: Option<Priority> },
    /// Being handed to another replica: never started again. `running` until its reconcile
    /// ends, `acking` while the hand-over is being written.
    Draining { running: bool, acking: bool },
    /// Handed over; kept until the watch shows it gone, so nothing starts it meanwhile.
    Released,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    state: State,
    /// The priority of the pending request (ready, or its timer).
    priority: Priority,
    /// When the timer fires, in milliseconds since the queue's epoch.
    due: Option<u64>,
    /// The object was deleted while running: forget it once it finishes.
    gone: bool,
}

/// The queue. Not synchronized: the controller's loop owns it.
pub(crate) struct Queue {
    epoch: Instant,
    slots: HashMap<Key, Slot>,
    ready: [VecDeque<Key>; 2],
    timers: BinaryHeap<Reverse<(u64, Key)>>,
    running: usize,
}

impl Queue {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            slots: HashMap::new(),
            ready: [VecDeque::new(), VecDeque::new()],
            timers: BinaryHeap::new(),
            running: 0,
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    fn enqueue(&mut self, key: Key, priority: Priority) {
        self.ready[priority as usize].push_back(key);
    }

    /// Asks for a reconcile of `key` now.
    pub fn push(&mut self, key: Key, priority: Priority) {
        let slot = self.slots.entry(key.clone()).or_insert(Slot {
            state: State::Idle,
            priority,
            due: None,
            gone: false,
        });
        match slot.state {
            State::Idle => {
                *slot = Slot {
                    state: State::Ready,
                    priority,
                    due: None,
                    gone: false,
                };
                self.enqueue(key, priority);
            }
            State::Ready if priority > slot.priority => {
                slot.priority = priority;
                self.enqueue(key, priority);
            }
            State::Running { again } => {
                slot.state = State::Running {
                    again: again.max(Some(priority)),
                };
            }
            State::Ready | State::Draining { .. } | State::Released => {}
        }
    }

    /// Asks for a reconcile of `key` after `after`, unless one is due sooner.
    fn schedule(&mut self, key: Key, after: Duration, priority: Priority) {
        let due = self.millis(Instant::now() + after);
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        if slot.state != State::Idle || slot.due.is_some_and(|d| d <= due) {
            return;
        }
        slot.due = Some(due);
        slot.priority = priority;
        self.timers.push(Reverse((due, key)));
        // Timers replaced by sooner ones or by pushes stay in the heap until they come up;
        // rebuilt once they outnumber the objects, the heap stays proportional to them.
        if self.timers.len() > 2 * self.slots.len() + 1024 {
            self.timers = self
                .slots
                .iter()
                .filter_map(|(k, s)| s.due.map(|d| Reverse((d, k.clone()))))
                .collect();
        }
    }

    /// Moves the timers due by `now` to the ready queues.
    fn fire(&mut self, now: Instant) {
        let now = self.millis(now);
        while let Some(Reverse((due, _))) = self.timers.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, key))) = self.timers.pop() else {
                break;
            };
            if let Some(slot) = self.slots.get_mut(&key)
                && slot.state == State::Idle
                && slot.due == Some(due)
            {
                slot.due = None;
                slot.state = State::Ready;
                let priority = slot.priority;
                self.enqueue(key, priority);
            }
        }
    }

    /// When the next timer fires, if one is set.
    pub fn next_due(&self) -> Option<Instant> {
        self.timers
            .peek()
            .map(|Reverse((due, _))| self.epoch + Duration::from_millis(*due))
    }

    /// The next object to reconcile, highest priority first, in the order asked; marks it
    /// running.
    pub fn pop(&mut self, now: Instant) -> Option<(Key, Priority)> {
        self.fire(now);
        for priority in [Priority::High, Priority::Low] {
            while let Some(key) = self.ready[priority as usize].pop_front() {
                let Some(slot) = self.slots.get_mut(&key) else {
                    continue;
                };
                if slot.state == State::Ready && slot.priority == priority {
                    slot.state = State::Running { again: None };
                    self.running += 1;
                    return Some((key, priority));
                }
            }
        }
        None
    }

    /// How many reconciles run.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Records the end of `key`'s reconcile; true when it was being drained and is now ready to
    /// be handed over.
    pub fn finish(&mut self, key: &Key, next: Next) -> bool {
        let Some(slot) = self.slots.get_mut(key) else {
            return false;
        };
        self.running = self.running.saturating_sub(1);
        match slot.state {
            State::Draining { acking, .. } => {
                slot.state = State::Draining {
                    running: false,
                    acking,
                };
                return !acking;
            }
            _ if slot.gone => {
                self.slots.remove(key);
            }
            State::Running {
                again: Some(priority),
            } => {
                slot.state = State::Ready;
                slot.priority = priority;
                self.enqueue(key.clone(), priority);
            }
            _ => {
                slot.state = State::Idle;
                match next {
                    Next::After(after, priority) => self.schedule(key.clone(), after, priority),
                    Next::Await => {
                        self.slots.remove(key);
                    }
                }
            }
        }
        false
    }

    /// Forgets a deleted object (once its reconcile ends, if one runs).
    pub fn forget(&mut self, key: &Key) {
        match self.slots.get_mut(key) {
            Some(slot) if matches!(slot.state, State::Running { .. }) => slot.gone = true,
            Some(slot) if matches!(slot.state, State::Draining { running: true, .. }) => {
                slot.gone = true;
                slot.state = State::Running { again: None };
            }
            Some(_) => {
                self.slots.remove(key);
            }
            None => {}
        }
    }

    /// Stops starting `key`: it moves to another replica. True when nothing runs, so it can be
    /// handed over now (the caller then calls [`Queue::acking`]).
    pub fn drain(&mut self, key: &Key) -> bool {
        let slot = self.slots.entry(key.clone()).or_insert(Slot {
            state: State::Idle,
            priority: Priority::Low,
            due: None,
            gone: false,
        });
        match slot.state {
            State::Running { .. } => {
                slot.state = State::Draining {
                    running: true,
                    acking: false,
                };
                false
            }
            State::Draining { running, acking } => !running && !acking,
            State::Released => false,
            State::Idle | State::Ready => {
                slot.state = State::Draining {
                    running: false,
                    acking: false,
                };
                slot.due = None;
                true
            }
        }
    }

    /// Whether `key` is being drained or was handed over.
    pub fn is_draining(&self, key: &Key) -> bool {
        self.slots
            .get(key)
            .is_some_and(|s| matches!(s.state, State::Draining { .. } | State::Released))
    }

    /// Marks the hand-over of `key` as being written.
    pub fn acking(&mut self, key: &Key) {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.state = State::Draining {
                running: false,
                acking: true,
            };
        }
    }

    /// Records the outcome of the hand-over of `key`: released, or still draining (to be
    /// retried with the next event that shows the object).
    pub fn acked(&mut self, key: &Key, released: bool) {
        if let Some(slot) = self.slots.get_mut(key) {
            slot.state = if released {
                State::Released
            } else {
                State::Draining {
                    running: false,
                    acking: false,
                }
            };
        }
    }

    /// `key` is this replica's again (no longer drained, or assigned back): reconcile it.
    pub fn undrain(&mut self, key: Key) {
        if let Some(slot) = self.slots.get_mut(&key)
            && matches!(
                slot.state,
                State::Released
                    | State::Draining {
                        running: false,
                        acking: false
                    }
            )
        {
            slot.state = State::Idle;
            self.push(key, Priority::High);
        }
    }

    /// How many objects the queue keeps a slot for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Key {
        name.into()
    }

    fn names(queue: &mut Queue) -> Vec<String> {
        names_at(queue, Instant::now())
    }

    fn names_at(queue: &mut Queue, at: Instant) -> Vec<String> {
        std::iter::from_fn(|| queue.pop(at))
            .map(|(k, _)| k.to_string())
            .collect()
    }

    #[test]
    fn changes_run_before_the_herd_and_each_object_once() {
        let mut q = Queue::new();
        for name in ["a", "b", "c"] {
            q.push(k(name), Priority::Low);
        }
        q.push(k("d"), Priority::High);
        q.push(k("b"), Priority::High);
        q.push(k("b"), Priority::Low);
        assert_eq!(names(&mut q), ["d", "b", "a", "c"]);
        assert_eq!(q.running(), 4);
    }

    #[test]
    fn a_request_for_a_running_object_waits_for_it_then_runs_once() {
        let mut q = Queue::new();
        q.push(k("a"), Priority::Low);
        assert_eq!(q.pop(Instant::now()), Some((k("a"), Priority::Low)));
        q.push(k("a"), Priority::Low);
        q.push(k("a"), Priority::High);
        assert_eq!(
            q.pop(Instant::now()),
            None,
            "never two reconciles of one object"
        );
        assert!(!q.finish(&k("a"), Next::Await));
        assert_eq!(q.pop(Instant::now()), Some((k("a"), Priority::High)));
        assert!(!q.finish(&k("a"), Next::Await));
        assert_eq!(q.pop(Instant::now()), None);
        assert_eq!(q.len(), 0, "an object with nothing pending keeps no slot");
    }

    #[test]
    fn timers_keep_the_earliest_time_and_a_push_overrides_them() {
        let mut q = Queue::new();
        q.push(k("a"), Priority::High);
        q.pop(Instant::now());
        q.finish(&k("a"), Next::After(Duration::from_secs(60), Priority::Low));
        q.push(k("b"), Priority::Low);
        q.pop(Instant::now());
        q.finish(&k("b"), Next::After(Duration::from_secs(10), Priority::Low));
        let due = q.next_due().expect("a timer is set");
        assert!(due <= Instant::now() + Duration::from_secs(10));
        assert_eq!(names(&mut q), Vec::<String>::new(), "nothing is due yet");
        let later = Instant::now() + Duration::from_secs(11);
        assert_eq!(names_at(&mut q, later), ["b"]);
        q.finish(&k("b"), Next::Await);
        q.push(k("a"), Priority::Low);
        assert_eq!(names(&mut q), ["a"], "a push runs at once");
        q.finish(&k("a"), Next::Await);
        let much_later = Instant::now() + Duration::from_secs(120);
        assert_eq!(
            names_at(&mut q, much_later),
            Vec::<String>::new(),
            "the replaced timer does not fire"
        );
    }

    #[test]
    fn a_drained_object_is_handed_over_once_its_reconcile_ends_and_never_started_again() {
        let mut q = Queue::new();
        q.push(k("a"), Priority::Low);
        q.push(k("b"), Priority::Low);
        assert_eq!(q.pop(Instant::now()).map(|(k, _)| k), Some(k("a")));
        assert!(!q.drain(&k("a")), "a runs: hand it over later");
        assert!(q.drain(&k("b")), "b does not run: hand it over now");
        q.acking(&k("b"));
        q.push(k("a"), Priority::High);
        q.push(k("b"), Priority::High);
        assert_eq!(q.pop(Instant::now()), None, "drained objects never start");
        assert!(q.finish(&k("a"), Next::After(Duration::from_secs(1), Priority::Low)));
        q.acking(&k("a"));
        q.acked(&k("a"), true);
        q.acked(&k("b"), false);
        assert!(q.drain(&k("b")), "a failed hand-over is tried again");
        q.push(k("a"), Priority::High);
        assert_eq!(q.pop(Instant::now()), None);
        q.undrain(k("a"));
        assert_eq!(q.pop(Instant::now()), Some((k("a"), Priority::High)));
    }

    #[test]
    fn a_deleted_object_is_forgotten_once_its_reconcile_ends() {
        let mut q = Queue::new();
        q.push(k("a"), Priority::Low);
        q.pop(Instant::now());
        q.forget(&k("a"));
        q.finish(&k("a"), Next::After(Duration::from_secs(1), Priority::Low));
        assert_eq!(q.len(), 0);
        assert_eq!(q.next_due(), None);
    }
}

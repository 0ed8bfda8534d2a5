//! Turns on the test process. Every test of this binary runs in one process, in parallel
//! threads, and a few tests measure the whole process (its resident memory): those must
//! run while no other in-process gateway or simulator is alive, or they would measure
//! their neighbours. Every `TestGateway` and `TestSim` holds a shared turn; a measuring
//! test starts its gateway with an exclusive one (`TestGateway::start_alone`), which waits
//! until no turn is held and keeps new ones waiting until it is dropped. A test that starts
//! two gateways holds two shared turns, so an exclusive one only ever waits for turns held,
//! never queues ahead of shared ones (that could deadlock such a test).

use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

struct Turns {
    shared: usize,
    exclusive: bool,
}

static TURNS: Mutex<Turns> = Mutex::new(Turns {
    shared: 0,
    exclusive: false,
});
/// Woken whenever a turn ends.
static ENDED: Notify = Notify::const_new();

fn turns() -> MutexGuard<'static, Turns> {
    // A test that panicked while holding the lock changed nothing half-way.
    TURNS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A turn on the process; it ends when dropped.
pub struct Turn {
    exclusive: bool,
}

impl Turn {
    /// A turn beside other shared ones (an in-process gateway or simulator).
    pub async fn shared() -> Self {
        Self::take(false).await
    }

    /// The process alone: no other turn is held until this one ends.
    pub async fn exclusive() -> Self {
        Self::take(true).await
    }

    async fn take(exclusive: bool) -> Self {
        loop {
            // Registered before the check, so an end between the check and the wait wakes us.
            let ended = ENDED.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            {
                let mut turns = turns();
                if exclusive && !turns.exclusive && turns.shared == 0 {
                    turns.exclusive = true;
                    return Self { exclusive };
                }
                if !exclusive && !turns.exclusive {
                    turns.shared += 1;
                    return Self { exclusive };
                }
            }
            ended.await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        {
            let mut turns = turns();
            if self.exclusive {
                turns.exclusive = false;
            } else {
                turns.shared -= 1;
            }
        }
        ENDED.notify_waiters();
    }
}

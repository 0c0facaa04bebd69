//! When to reload the serving policy: on SIGHUP, and for a file source when
//! its size or modification time changes (polling the metadata also catches
//! editors and deploy tools that replace the file by renaming). The SIGHUP
//! registration lives exactly as long as the [`Watcher`]: once it is
//! dropped no flag is set for a thread that is gone, and registrations do
//! not pile up. (signal-hook keeps its own handler installed, so SIGHUP
//! does not go back to ending the process.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use signal_hook::SigId;

use crate::active::{ActivePolicy, PolicySource};

impl ActivePolicy {
    /// Reloads on SIGHUP and, for a file source, when the file changes;
    /// checks every `every`. Stops, and unregisters its SIGHUP handler,
    /// when the returned handle is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) -> std::io::Result<Watcher> {
        let hup = Hangup::register()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (active, thread_stop, thread_hup) =
            (Arc::clone(self), Arc::clone(&stop), Arc::clone(&hup.seen));
        // Taken now, not when the thread first runs: a change made right
        // after `watch` returns must be seen as one.
        let mut seen = stamp(self.source());
        let spawned = std::thread::Builder::new()
            .name("policy-watch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    let now = stamp(active.source());
                    let signalled = thread_hup.swap(false, Ordering::Relaxed);
                    if signalled || now != seen {
                        if signalled {
                            tracing::info!("SIGHUP: reloading the policy");
                        }
                        seen = now;
                        active.reload();
                    }
                }
            });
        spawned?;
        Ok(Watcher { stop, _hup: hup })
    }
}

/// Size and modification time of a file source.
fn stamp(source: &PolicySource) -> Option<(u64, SystemTime)> {
    match source {
        PolicySource::Embedded => None,
        PolicySource::File(path) => std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?))),
    }
}

/// A SIGHUP handler that sets a flag, unregistered when dropped.
struct Hangup {
    seen: Arc<AtomicBool>,
    id: SigId,
}

impl Hangup {
    fn register() -> std::io::Result<Self> {
        let seen = Arc::new(AtomicBool::new(false));
        let id = signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&seen))?;
        Ok(Hangup { seen, id })
    }
}

impl Drop for Hangup {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.id);
    }
}

/// Stops the policy watcher, and its SIGHUP handler, when dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    _hup: Hangup,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use signal_hook::consts::SIGHUP;

    #[test]
    fn the_sighup_handler_goes_with_its_watcher() {
        // Keeps the test process alive whatever the code under test does.
        let survivor = Arc::new(AtomicBool::new(false));
        let keep = signal_hook::flag::register(SIGHUP, Arc::clone(&survivor)).unwrap();
        let hup = Hangup::register().unwrap();
        let seen = Arc::clone(&hup.seen);
        signal_hook::low_level::raise(SIGHUP).unwrap();
        assert!(
            seen.swap(false, Ordering::Relaxed),
            "registered: sees SIGHUP"
        );
        drop(hup);
        signal_hook::low_level::raise(SIGHUP).unwrap();
        assert!(survivor.load(Ordering::Relaxed));
        assert!(
            !seen.load(Ordering::Relaxed),
            "dropped: no longer catches SIGHUP"
        );
        signal_hook::low_level::unregister(keep);
    }
}

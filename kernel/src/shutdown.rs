//! Shutdown requests from the toolstack (`xl shutdown`, `xl reboot`, via `control/shutdown`).
//!
//! An app that wants to stop cleanly awaits [`requested`] (typically in a `select` with its work) and returns
//! `request.exit()` from `main`. If no task is waiting when a request arrives (none ever asked, or every
//! [`requested`] future was dropped), the runtime stops the domain at once with the requested reason; so it does
//! when the request woke waiters that were all dropped before one took it (a `select` whose other branch won in
//! the same round): a request is never lost. The bookkeeping is `sirocco_drivers::control::ShutdownWaiters`, tested on the host.

use crate::xenstore::Request;
use crate::Exit;
use core::fmt;
use core::future::Future;
use sirocco_drivers::control::{Delivery, Requested, ShutdownWaiters, WaitersCell};

/// What the toolstack asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `xl shutdown` / `xl destroy`-less poweroff.
    Poweroff,
    /// `xl reboot`.
    Reboot,
}

impl Shutdown {
    /// The exit that carries this request out.
    pub fn exit(self) -> Exit {
        match self {
            Shutdown::Poweroff => Exit::Poweroff,
            Shutdown::Reboot => Exit::Reboot,
        }
    }
}

impl fmt::Display for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Shutdown::Poweroff => "poweroff",
            Shutdown::Reboot => "reboot",
        })
    }
}

static STATE: spin::Mutex<ShutdownWaiters<Shutdown>> = spin::Mutex::new(ShutdownWaiters::new());

/// The one set of waiters, behind its lock.
struct Global;

impl WaitersCell<Shutdown> for Global {
    fn with<R>(&self, f: impl FnOnce(&mut ShutdownWaiters<Shutdown>) -> R) -> R {
        f(&mut STATE.lock())
    }
    fn unhandled(&self, s: Shutdown) {
        log::info!("{s} requested by the toolstack; the tasks waiting for it are gone, stopping now");
        crate::exit(s.exit());
    }
}

/// Called by the xenstore service with an acknowledged request.
pub(crate) fn deliver(req: Request) {
    let s = match Shutdown::try_from_request(req) {
        Some(s) => s,
        None => {
            log::warn!("control/shutdown: {req} is not supported; ignoring it");
            return;
        }
    };
    let delivery = STATE.lock().deliver(s);
    match delivery {
        Delivery::NoWaiter => {
            log::info!("{s} requested by the toolstack; the app does not handle it, stopping now");
            crate::exit(s.exit());
        }
        // Woken with the lock released: a waker may poll at once.
        Delivery::Wake(wakers) => wakers.into_iter().for_each(|w| w.wake()),
    }
}

impl Shutdown {
    fn try_from_request(req: Request) -> Option<Shutdown> {
        match req {
            Request::Poweroff | Request::Halt => Some(Shutdown::Poweroff),
            Request::Reboot => Some(Shutdown::Reboot),
            _ => None,
        }
    }
}

/// Completes when the toolstack asks the domain to stop. The app handles the request while such a future is
/// waiting (from its first poll until it is dropped); several may wait, each gets the request.
pub fn requested() -> impl Future<Output = Shutdown> {
    Requested::new(Global)
}

/// The request received so far, if any.
pub fn pending() -> Option<Shutdown> {
    STATE.lock().request()
}

/// An app that returned normally after a reboot request reboots.
pub(crate) fn adjust(how: Exit) -> Exit {
    match (how, pending()) {
        (Exit::Poweroff, Some(Shutdown::Reboot)) => Exit::Reboot,
        _ => how,
    }
}

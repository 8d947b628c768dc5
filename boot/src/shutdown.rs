//! Shutdown requests from the toolstack (`xl shutdown`, `xl reboot`, via `control/shutdown`).
//!
//! An app that wants to stop cleanly awaits [`requested`] (typically in a `select` with its work) and returns
//! `request.exit()` from `main`. If no task is waiting when a request arrives, the runtime stops the domain at
//! once with the requested reason.

use crate::xenstore::Request;
use crate::Exit;
use core::fmt;
use core::future::poll_fn;
use core::task::{Poll, Waker};

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

struct State {
    request: Option<Shutdown>,
    waker: Option<Waker>,
    listening: bool,
}

static STATE: spin::Mutex<State> = spin::Mutex::new(State { request: None, waker: None, listening: false });

/// Called by the xenstore service with an acknowledged request.
pub(crate) fn deliver(req: Request) {
    let s = match Shutdown::try_from_request(req) {
        Some(s) => s,
        None => {
            log::warn!("control/shutdown: {req} is not supported; ignoring it");
            return;
        }
    };
    let mut st = STATE.lock();
    st.request = Some(s);
    if !st.listening {
        drop(st);
        log::info!("{s} requested by the toolstack; the app does not handle it, stopping now");
        crate::exit(s.exit());
    }
    if let Some(w) = st.waker.take() {
        w.wake();
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

/// Completes when the toolstack asks the domain to stop.
pub async fn requested() -> Shutdown {
    STATE.lock().listening = true;
    poll_fn(|cx| {
        let mut st = STATE.lock();
        match st.request {
            Some(r) => Poll::Ready(r),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    })
    .await
}

/// The request received so far, if any.
pub fn pending() -> Option<Shutdown> {
    STATE.lock().request
}

/// An app that returned normally after a reboot request reboots.
pub(crate) fn adjust(how: Exit) -> Exit {
    match (how, pending()) {
        (Exit::Poweroff, Some(Shutdown::Reboot)) => Exit::Reboot,
        _ => how,
    }
}

//! `xsprobe`: exercises the guest-side machinery against the real toolstack and dom0.
//! - reads its own domid and name from xenstore and writes `data/probe = ok`;
//! - lists its vifs and vbds, and waits (by watch) for each vif's backend to reach InitWait;
//! - grants dom0 a page of text (`data/gref`) and offers dom0 an event channel (`data/evtchn`); answers each
//!   event with a notify back;
//! - watches `data/cmd` and prints every value written there; `revoke` / `revoke2` try to end the grant;
//! - stops cleanly on `xl shutdown`.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
// Event channels, grants and the xenbus front-end logic are under `sirocco::raw` (the `unstable` feature).
use sirocco::raw::evtchn::EventChannel;
use sirocco::raw::frontend::{self, DeviceKind, XenbusState};
use sirocco::raw::grant::{Grant, Page};
use sirocco::xenstore::{self, Watch};
use sirocco::Either;

/// What can stop the probe.
enum Error {
    Xenstore(xenstore::XsError),
    Devices(frontend::FrontendError),
}
impl From<xenstore::XsError> for Error {
    fn from(e: xenstore::XsError) -> Self {
        Error::Xenstore(e)
    }
}
impl From<frontend::FrontendError> for Error {
    fn from(e: frontend::FrontendError) -> Self {
        Error::Devices(e)
    }
}
impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Xenstore(e) => write!(f, "xsprobe: {e}"),
            Error::Devices(e) => write!(f, "xsprobe: {e}"),
        }
    }
}

const SECOND: u64 = 1_000_000_000;

#[sirocco::main]
fn main(_env: &sirocco::Env) -> Result<sirocco::Exit, Error> {
    let domid = xenstore::read("domid")?;
    let name = xenstore::read("name")?;
    sirocco::println!("xsprobe: domid {domid} name {name}");
    let domid: u16 = domid.parse().unwrap_or(0);

    for kind in [DeviceKind::Vif, DeviceKind::Vbd] {
        let devices = xenstore::with(|c| frontend::enumerate(c, kind))?;
        if devices.is_empty() {
            sirocco::println!("xsprobe: no {kind} devices");
        }
        for dev in devices {
            sirocco::println!("xsprobe: {kind} {}: backend {} (domain {})", dev.id, dev.backend_path, dev.backend_id);
            let wanted = [XenbusState::InitWait];
            match xenstore::with(|c| frontend::wait_for_backend(c, &dev, &wanted, 10 * SECOND)) {
                Ok(state) => sirocco::println!("xsprobe: {kind} {} backend is {state:?}", dev.id),
                Err(e) => sirocco::println!("xsprobe: {kind} {}: {e}", dev.id),
            }
        }
    }

    // A page of text granted read-only to dom0, and an event channel dom0 may bind.
    let mut page = Page::new();
    let text = format!("sirocco grant page from domain {domid}\n");
    page.bytes_mut()[..text.len()].copy_from_slice(text.as_bytes());
    let mut grant = match Grant::new(0, page, true) {
        Ok(g) => Some(g),
        Err((_, e)) => panic!("granting a page to dom0: {e}"),
    };
    let channel = EventChannel::alloc_unbound(0).unwrap_or_else(|e| panic!("{e}"));
    let port = channel.port();
    xenstore::write("data/gref", &format!("{}", grant.as_ref().map_or(0, |g| g.gref().0)))?;
    xenstore::write("data/evtchn", &format!("{port}"))?;
    let answer_events = async move {
        let mut channel = channel;
        let mut n = 0u64;
        while channel.wait().await {
            n += 1;
            sirocco::println!("xsprobe: event {n} on port {port}");
            if let Err(e) = channel.notify() {
                sirocco::println!("xsprobe: notify back failed: {e}");
            }
        }
    };
    sirocco::spawn(answer_events);

    let mut cmds = Watch::new("data/cmd")?;
    xenstore::write("data/probe", "ok")?;
    sirocco::block_on(async {
        loop {
            match sirocco::select(cmds.next(), sirocco::shutdown::requested()).await {
                Either::Left(_) => {
                    let Ok(cmd) = xenstore::read_async("data/cmd").await else { continue };
                    if cmd.is_empty() {
                        continue;
                    }
                    sirocco::println!("xsprobe: cmd {cmd}");
                    if cmd.starts_with("revoke") {
                        grant = match grant.take().map(Grant::revoke) {
                            Some(Ok(_page)) => {
                                sirocco::println!("xsprobe: grant revoked; page back in our hands");
                                None
                            }
                            Some(Err((g, e))) => {
                                sirocco::println!("xsprobe: revoke refused: {e}");
                                Some(g)
                            }
                            None => {
                                sirocco::println!("xsprobe: nothing granted");
                                None
                            }
                        };
                    }
                }
                Either::Right(request) => {
                    sirocco::println!("xsprobe: {request} requested; stopping");
                    return Ok(request.exit());
                }
            }
        }
    })
}

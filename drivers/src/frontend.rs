//! The front-end half of a split device's lifecycle (`io/xenbus.h`), over the xenstore client: finding our devices
//! under `device/<kind>/<id>`, reading and writing our `state`, and waiting (with a watch) for the backend's.
//!
//! The usual flow, each step one call here (netfront and blkfront add their ring setup in between):
//! `set_state(Initialising)` -> `wait_for_backend([InitWait, Connected])` -> write ring refs and `set_state(Initialised
//! or Connected)` in one transaction -> `wait_for_backend([Connected])` -> ... -> [`close`] (Closing, wait for the
//! backend to reach Closing or Closed, then Closed).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::xenstore::{
    complete_now, parse_decimal, InlineStr, Request, Tx, Xenstore, XsAsync, XsError, XsPlatform, XsRing,
};

pub mod lifecycle;

/// `enum xenbus_state` (`io/xenbus.h`), written in xenstore as a decimal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum XenbusState {
    /// `XenbusStateUnknown`: also what a missing `state` node reads as.
    Unknown = 0,
    /// `XenbusStateInitialising`.
    Initialising = 1,
    /// `XenbusStateInitWait`: finished early initialisation, waiting for the peer (or hotplug scripts).
    InitWait = 2,
    /// `XenbusStateInitialised`: waiting for a connection from the peer.
    Initialised = 3,
    /// `XenbusStateConnected`.
    Connected = 4,
    /// `XenbusStateClosing`: the device is being closed (error or unplug).
    Closing = 5,
    /// `XenbusStateClosed`.
    Closed = 6,
    /// `XenbusStateReconfiguring`.
    Reconfiguring = 7,
    /// `XenbusStateReconfigured`.
    Reconfigured = 8,
}

impl XenbusState {
    /// Every state, in numeric order.
    pub const ALL: [XenbusState; 9] = [
        XenbusState::Unknown,
        XenbusState::Initialising,
        XenbusState::InitWait,
        XenbusState::Initialised,
        XenbusState::Connected,
        XenbusState::Closing,
        XenbusState::Closed,
        XenbusState::Reconfiguring,
        XenbusState::Reconfigured,
    ];

    /// The state with this number.
    pub fn from_u32(value: u32) -> Option<XenbusState> {
        XenbusState::ALL.get(usize::try_from(value).ok()?).copied()
    }

    /// Parses a `state` node's value: a decimal number from 0 to 8, nothing else.
    pub fn parse(value: &[u8]) -> Option<XenbusState> {
        XenbusState::from_u32(parse_decimal(value)?)
    }

    /// The value to write in xenstore.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"][self as usize]
    }

    /// The name without the `XenbusState` prefix.
    pub fn name(self) -> &'static str {
        [
            "Unknown",
            "Initialising",
            "InitWait",
            "Initialised",
            "Connected",
            "Closing",
            "Closed",
            "Reconfiguring",
            "Reconfigured",
        ][self as usize]
    }

    /// Closing or Closed: the end is going away.
    pub fn is_closing(self) -> bool {
        matches!(self, XenbusState::Closing | XenbusState::Closed)
    }
}

impl fmt::Display for XenbusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), *self as u32)
    }
}

/// A set of [`XenbusState`]s (the states a wait accepts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateSet(u16);

impl StateSet {
    /// The set of `states`.
    pub fn of(states: &[XenbusState]) -> StateSet {
        StateSet(states.iter().fold(0, |bits, &s| bits | 1 << s as u32))
    }

    /// Whether `state` is in the set.
    pub fn contains(self, state: XenbusState) -> bool {
        self.0 & 1 << state as u32 != 0
    }
}

impl fmt::Display for StateSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for state in XenbusState::ALL.iter().filter(|&&s| self.contains(s)) {
            if !first {
                f.write_str(" or ")?;
            }
            f.write_str(state.name())?;
            first = false;
        }
        if first {
            f.write_str("(no state)")?;
        }
        Ok(())
    }
}

/// The device classes we drive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// Network interface (`io/netif.h`), `device/vif/<id>`.
    Vif,
    /// Block device (`io/blkif.h`), `device/vbd/<virtual device number>`.
    Vbd,
}

impl DeviceKind {
    /// The kind with this directory name (`"vif"`, `"vbd"`).
    pub fn from_name(name: &str) -> Option<DeviceKind> {
        match name {
            "vif" => Some(DeviceKind::Vif),
            "vbd" => Some(DeviceKind::Vbd),
            _ => None,
        }
    }

    /// The directory name under `device/`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Vif => "vif",
            DeviceKind::Vbd => "vbd",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which device an error is about: `vif/0`, `vbd/51712`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId {
    /// The class.
    pub kind: DeviceKind,
    /// The id (the name of its directory under `device/<kind>`).
    pub id: u32,
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.id)
    }
}

/// One of our devices, as the toolstack described it in xenstore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The class.
    pub kind: DeviceKind,
    /// The id.
    pub id: u32,
    /// Our directory, relative: `device/<kind>/<id>`.
    pub frontend_path: String,
    /// The backend's directory (absolute, from our `backend` key).
    pub backend_path: String,
    /// The backend's domain (our `backend-id` key).
    pub backend_id: u16,
}

impl DeviceInfo {
    /// The device's name in errors.
    pub fn device(&self) -> DeviceId {
        DeviceId { kind: self.kind, id: self.id }
    }

    /// `<frontend_path>/<key>`.
    pub fn frontend_key(&self, key: &str) -> String {
        format!("{}/{key}", self.frontend_path)
    }

    /// `<backend_path>/<key>`.
    pub fn backend_key(&self, key: &str) -> String {
        format!("{}/{key}", self.backend_path)
    }
}

/// Which end of the device a value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Our own directory.
    Frontend,
    /// The backend's directory.
    Backend,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Frontend => "frontend",
            End::Backend => "backend",
        })
    }
}

/// What went wrong with a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendError {
    /// A xenstore request failed (the error names the request and path).
    Xenstore(XsError),
    /// An entry under `device/<kind>` is not a decimal device id.
    BadDeviceName {
        /// The class listed.
        kind: DeviceKind,
        /// The entry.
        name: InlineStr<16>,
    },
    /// A key the toolstack should have written is missing.
    MissingKey {
        /// The device.
        device: DeviceId,
        /// The key under our directory.
        key: &'static str,
    },
    /// A key holds a value that makes no sense.
    BadValue {
        /// The device.
        device: DeviceId,
        /// The key.
        key: &'static str,
        /// Its value.
        value: InlineStr<24>,
    },
    /// A `state` node holds something other than a state number.
    BadState {
        /// The device.
        device: DeviceId,
        /// Whose `state`.
        end: End,
        /// Its value.
        value: InlineStr<16>,
    },
    /// The backend went to Closing or Closed while we waited for something else.
    BackendClosed {
        /// The device.
        device: DeviceId,
        /// What we were waiting for.
        wanted: StateSet,
        /// What the backend reached.
        state: XenbusState,
    },
    /// The backend did not reach a wanted state in time.
    Timeout {
        /// The device.
        device: DeviceId,
        /// What we were waiting for.
        wanted: StateSet,
        /// The last backend state read (`None`: not read at all, no watch event came).
        last_seen: Option<XenbusState>,
        /// How long we waited, in nanoseconds.
        waited_ns: u64,
    },
}

impl From<XsError> for FrontendError {
    fn from(e: XsError) -> Self {
        FrontendError::Xenstore(e)
    }
}

impl fmt::Display for FrontendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrontendError::Xenstore(e) => write!(f, "{e}"),
            FrontendError::BadDeviceName { kind, name } => {
                write!(f, "device/{kind}/{name}: not a decimal device id; skipping nothing, fix the toolstack config")
            }
            FrontendError::MissingKey { device, key } => write!(
                f,
                "{device}: device/{device}/{key} is missing (the toolstack did not finish setting up the device)"
            ),
            FrontendError::BadValue { device, key, value } => {
                write!(f, "{device}: device/{device}/{key} holds {value:?}, which makes no sense")
            }
            FrontendError::BadState { device, end, value } => {
                write!(f, "{device}: the {end} state holds {value:?}, not a XenbusState number (0-8)")
            }
            FrontendError::BackendClosed { device, wanted, state } => {
                write!(f, "{device}: the backend went to {state} while we waited for {wanted}")
            }
            FrontendError::Timeout { device, wanted, last_seen, waited_ns } => {
                write!(f, "{device}: the backend did not reach {wanted} within {} ms; ", waited_ns / 1_000_000)?;
                match last_seen {
                    Some(state) => write!(f, "its state was {state}"),
                    None => f.write_str("no state was seen"),
                }
            }
        }
    }
}

/// Display already says everything (it includes the wrapped error's message); `source` is there for code that
/// inspects the cause (`downcast_ref`), not for printing a chain.
impl core::error::Error for FrontendError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            FrontendError::Xenstore(e) => Some(e),
            _ => None,
        }
    }
}

/// Lists `device/<kind>/*` and reads each device's `backend` and `backend-id`, ordered by id. No devices (no
/// `device/<kind>` directory) is an empty list.
pub fn enumerate<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    kind: DeviceKind,
) -> Result<Vec<DeviceInfo>, FrontendError> {
    let names = match xs.directory(Tx::NONE, &format!("device/{kind}")) {
        Ok(names) => names,
        Err(e) if e.is_enoent() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut devices = Vec::with_capacity(names.len());
    for name in names {
        let id = parse_decimal(name.as_bytes())
            .ok_or(FrontendError::BadDeviceName { kind, name: InlineStr::from_bytes(name.as_bytes()) })?;
        devices.push(device_info(xs, kind, id)?);
    }
    devices.sort_by_key(|d| d.id);
    Ok(devices)
}

/// Reads device `id` of `kind`'s `backend` and `backend-id` (under `device/<kind>/<id>`). After a resume in a new
/// domain both must be read again: the backend's directory names our new domain id, and the backend may be
/// another domain.
pub fn device_info<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    kind: DeviceKind,
    id: u32,
) -> Result<DeviceInfo, FrontendError> {
    let device = DeviceId { kind, id };
    let frontend_path = format!("device/{kind}/{id}");
    let read_key = |xs: &mut Xenstore<R, P>, key: &'static str| -> Result<Vec<u8>, FrontendError> {
        xs.read_optional(Tx::NONE, &format!("{frontend_path}/{key}"))?.ok_or(FrontendError::MissingKey { device, key })
    };
    let backend = read_key(xs, "backend")?;
    let bad = |key, value: &[u8]| FrontendError::BadValue { device, key, value: InlineStr::from_bytes(value) };
    let backend_path = match String::from_utf8(backend) {
        Ok(path) if !path.is_empty() && !path.ends_with('/') => path,
        Ok(path) => return Err(bad("backend", path.as_bytes())),
        Err(e) => return Err(bad("backend", e.as_bytes())),
    };
    let backend_id = read_key(xs, "backend-id")?;
    let backend_id = parse_decimal(&backend_id)
        .and_then(|id| u16::try_from(id).ok())
        .ok_or_else(|| bad("backend-id", &backend_id))?;
    Ok(DeviceInfo { kind, id, frontend_path, backend_path, backend_id })
}

/// Writes our `state` (in `tx`, or at once with [`Tx::NONE`]). Returns the plain xenstore error so it composes
/// inside [`Xenstore::transaction`].
pub fn set_state<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    tx: Tx,
    dev: &DeviceInfo,
    state: XenbusState,
) -> Result<(), XsError> {
    xs.write(tx, &dev.frontend_key("state"), state.as_str().as_bytes())
}

/// Reads our own `state` (missing: [`XenbusState::Unknown`]).
pub fn read_state<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
) -> Result<XenbusState, FrontendError> {
    complete_now(read_state_at(xs, dev, End::Frontend))
}

/// Reads the backend's `state` (missing: [`XenbusState::Unknown`], as before the backend has set up).
pub fn backend_state<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
) -> Result<XenbusState, FrontendError> {
    complete_now(backend_state_async(xs, dev))
}

/// Watches `<backend>/state` (with a token of its own) until it is one of `wanted`, and returns that state. Fails
/// if the backend goes Closing or Closed (unless wanted) or `timeout_ns` passes. The watch is removed afterwards
/// either way; watch events for other tokens stay queued. Blocking: [`wait_for_backend_async`] is the same for a
/// run loop.
pub fn wait_for_backend<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    wanted: &[XenbusState],
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    complete_now(wait_for_backend_async(xs, dev, wanted, timeout_ns))
}

/// Waits (as [`wait_for_backend`]) for the backend to finish closing: Closed, or gone (a missing `state` reads
/// as Unknown). Closing on the way is expected, not an error. netback takes a frontend back to InitWait (for a
/// reconnect) only from Closed.
pub fn wait_for_backend_closed<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    complete_now(wait_for_backend_closed_async(xs, dev, timeout_ns))
}

/// Closes our end: writes Closing, waits for the backend to reach Closing or Closed (or to vanish: a missing
/// backend `state` reads as Unknown), then writes Closed. Returns the backend state that let us finish.
pub fn close<R: XsRing, P: XsPlatform>(
    xs: &mut Xenstore<R, P>,
    dev: &DeviceInfo,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    complete_now(close_async(xs, dev, timeout_ns))
}

// ----- the same, for a run loop (and, through `complete_now`, the blocking versions above) -----

/// Writes our `state` at once (outside any transaction).
pub async fn set_state_async<X: XsAsync>(xs: &mut X, dev: &DeviceInfo, state: XenbusState) -> Result<(), XsError> {
    let path = dev.frontend_key("state");
    xs.request(Request::Write(Tx::NONE, &path, state.as_str().as_bytes())).await.map(drop)
}

/// [`backend_state`], asynchronously.
pub async fn backend_state_async<X: XsAsync>(xs: &mut X, dev: &DeviceInfo) -> Result<XenbusState, FrontendError> {
    read_state_at(xs, dev, End::Backend).await
}

async fn read_state_at<X: XsAsync>(xs: &mut X, dev: &DeviceInfo, end: End) -> Result<XenbusState, FrontendError> {
    let path = match end {
        End::Frontend => dev.frontend_key("state"),
        End::Backend => dev.backend_key("state"),
    };
    match xs.request(Request::Read(Tx::NONE, &path)).await {
        Ok(value) => XenbusState::parse(&value).ok_or(FrontendError::BadState {
            device: dev.device(),
            end,
            value: InlineStr::from_bytes(&value),
        }),
        Err(e) if e.is_enoent() => Ok(XenbusState::Unknown),
        Err(e) => Err(e.into()),
    }
}

/// [`wait_for_backend`], asynchronously.
pub async fn wait_for_backend_async<X: XsAsync>(
    xs: &mut X,
    dev: &DeviceInfo,
    wanted: &[XenbusState],
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    let token = xs.unique_token(&format!("sirocco-{}-{}-backend-state", dev.kind, dev.id));
    with_backend_watch(xs, dev, StateSet::of(wanted), true, &token, timeout_ns).await
}

/// [`wait_for_backend_closed`], asynchronously.
pub async fn wait_for_backend_closed_async<X: XsAsync>(
    xs: &mut X,
    dev: &DeviceInfo,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    let token = xs.unique_token(&format!("sirocco-{}-{}-backend-closed", dev.kind, dev.id));
    let wanted = StateSet::of(&[XenbusState::Closed, XenbusState::Unknown]);
    with_backend_watch(xs, dev, wanted, false, &token, timeout_ns).await
}

/// [`close`], asynchronously.
pub async fn close_async<X: XsAsync>(
    xs: &mut X,
    dev: &DeviceInfo,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    set_state_async(xs, dev, XenbusState::Closing).await?;
    let wanted = [XenbusState::Closing, XenbusState::Closed, XenbusState::Unknown];
    let backend = wait_for_backend_async(xs, dev, &wanted, timeout_ns).await?;
    set_state_async(xs, dev, XenbusState::Closed).await?;
    Ok(backend)
}

/// Watches the backend's `state` with `token`, runs [`watch_backend_state`], and removes the watch either way.
async fn with_backend_watch<X: XsAsync>(
    xs: &mut X,
    dev: &DeviceInfo,
    wanted: StateSet,
    closing_fails: bool,
    token: &str,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    let path = dev.backend_key("state");
    xs.request(Request::Watch(&path, token)).await?;
    let result = watch_backend_state(xs, dev, wanted, closing_fails, token, timeout_ns).await;
    let unwatched = xs.request(Request::Unwatch(&path, token)).await;
    let state = result?;
    unwatched?;
    Ok(state)
}

/// The watch loop of [`wait_for_backend`]; `closing_fails`: a closing state that is not wanted ends the wait.
async fn watch_backend_state<X: XsAsync>(
    xs: &mut X,
    dev: &DeviceInfo,
    wanted: StateSet,
    closing_fails: bool,
    token: &str,
    timeout_ns: u64,
) -> Result<XenbusState, FrontendError> {
    let start = xs.now_ns();
    let deadline = start.saturating_add(timeout_ns);
    let mut last_seen = None;
    loop {
        // The first event is the watch's initial firing, so the state is read at least once.
        if xs.watch_event_for(token, deadline).await?.is_some() {
            let state = backend_state_async(xs, dev).await?;
            last_seen = Some(state);
            if wanted.contains(state) {
                return Ok(state);
            }
            if closing_fails && state.is_closing() {
                return Err(FrontendError::BackendClosed { device: dev.device(), wanted, state });
            }
        }
        let now = xs.now_ns();
        if now >= deadline {
            return Err(FrontendError::Timeout { device: dev.device(), wanted, last_seen, waited_ns: now - start });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xenstore::fake::{self, FakeClient, Shared};
    use crate::xenstore::{Errno, MsgType};
    use XenbusState::*;

    const BACKEND: &str = "/local/domain/0/backend/vif/7/0";
    const SECOND: u64 = 1_000_000_000;

    fn with_vif() -> (FakeClient, Shared, DeviceInfo) {
        let (mut xs, fake) = fake::client();
        {
            let mut f = fake.borrow_mut();
            f.set("device/vif/0/backend", BACKEND.as_bytes());
            f.set("device/vif/0/backend-id", b"0");
            f.set("device/vif/0/state", b"1");
            f.set(&format!("{BACKEND}/state"), b"1");
        }
        let dev = enumerate(&mut xs, DeviceKind::Vif).unwrap().remove(0);
        (xs, fake, dev)
    }

    #[test]
    fn errors_name_their_cause_as_source() {
        use core::error::Error;
        let xs = XsError::Daemon {
            op: MsgType::Read,
            path: InlineStr::from_bytes(b"device/vif/0/mac"),
            errno: Errno::EACCES,
        };
        let frontend = FrontendError::from(xs);
        assert_eq!(frontend.source().and_then(|e| e.downcast_ref::<XsError>()), Some(&xs));
        assert_eq!(frontend.to_string(), xs.to_string(), "the wrapper adds nothing to say");
        // Two levels: the drivers' configuration errors wrap the frontend's.
        let vif = crate::netfront::ConfigError::from(xs);
        let vbd = crate::blkfront::ConfigError::from(xs);
        for config in [&vif as &dyn Error, &vbd] {
            let cause = config.source().expect("a source");
            assert_eq!(cause.downcast_ref::<FrontendError>(), Some(&frontend));
            assert_eq!(cause.source().and_then(|e| e.downcast_ref::<XsError>()), Some(&xs));
        }
        let device = DeviceId { kind: DeviceKind::Vif, id: 0 };
        assert!(FrontendError::MissingKey { device, key: "mac" }.source().is_none());
        assert!(crate::netfront::ConfigError::NoRxCopy { device }.source().is_none());
    }

    #[test]
    fn states_match_xenbus_h() {
        let numbers: Vec<u32> = XenbusState::ALL.iter().map(|&s| s as u32).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            (Initialising as u32, InitWait as u32, Initialised as u32, Connected as u32, Closing as u32, Closed as u32),
            (1, 2, 3, 4, 5, 6)
        );
        for s in XenbusState::ALL {
            assert_eq!(XenbusState::parse(s.as_str().as_bytes()), Some(s));
        }
        assert_eq!(Connected.to_string(), "Connected (4)");
    }

    #[test]
    fn bad_state_text_is_rejected() {
        for bad in [&b""[..], b"9", b"-1", b" 4", b"4\n", b"04x", b"Connected", b"99999999999"] {
            assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
        }
        let (mut xs, fake, dev) = with_vif();
        fake.borrow_mut().set(&format!("{BACKEND}/state"), b"connected");
        let e = backend_state(&mut xs, &dev).unwrap_err();
        assert_eq!(
            e,
            FrontendError::BadState {
                device: DeviceId { kind: DeviceKind::Vif, id: 0 },
                end: End::Backend,
                value: InlineStr::from_bytes(b"connected")
            }
        );
        assert_eq!(e.to_string(), "vif/0: the backend state holds \"connected\", not a XenbusState number (0-8)");
    }

    #[test]
    fn state_sets_name_their_members() {
        let set = StateSet::of(&[Connected, InitWait]);
        assert!(set.contains(InitWait) && set.contains(Connected) && !set.contains(Closed));
        assert_eq!(set.to_string(), "InitWait or Connected");
    }

    #[test]
    fn enumerates_devices_with_their_backends() {
        let (mut xs, fake) = fake::client();
        {
            let mut f = fake.borrow_mut();
            for id in ["51728", "51712"] {
                f.set(&format!("device/vbd/{id}/backend"), format!("/local/domain/0/backend/vbd/7/{id}").as_bytes());
                f.set(&format!("device/vbd/{id}/backend-id"), b"0");
            }
            f.set("device/vif/0/backend", b"/local/domain/3/backend/vif/7/0");
            f.set("device/vif/0/backend-id", b"3");
        }
        let vbds = enumerate(&mut xs, DeviceKind::Vbd).unwrap();
        assert_eq!(vbds.len(), 2);
        assert_eq!(
            vbds[0],
            DeviceInfo {
                kind: DeviceKind::Vbd,
                id: 51712,
                frontend_path: "device/vbd/51712".into(),
                backend_path: "/local/domain/0/backend/vbd/7/51712".into(),
                backend_id: 0,
            }
        );
        assert_eq!(vbds[1].id, 51728);
        let vifs = enumerate(&mut xs, DeviceKind::Vif).unwrap();
        assert_eq!((vifs.len(), vifs[0].backend_id), (1, 3));
        assert_eq!(vifs[0].backend_key("state"), "/local/domain/3/backend/vif/7/0/state");
    }

    #[test]
    fn device_info_read_again_after_a_resume_follows_the_new_backend() {
        let (mut xs, fake) = fake::client();
        fake.borrow_mut().set("device/vif/0/backend", b"/local/domain/0/backend/vif/7/0");
        fake.borrow_mut().set("device/vif/0/backend-id", b"0");
        let before = device_info(&mut xs, DeviceKind::Vif, 0).unwrap();
        assert_eq!(enumerate(&mut xs, DeviceKind::Vif).unwrap(), std::slice::from_ref(&before));
        // Restored as domain 9, its backend in a driver domain (4).
        fake.borrow_mut().set("device/vif/0/backend", b"/local/domain/4/backend/vif/9/0");
        fake.borrow_mut().set("device/vif/0/backend-id", b"4");
        let after = device_info(&mut xs, DeviceKind::Vif, 0).unwrap();
        assert_eq!(
            (after.backend_key("state").as_str(), after.backend_id),
            ("/local/domain/4/backend/vif/9/0/state", 4)
        );
        assert_eq!(after.frontend_path, before.frontend_path);
        fake.borrow_mut().remove("device/vif/0/backend");
        assert!(matches!(
            device_info(&mut xs, DeviceKind::Vif, 0),
            Err(FrontendError::MissingKey { key: "backend", .. })
        ));
    }

    #[test]
    fn kinds_are_named_as_in_xenstore() {
        for kind in [DeviceKind::Vif, DeviceKind::Vbd] {
            assert_eq!(DeviceKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!((DeviceKind::Vif.as_str(), DeviceKind::Vbd.as_str()), ("vif", "vbd"));
        assert_eq!(DeviceKind::from_name("vkbd"), None);
    }

    #[test]
    fn no_devices_is_an_empty_list() {
        let (mut xs, _fake) = fake::client();
        assert_eq!(enumerate(&mut xs, DeviceKind::Vif).unwrap(), []);
    }

    #[test]
    fn missing_or_bad_keys_name_the_device() {
        let (mut xs, fake) = fake::client();
        fake.borrow_mut().set("device/vif/2/backend-id", b"0");
        let e = enumerate(&mut xs, DeviceKind::Vif).unwrap_err();
        assert_eq!(e, FrontendError::MissingKey { device: DeviceId { kind: DeviceKind::Vif, id: 2 }, key: "backend" });
        assert_eq!(
            e.to_string(),
            "vif/2: device/vif/2/backend is missing (the toolstack did not finish setting up the device)"
        );

        fake.borrow_mut().set("device/vif/2/backend", BACKEND.as_bytes());
        fake.borrow_mut().set("device/vif/2/backend-id", b"70000");
        let e = enumerate(&mut xs, DeviceKind::Vif).unwrap_err();
        assert!(matches!(e, FrontendError::BadValue { key: "backend-id", .. }), "{e:?}");
        assert!(e.to_string().contains("\"70000\""), "{e}");

        fake.borrow_mut().remove("device/vif/2/backend-id");
        let e = enumerate(&mut xs, DeviceKind::Vif).unwrap_err();
        assert!(matches!(e, FrontendError::MissingKey { key: "backend-id", .. }));

        fake.borrow_mut().set("device/vif/eth0/backend", b"x");
        fake.borrow_mut().set("device/vif/2/backend-id", b"0");
        let e = enumerate(&mut xs, DeviceKind::Vif).unwrap_err();
        assert!(matches!(e, FrontendError::BadDeviceName { kind: DeviceKind::Vif, .. }));
    }

    #[test]
    fn enumerate_reports_xenstore_errors() {
        let (mut xs, fake) = fake::client();
        fake.borrow_mut().set("device/vif/0/backend", b"x");
        fake.borrow_mut().eacces.insert(format!("{}/device/vif", fake::HOME));
        let e = enumerate(&mut xs, DeviceKind::Vif).unwrap_err();
        let FrontendError::Xenstore(inner) = e else { panic!("{e:?}") };
        assert_eq!(inner.errno(), Some(Errno::EACCES));
    }

    #[test]
    fn full_lifecycle_with_a_cooperating_backend() {
        let (mut xs, fake, dev) = with_vif();
        let backend_state = format!("{BACKEND}/state");
        {
            let mut f = fake.borrow_mut();
            // Hotplug finishes a little later; the backend follows our Connected and our Closing/Closed.
            f.schedule(5, &backend_state, Some(b"2"));
            f.on_write("device/vif/0/state", b"4", &[(&backend_state, Some(b"4"))], 3);
            f.on_write("device/vif/0/state", b"5", &[(&backend_state, Some(b"5"))], 2);
            f.on_write("device/vif/0/state", b"6", &[(&backend_state, Some(b"6"))], 2);
        }
        set_state(&mut xs, Tx::NONE, &dev, Initialising).unwrap();
        assert_eq!(wait_for_backend(&mut xs, &dev, &[InitWait, Connected], SECOND).unwrap(), InitWait);
        // The connect transaction: ring refs and our state together.
        xs.transaction(|xs, tx| {
            xs.write(tx, &dev.frontend_key("tx-ring-ref"), b"8")?;
            set_state(xs, tx, &dev, Connected)
        })
        .unwrap();
        assert_eq!(read_state(&mut xs, &dev).unwrap(), Connected);
        assert_eq!(wait_for_backend(&mut xs, &dev, &[Connected], SECOND).unwrap(), Connected);
        assert_eq!(close(&mut xs, &dev, SECOND).unwrap(), Closing);
        assert_eq!(read_state(&mut xs, &dev).unwrap(), Closed);
        assert_eq!(fake.borrow().get(&backend_state).unwrap(), b"5");
        // Each wait removed its watch; the tokens were all different.
        assert!(fake.borrow().watches().is_empty());
        let tokens: Vec<_> = fake.borrow().received(MsgType::Watch).into_iter().map(|r| r.payload).collect();
        assert_eq!(tokens.len(), 3);
        assert!(tokens[0] != tokens[1] && tokens[1] != tokens[2]);
        assert!(tokens[0].starts_with(format!("{backend_state}\0sirocco-vif-0-backend-state-").as_bytes()));
    }

    #[test]
    fn silent_backend_times_out_naming_device_wanted_and_last_state() {
        let (mut xs, fake, dev) = with_vif();
        let start = fake.borrow().now;
        let e = wait_for_backend(&mut xs, &dev, &[InitWait, Connected], 2 * SECOND).unwrap_err();
        assert_eq!(
            e,
            FrontendError::Timeout {
                device: dev.device(),
                wanted: StateSet::of(&[InitWait, Connected]),
                last_seen: Some(Initialising),
                waited_ns: 2 * SECOND,
            }
        );
        assert!(fake.borrow().now >= start + 2 * SECOND);
        assert_eq!(
            e.to_string(),
            "vif/0: the backend did not reach InitWait or Connected within 2000 ms; its state was Initialising (1)"
        );
        assert!(fake.borrow().watches().is_empty(), "unwatched after the timeout");
    }

    #[test]
    fn backend_without_a_state_node_times_out_as_unknown() {
        let (mut xs, fake, dev) = with_vif();
        fake.borrow_mut().remove(BACKEND);
        let e = wait_for_backend(&mut xs, &dev, &[Connected], SECOND).unwrap_err();
        assert!(matches!(e, FrontendError::Timeout { last_seen: Some(Unknown), .. }), "{e:?}");
    }

    #[test]
    fn backend_closing_mid_connect_is_an_error() {
        let (mut xs, fake, dev) = with_vif();
        let backend_state = format!("{BACKEND}/state");
        fake.borrow_mut().schedule(2, &backend_state, Some(b"2"));
        fake.borrow_mut().schedule(4, &backend_state, Some(b"5"));
        let e = wait_for_backend(&mut xs, &dev, &[Connected], 10 * SECOND).unwrap_err();
        assert_eq!(
            e,
            FrontendError::BackendClosed { device: dev.device(), wanted: StateSet::of(&[Connected]), state: Closing }
        );
        assert_eq!(e.to_string(), "vif/0: the backend went to Closing (5) while we waited for Connected");
        assert!(fake.borrow().watches().is_empty());
    }

    #[test]
    fn close_waits_for_the_backend_then_writes_closed() {
        let (mut xs, fake, dev) = with_vif();
        let backend_state = format!("{BACKEND}/state");
        fake.borrow_mut().on_write("device/vif/0/state", b"5", &[(&backend_state, Some(b"6"))], 4);
        assert_eq!(close(&mut xs, &dev, SECOND).unwrap(), Closed);
        let states: Vec<_> = fake
            .borrow()
            .received(MsgType::Write)
            .into_iter()
            .filter(|w| w.payload.starts_with(b"device/vif/0/state\0"))
            .map(|w| w.payload[b"device/vif/0/state\0".len()..].to_vec())
            .collect();
        assert_eq!(states, [b"5".to_vec(), b"6".to_vec()]);
    }

    #[test]
    fn close_times_out_if_the_backend_stays_connected() {
        let (mut xs, fake, dev) = with_vif();
        fake.borrow_mut().set(&format!("{BACKEND}/state"), b"4");
        let e = close(&mut xs, &dev, SECOND).unwrap_err();
        assert!(matches!(e, FrontendError::Timeout { last_seen: Some(Connected), .. }), "{e:?}");
        assert_eq!(read_state(&mut xs, &dev).unwrap(), Closing, "Closed is written only once the backend follows");
    }

    #[test]
    fn waiting_keeps_other_watch_events() {
        let (mut xs, fake, dev) = with_vif();
        xs.watch("control/shutdown", "ctl").unwrap();
        fake.borrow_mut().schedule(3, &format!("{BACKEND}/state"), Some(b"4"));
        fake.borrow_mut().schedule(1, "control/shutdown", Some(b"reboot"));
        assert_eq!(wait_for_backend(&mut xs, &dev, &[Connected], SECOND).unwrap(), Connected);
        let events: Vec<_> = core::iter::from_fn(|| xs.next_watch_event()).map(|e| e.token).collect();
        // The initial firing and the change name the same path: one pending event (watches are level-triggered).
        assert_eq!(events, ["ctl"], "the control watch's event, nothing of ours");
    }
}

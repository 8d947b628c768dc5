//! [`Error`]: one error type for applications. Every error a Sirocco call returns converts into it, so an app can
//! write `async fn run() -> Result<(), sirocco::Error>` and use `?` on sockets, disks, xenstore, device set-up and
//! joined tasks alike; [`ErrorContext::context`] puts what the app was doing in front.
//!
//! Its `Display` is the whole story, for a person: what failed, where (the device or the request, when the
//! subsystem knows it) and why, e.g. `binding UDP port 7: network: port already in use` or
//! `disk: vbd/51712: refused: the disk is read-only (mode "r" or VDISK_READONLY)`. `source` gives the subsystem's own error,
//! for code that inspects it (`downcast_ref`); since `Display` already includes its message, walk the chain to
//! inspect, not to print.
//!
//! Every subsystem error an [`Error`] holds is named here too, at a stable path.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use core::fmt;

pub use crate::block::{BlkError, ConnectError, DiskConfigError};
pub use crate::net::{NetError, UpError, VifConfigError, VifError};
pub use crate::xenstore::XsError;
pub use sirocco_boot::evtchn::EvtchnError;
pub use sirocco_boot_logic::cmdline::CmdlineError;
pub use sirocco_drivers::frontend::FrontendError;
pub use sirocco_drivers::grant::GrantError;
pub use sirocco_kernel_logic::metrics::MetricError;
pub use sirocco_kernel_logic::task::JoinError;

/// What went wrong in a Sirocco call, by subsystem; each variant holds the subsystem's own error. New variants
/// may come (a new subsystem): match with a `_` arm. The larger subsystem errors are boxed so that a `Result`
/// stays small in the futures that carry it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A socket operation: bind, connect, accept, read, write, flush, close (the network stack's error).
    Net(NetError),
    /// Networking could not start: a vif, its configuration or its stack (`net::interfaces`,
    /// `net::interfaces_with`); a `VifConfigError` converts into this.
    NetUp(UpError),
    /// A vif could not be listed or connected (`raw::netfront::enumerate`, `raw::netfront::connect`).
    Vif(Box<VifError>),
    /// A disk operation (read, write, flush, discard) failed or was refused, on the device it names.
    Disk(BlkError),
    /// The disks could not be listed or connected (`block::disks`, `block::open`); a `DiskConfigError` converts
    /// into this.
    DiskConnect(Box<ConnectError>),
    /// A xenstore request failed (the error names the request and the path).
    Xenstore(Box<XsError>),
    /// A device's xenbus handshake or keys (the error names the device).
    Frontend(Box<FrontendError>),
    /// Granting a page to another domain failed.
    Grant(GrantError),
    /// Xen refused an event-channel operation.
    EventChannel(EvtchnError),
    /// A spawned task was aborted before it finished (awaiting its `JoinHandle`).
    Task(JoinError),
    /// The command line is unusable.
    Cmdline(CmdlineError),
    /// A metric could not be registered (`metrics::register`: its name is taken).
    Metric(MetricError),
    /// Keys were asked for but the random numbers are not trusted (`rand::require_trusted`).
    Entropy(crate::rand::Untrusted),
    /// A TLS server or client could not be set up: its certificate or key (from the `sirocco-tls` crate, the
    /// `tls` feature: `ConfigError` or `CertError`).
    Tls(Box<dyn core::error::Error + Send + Sync + 'static>),
    /// `error` happened while the application was `doing` something ([`ErrorContext::context`]).
    Context {
        /// What the application was doing ("binding UDP port 7").
        doing: Cow<'static, str>,
        /// What went wrong.
        error: Box<Error>,
    },
}

impl Error {
    /// This error, with what the application was doing in front of its message.
    pub fn context(self, doing: impl Into<Cow<'static, str>>) -> Error {
        Error::Context { doing: doing.into(), error: Box::new(self) }
    }

    /// The error under every [`Error::Context`]: the one to match on.
    pub fn without_context(&self) -> &Error {
        let mut e = self;
        while let Error::Context { error, .. } = e {
            e = error;
        }
        e
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Where the subsystem's message already says which subsystem it is ("xenstore read ...", "event channel
        // ...", "command line ..."), it stands alone.
        match self {
            Error::Net(e) => write!(f, "network: {e}"),
            Error::NetUp(e) => write!(f, "starting the network: {e}"),
            Error::Vif(e) => write!(f, "bringing up a vif: {e}"),
            Error::Disk(e) => write!(f, "disk: {e}"),
            Error::DiskConnect(e) => write!(f, "connecting the disks: {e}"),
            Error::Xenstore(e) => write!(f, "{e}"),
            Error::Frontend(e) => write!(f, "device handshake: {e}"),
            Error::Grant(e) => write!(f, "grant table: {e}"),
            Error::EventChannel(e) => write!(f, "{e}"),
            Error::Task(e) => write!(f, "task: {e}"),
            Error::Cmdline(e) => write!(f, "{e}"),
            Error::Metric(e) => write!(f, "{e}"),
            Error::Entropy(e) => write!(f, "{e}"),
            Error::Tls(e) => write!(f, "{e}"),
            Error::Context { doing, error } => write!(f, "{doing}: {error}"),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(match self {
            Error::Net(e) => e,
            Error::NetUp(e) => e,
            Error::Vif(e) => &**e,
            Error::Disk(e) => e,
            Error::DiskConnect(e) => &**e,
            Error::Xenstore(e) => &**e,
            Error::Frontend(e) => &**e,
            Error::Grant(e) => e,
            Error::EventChannel(e) => e,
            Error::Task(e) => e,
            Error::Cmdline(e) => e,
            Error::Metric(e) => e,
            Error::Entropy(e) => e,
            Error::Tls(e) => &**e,
            Error::Context { error, .. } => &**error,
        })
    }
}

/// `From<$ty>`: the subsystem error into its variant (boxed where the variant boxes it).
macro_rules! from {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl From<$ty> for Error {
            fn from(e: $ty) -> Error {
                Error::$variant(e.into())
            }
        }
    )*};
}

from! {
    NetError => Net,
    UpError => NetUp,
    VifError => Vif,
    BlkError => Disk,
    ConnectError => DiskConnect,
    XsError => Xenstore,
    FrontendError => Frontend,
    GrantError => Grant,
    EvtchnError => EventChannel,
    JoinError => Task,
    CmdlineError => Cmdline,
    MetricError => Metric,
    crate::rand::Untrusted => Entropy,
}

/// A vif setting that cannot be used (`VifConfigs::from_cmdline`...): networking cannot start with it.
impl From<VifConfigError<'_>> for Error {
    fn from(e: VifConfigError<'_>) -> Error {
        Error::NetUp(e.into())
    }
}

/// A disk setting that cannot be used (`DiskConfig::from_cmdline`...): the disk cannot be connected with it.
impl From<DiskConfigError> for Error {
    fn from(e: DiskConfigError) -> Error {
        Error::DiskConnect(Box::new(e.into()))
    }
}

/// `.context(...)` on the result of any Sirocco call: what the application was doing, put in front of the
/// error's message (`UdpSocket::bind(&net, 7).context("binding UDP port 7")?`).
pub trait ErrorContext<T> {
    /// The error converted to [`Error`], with `doing` in front.
    fn context(self, doing: impl Into<Cow<'static, str>>) -> Result<T, Error>;

    /// As [`ErrorContext::context`], with the text made only on failure (for `format!`).
    fn with_context<S: Into<Cow<'static, str>>>(self, doing: impl FnOnce() -> S) -> Result<T, Error>;
}

impl<T, E: Into<Error>> ErrorContext<T> for Result<T, E> {
    fn context(self, doing: impl Into<Cow<'static, str>>) -> Result<T, Error> {
        self.map_err(|e| e.into().context(doing))
    }

    fn with_context<S: Into<Cow<'static, str>>>(self, doing: impl FnOnce() -> S) -> Result<T, Error> {
        self.map_err(|e| e.into().context(doing()))
    }
}

// Errors cross tasks (a task's result sent over a channel): keep that possible.
const _: () = {
    const fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Error>()
};

//! The backend's side of the connect sequence, played in the fake xenstored as Linux's blkback plays it: at probe
//! it writes its transport parameters and goes to InitWait; when our state becomes Initialised it writes the disk's
//! geometry and features and then its state Connected, all a few daemon steps later.

use super::DiskSpec;
use crate::frontend::{self, DeviceInfo, DeviceKind};
use crate::xenstore::fake::{self, FakeClient, Shared};

/// The backend's directory (we are domain 7; the backend is dom0).
pub const BACKEND: &str = "/local/domain/0/backend/vbd/7/51712";
/// Our directory.
pub const FRONTEND: &str = "device/vbd/51712";
/// Daemon steps between our Initialised and the backend's Connected.
pub const CONNECT_DELAY: u64 = 3;

/// A xenstore client, the fake daemon, and the vbd as enumerated, the backend in InitWait with `spec`'s transport
/// parameters, ready to answer our Initialised.
pub fn with_vbd(spec: &DiskSpec) -> (FakeClient, Shared, DeviceInfo) {
    let (mut xs, fake) = fake::client();
    {
        let mut f = fake.borrow_mut();
        f.set(&format!("{FRONTEND}/backend"), BACKEND.as_bytes());
        f.set(&format!("{FRONTEND}/backend-id"), b"0");
        f.set(&format!("{FRONTEND}/virtual-device"), b"51712");
        f.set(&format!("{FRONTEND}/device-type"), b"disk");
        f.set(&format!("{FRONTEND}/state"), b"1");
        f.set(&format!("{BACKEND}/mode"), if spec.read_only { b"r" } else { b"w" });
        for (key, value) in probe_keys(spec) {
            f.set(&format!("{BACKEND}/{key}"), value.as_bytes());
        }
        f.set(&format!("{BACKEND}/state"), b"2");
        let connect: Vec<(String, String)> = connect_keys(spec)
            .into_iter()
            .chain([("state", "4".to_string())])
            .map(|(key, value)| (format!("{BACKEND}/{key}"), value))
            .collect();
        let then: Vec<(&str, Option<&[u8]>)> =
            connect.iter().map(|(path, value)| (path.as_str(), Some(value.as_bytes()))).collect();
        f.on_write(&format!("{FRONTEND}/state"), b"3", &then, CONNECT_DELAY);
    }
    let dev = frontend::enumerate(&mut xs, DeviceKind::Vbd).unwrap().remove(0);
    (xs, fake, dev)
}

/// What blkback writes at probe, before InitWait (absent when 0, as an older backend would).
pub fn probe_keys(spec: &DiskSpec) -> Vec<(&'static str, String)> {
    let mut keys = vec![("multi-queue-max-queues", "4".to_string())];
    if spec.max_ring_page_order > 0 {
        keys.push(("max-ring-page-order", spec.max_ring_page_order.to_string()));
    }
    if spec.max_indirect_segments > 0 {
        keys.push(("feature-max-indirect-segments", spec.max_indirect_segments.to_string()));
    }
    keys
}

/// What blkback writes in its connect transaction, before Connected.
pub fn connect_keys(spec: &DiskSpec) -> Vec<(&'static str, String)> {
    let flag = |on: bool| if on { "1" } else { "0" }.to_string();
    let info = spec.disk_info();
    vec![
        ("feature-flush-cache", flag(spec.flush_cache)),
        ("feature-barrier", flag(spec.barrier)),
        ("feature-discard", flag(spec.discard)),
        ("discard-granularity", spec.sector_size.to_string()),
        ("discard-alignment", "0".into()),
        ("discard-secure", "0".into()),
        ("feature-persistent", flag(spec.persistent)),
        ("sectors", info.sectors.to_string()),
        ("info", info.info.to_string()),
        ("sector-size", spec.sector_size.to_string()),
        ("physical-sector-size", spec.sector_size.to_string()),
    ]
}

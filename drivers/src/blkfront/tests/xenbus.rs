//! The connect sequence against the fake xenstored, with the fake blkback's xenstore side.

use super::*;
use crate::blkfront::fake::xenbus::{with_vbd, BACKEND, FRONTEND};
use crate::blkfront::fake::{harness, PORT};
use crate::blkfront::*;
use crate::frontend::{self, DeviceKind, FrontendError, XenbusState};
use crate::grant::GrantRef;
use crate::xenstore::fake::Shared;
use crate::xenstore::MsgType;

const SECOND: u64 = 1_000_000_000;

/// The keys and values written, each with its transaction id.
fn writes(fake: &Shared) -> Vec<(u32, String)> {
    fake.borrow()
        .received(MsgType::Write)
        .into_iter()
        .map(|w| (w.tx_id, String::from_utf8(w.payload).unwrap().replace('\0', "=")))
        .collect()
}

/// Negotiates as the platform does, builds the harness for it, and connects.
fn connect_with(spec: DiskSpec, options: Options) -> (Harness, Shared, Result<DiskInfo, ConfigError>) {
    let (mut xs, fake, dev) = with_vbd(&spec);
    assert_eq!(frontend::backend_state(&mut xs, &dev).unwrap(), XenbusState::InitWait);
    let params = read_backend_params(&mut xs, &dev).unwrap();
    assert_eq!(params, spec.backend_params());
    let mut h = harness(spec, options);
    assert_eq!(h.blk.transport(), Transport::negotiate(&params, options.limits));
    let refs = h.ring_refs.clone();
    let result = connect(&mut xs, &dev, &mut h.blk, &refs, PORT, SECOND);
    (h, fake, result)
}

#[test]
fn a_single_page_ring_is_connected_in_one_transaction() {
    let spec = DiskSpec::basic(512, DISK);
    let (mut h, fake, result) = connect_with(spec, Options::default());
    assert_eq!(result.unwrap(), spec.disk_info());
    let all = writes(&fake);
    let values: Vec<&str> = all.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(
        values,
        [
            "device/vbd/51712/ring-ref=50",
            "device/vbd/51712/event-channel=17",
            "device/vbd/51712/protocol=x86_64-abi",
            "device/vbd/51712/feature-persistent=1",
            "device/vbd/51712/state=3",
            "device/vbd/51712/state=4",
        ]
    );
    let tx = all[0].0;
    assert!(tx != 0 && all[..5].iter().all(|(t, _)| *t == tx), "one transaction: {all:?}");
    assert_eq!(all[5].0, 0, "Connected is written once the backend is, outside the transaction");
    let f = fake.borrow();
    assert_eq!((f.received(MsgType::TransactionStart).len(), f.commits), (1, 1));
    assert_eq!(f.get(&format!("{FRONTEND}/state")).unwrap(), b"4");
    assert!(!f.exists(&format!("{FRONTEND}/ring-page-order")));
    drop(f);
    assert_eq!(h.blk.phase(), Phase::Connected);
    assert_eq!((h.blk.ring_size(), h.blk.indirect_segments()), (32, 0));
    write_ok(&mut h, 0, &pattern(4096, 1));
}

#[test]
fn a_sixteen_page_ring_writes_its_order_and_every_ref() {
    let (h, fake, result) = connect_with(linux512(), Options::default());
    result.unwrap();
    let values: Vec<String> = writes(&fake).into_iter().map(|(_, v)| v).collect();
    let mut expected = vec!["device/vbd/51712/ring-page-order=4".to_string()];
    expected.extend((0..16).map(|i| format!("device/vbd/51712/ring-ref{i}={}", 50 + i)));
    assert_eq!(values[..17], expected);
    assert!(!values.iter().any(|v| v.starts_with("device/vbd/51712/ring-ref=")), "no single-page key");
    assert_eq!((h.blk.transport().ring_pages(), h.blk.ring_size(), h.blk.indirect_segments()), (16, 512, 256));
}

#[test]
fn the_connect_transaction_is_redone_on_eagain() {
    let spec = DiskSpec::basic(512, DISK);
    let (mut xs, fake, dev) = with_vbd(&spec);
    fake.borrow_mut().eagain_commits = 1;
    write_connect_keys(&mut xs, &dev, &[GrantRef(50)], PORT).unwrap();
    let all = writes(&fake);
    assert_eq!(all.len(), 10, "all five, twice");
    assert_ne!(all[0].0, all[5].0, "in a fresh transaction");
    assert!(all[5..].iter().all(|(t, _)| *t == all[5].0));
    let f = fake.borrow();
    assert_eq!(f.commits, 2);
    assert_eq!(f.get(&format!("{FRONTEND}/ring-ref")).unwrap(), b"50");
}

#[test]
fn ring_refs_must_match_the_ring() {
    let spec = linux512();
    let (mut xs, _fake, dev) = with_vbd(&spec);
    let e = write_connect_keys(&mut xs, &dev, &[GrantRef(1), GrantRef(2), GrantRef(3)], PORT).unwrap_err();
    assert_eq!(e, ConfigError::RingRefs { device: dev.device(), given: 3, pages: 4 });
    assert_eq!(e.to_string(), "vbd/51712: 3 ring refs given for a 4-page ring (one per page, a power of two)");
    let mut h = harness(spec, Options::default());
    let e = connect(&mut xs, &dev, &mut h.blk, &[GrantRef(1)], PORT, SECOND).unwrap_err();
    assert_eq!(e, ConfigError::RingRefs { device: dev.device(), given: 1, pages: 16 });
}

#[test]
fn transport_negotiation_takes_the_smaller_side() {
    let ours = Limits::default();
    let cases = [
        // (backend order, backend indirect segments, our limits) -> (order, indirect)
        ((0, 0), ours, (0, 0)),
        ((6, 4096), ours, (4, 256)),
        ((2, 128), ours, (2, 128)),
        ((4, 11), ours, (4, 0)),
        ((4, 12), ours, (4, 12)),
        ((4, 256), Limits { max_ring_page_order: 1, max_indirect_segments: 64 }, (1, 64)),
        ((4, 8192), Limits { max_ring_page_order: 9, max_indirect_segments: 9000 }, (4, 4096)),
    ];
    for ((order, segments), limits, (want_order, want_segments)) in cases {
        let params = BackendParams { max_ring_page_order: order, max_indirect_segments: segments, max_queues: 0 };
        let t = Transport::negotiate(&params, limits);
        assert_eq!((t.ring_page_order, t.indirect_segments), (want_order, want_segments), "{params:?} {limits:?}");
    }
    let t = Transport { ring_page_order: 2, indirect_segments: 1024 };
    assert_eq!((t.ring_pages(), t.ring_size(), t.indirect_pages_per_request()), (4, 128, 2));
    assert_eq!(Transport::BASIC.ring_size(), 32);
}

#[test]
fn the_command_line_caps_segments_per_request_and_a_bad_value_is_an_error() {
    let limits = |v: Option<&'static str>| Limits::from_lookup(|k| (k == "blk-segments").then_some(v).flatten());
    assert_eq!(limits(None), Ok(Limits::default()));
    assert_eq!(limits(Some("64")).map(|l| l.max_indirect_segments), Ok(64));
    assert_eq!(limits(Some("11")).map(|l| l.max_indirect_segments), Ok(11));
    assert_eq!(limits(Some("256")).map(|l| l.max_indirect_segments), Ok(256));
    // 11 segments fit a direct request: no indirect requests at all.
    let params = BackendParams { max_ring_page_order: 4, max_indirect_segments: 256, max_queues: 0 };
    assert_eq!(Transport::negotiate(&params, limits(Some("11")).unwrap()).indirect_segments, 0);
    assert_eq!(Transport::negotiate(&params, limits(Some("32")).unwrap()).indirect_segments, 32);
    for bad in ["10", "257", "0", "-1", "many", ""] {
        let e = limits(Some(bad)).unwrap_err();
        assert_eq!(e, format!("blk-segments={bad}: expected a number of pages from 11 to 256"));
    }
}

#[test]
fn geometry_is_read_only_once_the_backend_is_connected() {
    let spec = linux4k();
    let (mut xs, _fake, dev) = with_vbd(&spec);
    // At InitWait blkback has not written the disk yet.
    let e = read_disk_info(&mut xs, &dev).unwrap_err();
    assert_eq!(e, ConfigError::MissingBackendKey { device: dev.device(), key: "sectors" });
    assert_eq!(e.to_string(), "vbd/51712: the backend did not write sectors (it must by the time it is Connected)");
    let mut h = harness(spec, Options::default());
    let refs = h.ring_refs.clone();
    let disk = connect(&mut xs, &dev, &mut h.blk, &refs, PORT, SECOND).unwrap();
    assert_eq!((disk.sectors, disk.sector_size, disk.physical_sector_size), (DISK / 512, 4096, 4096));
    assert_eq!((disk.capacity(), disk.logical_sectors()), (DISK, DISK / 4096));
    assert_eq!(disk.flush_method(), Some(FlushMethod::FlushDiskCache));
    assert!(disk.features.discard && disk.features.persistent && !disk.read_only);
    assert_eq!(disk.features.discard_granularity, 4096);
    assert_eq!(h.blk.disk(), Some(&disk));
}

#[test]
fn missing_feature_keys_mean_zero() {
    let spec = DiskSpec::basic(512, DISK);
    let (mut xs, fake, dev) = with_vbd(&spec);
    for key in ["feature-flush-cache", "feature-barrier", "feature-discard", "feature-persistent", "mode"] {
        fake.borrow_mut().set(&format!("{BACKEND}/{key}"), b"1");
        fake.borrow_mut().remove(&format!("{BACKEND}/{key}"));
    }
    for (key, value) in crate::blkfront::fake::xenbus::connect_keys(&spec) {
        if !key.starts_with("feature-") && !key.starts_with("discard-") {
            fake.borrow_mut().set(&format!("{BACKEND}/{key}"), value.as_bytes());
        }
    }
    let disk = read_disk_info(&mut xs, &dev).unwrap();
    assert_eq!(disk.features, DiskFeatures { discard_granularity: 512, ..DiskFeatures::default() });
    assert_eq!(disk.flush_method(), None);
    assert!(!disk.read_only, "no mode and no VDISK_READONLY: writable");
    assert_eq!(read_backend_params(&mut xs, &dev).unwrap(), BackendParams { max_queues: 4, ..Default::default() });
}

#[test]
fn read_only_comes_from_mode_or_info() {
    let spec = linux512();
    let (mut xs, fake, dev) = with_vbd(&spec);
    for (key, value) in crate::blkfront::fake::xenbus::connect_keys(&spec) {
        fake.borrow_mut().set(&format!("{BACKEND}/{key}"), value.as_bytes());
    }
    assert!(!read_disk_info(&mut xs, &dev).unwrap().read_only);
    fake.borrow_mut().set(&format!("{BACKEND}/mode"), b"r");
    assert!(read_disk_info(&mut xs, &dev).unwrap().read_only);
    fake.borrow_mut().set(&format!("{BACKEND}/mode"), b"w!");
    assert!(!read_disk_info(&mut xs, &dev).unwrap().read_only, "blkback: writable if the mode has a 'w'");
    fake.borrow_mut().set(&format!("{BACKEND}/info"), b"7");
    let disk = read_disk_info(&mut xs, &dev).unwrap();
    assert!(disk.read_only && disk.is_cdrom() && disk.is_removable());
}

#[test]
fn bad_geometry_names_the_key_and_value() {
    let spec = linux512();
    let (mut xs, fake, dev) = with_vbd(&spec);
    for (key, value) in crate::blkfront::fake::xenbus::connect_keys(&spec) {
        fake.borrow_mut().set(&format!("{BACKEND}/{key}"), value.as_bytes());
    }
    let cases: &[(&str, &[u8], &str)] = &[
        ("sector-size", b"1000", "a power of two from 512 to 4096"),
        ("sector-size", b"8192", "a power of two from 512 to 4096"),
        ("sector-size", b"256", "a power of two from 512 to 4096"),
        ("sectors", b"0", "a non-zero size in 512-byte sectors"),
        ("sectors", b"99999999999999999999", "a decimal number"),
        ("sectors", b"-5", "a decimal number"),
        ("physical-sector-size", b"768", "a multiple of sector-size"),
        ("info", b"4294967296", "a 32-bit number"),
        ("mode", b"x", "\"r\" or \"w\""),
        ("feature-discard", b"yes", "a decimal number"),
    ];
    for &(key, value, expected) in cases {
        let path = format!("{BACKEND}/{key}");
        let good = fake.borrow().get(&path).unwrap();
        fake.borrow_mut().set(&path, value);
        let e = read_disk_info(&mut xs, &dev).unwrap_err();
        match e {
            ConfigError::BadBackendValue { key: k, expected: x, .. } => assert_eq!((k, x), (key, expected), "{e}"),
            other => panic!("{key}={value:?}: {other:?}"),
        }
        fake.borrow_mut().set(&path, &good);
    }
    // A 4096-byte-sector disk whose 512-byte sector count is not a whole number of its sectors.
    fake.borrow_mut().set(&format!("{BACKEND}/sector-size"), b"4096");
    fake.borrow_mut().set(&format!("{BACKEND}/sectors"), b"9");
    let e = read_disk_info(&mut xs, &dev).unwrap_err();
    assert_eq!(
        e.to_string(),
        "vbd/51712: the backend's sectors holds \"9\"; expected a whole number of sector-size sectors (in 512-byte \
         units)"
    );
    fake.borrow_mut().set(&format!("{BACKEND}/sectors"), b"16");
    fake.borrow_mut().set(&format!("{BACKEND}/physical-sector-size"), b"4096");
    fake.borrow_mut().remove(&format!("{BACKEND}/info"));
    let e = read_disk_info(&mut xs, &dev).unwrap_err();
    assert_eq!(e, ConfigError::MissingBackendKey { device: dev.device(), key: "info" });
}

#[test]
fn a_backend_that_never_connects_leaves_the_device_unconnected() {
    // A backend in InitWait that never answers our Initialised.
    let (mut xs, fake) = crate::xenstore::fake::client();
    {
        let mut f = fake.borrow_mut();
        f.set(&format!("{FRONTEND}/backend"), BACKEND.as_bytes());
        f.set(&format!("{FRONTEND}/backend-id"), b"0");
        f.set(&format!("{BACKEND}/state"), b"2");
    }
    let dev = frontend::enumerate(&mut xs, DeviceKind::Vbd).unwrap().remove(0);
    let mut h = harness(linux512(), Options::default());
    let refs = h.ring_refs.clone();
    let e = connect(&mut xs, &dev, &mut h.blk, &refs, PORT, SECOND).unwrap_err();
    assert!(matches!(e, ConfigError::Frontend(FrontendError::Timeout { .. })), "{e:?}");
    assert_eq!(fake.borrow().get(&format!("{FRONTEND}/state")).unwrap(), b"3", "still Initialised");
    assert_eq!(h.blk.phase(), Phase::Initialising);
    let refused = h.blk.submit_read(0, 512).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::NotConnected);
    assert_eq!(refused.to_string(), "vbd/51712: refused: the backend is not connected yet");
    assert_eq!(h.back.process(), 0, "nothing reached the ring");
}

//! `unplug` against a fake device model that answers like QEMU's Xen platform device and records every port
//! access in order, so each test asserts the exact sequence the protocol requires.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    InB(u16, u8),
    InW(u16, u16),
    OutW(u16, u16),
    OutL(u16, u32),
}
use Access::*;

#[derive(Clone, Copy)]
enum Model {
    /// No platform device: the ports float, reads give all ones.
    Absent,
    /// A device model reporting this protocol version; `blacklist` rejects the given (product, build).
    Present { protocol: u8, blacklist: Option<(u16, u32)> },
}

struct FakeDeviceModel {
    model: Model,
    log: Vec<Access>,
    product: Option<u16>,
    build: Option<u32>,
    unplugged: Option<u16>,
}

impl FakeDeviceModel {
    fn new(model: Model) -> FakeDeviceModel {
        FakeDeviceModel { model, log: vec![], product: None, build: None, unplugged: None }
    }

    fn blacklisted(&self) -> bool {
        match self.model {
            Model::Present { blacklist: Some(entry), .. } => {
                self.product.zip(self.build).is_some_and(|written| written == entry)
            }
            _ => false,
        }
    }
}

impl PortIo for FakeDeviceModel {
    fn inb(&mut self, port: u16) -> u8 {
        let v = match (self.model, port) {
            (Model::Present { protocol, .. }, PROTOCOL_PORT) => protocol,
            _ => 0xff,
        };
        self.log.push(InB(port, v));
        v
    }

    fn inw(&mut self, port: u16) -> u16 {
        let v = match (self.model, port) {
            (Model::Present { .. }, MAGIC_PORT) if self.blacklisted() => BLACKLISTED_MAGIC,
            (Model::Present { .. }, MAGIC_PORT) => MAGIC,
            _ => 0xffff,
        };
        self.log.push(InW(port, v));
        v
    }

    fn outw(&mut self, port: u16, v: u16) {
        self.log.push(OutW(port, v));
        match (self.model, port) {
            (Model::Present { .. }, PROTOCOL_PORT) => self.product = Some(v),
            (Model::Present { .. }, MAGIC_PORT) => self.unplugged = Some(v),
            _ => {}
        }
    }

    fn outl(&mut self, port: u16, v: u32) {
        self.log.push(OutL(port, v));
        if let (Model::Present { .. }, MAGIC_PORT) = (self.model, port) {
            self.build = Some(v);
        }
    }
}

const MASK: u16 = UNPLUG_ALL_IDE_DISKS | UNPLUG_ALL_NICS;
const BUILD: u32 = 0x0001_0203;

#[test]
fn constants_match_the_protocol_document() {
    assert_eq!((MAGIC_PORT, PROTOCOL_PORT, MAGIC, BLACKLISTED_MAGIC), (0x10, 0x12, 0x49d2, 0xd249));
    assert_eq!(MAGIC.swap_bytes(), BLACKLISTED_MAGIC);
    assert_eq!([UNPLUG_ALL_IDE_DISKS, UNPLUG_ALL_NICS, UNPLUG_AUX_IDE_DISKS, UNPLUG_NVME_DISKS], [1, 2, 4, 8]);
    // pvdrivers.h: "experimental".
    assert_eq!(SIROCCO_PRODUCT, 0xffff);
}

#[test]
fn no_platform_device() {
    let mut dm = FakeDeviceModel::new(Model::Absent);
    assert_eq!(unplug(&mut dm, MASK, SIROCCO_PRODUCT, BUILD), Unplug::NoPlatformDevice);
    assert_eq!(dm.log, [InW(0x10, 0xffff)]);
}

#[test]
fn protocol_0_unplugs_without_identifying() {
    let mut dm = FakeDeviceModel::new(Model::Present { protocol: 0, blacklist: None });
    assert_eq!(unplug(&mut dm, MASK, SIROCCO_PRODUCT, BUILD), Unplug::Done { protocol: 0 });
    assert_eq!(dm.log, [InW(0x10, 0x49d2), InB(0x12, 0), OutW(0x10, 3)]);
    assert_eq!((dm.product, dm.build, dm.unplugged), (None, None, Some(3)));
}

#[test]
fn protocol_1_accepting() {
    let mut dm = FakeDeviceModel::new(Model::Present { protocol: 1, blacklist: None });
    assert_eq!(unplug(&mut dm, MASK, SIROCCO_PRODUCT, BUILD), Unplug::Done { protocol: 1 });
    assert_eq!(
        dm.log,
        [
            InW(0x10, 0x49d2),
            InB(0x12, 1),
            OutW(0x12, 0xffff),
            OutL(0x10, 0x0001_0203),
            InW(0x10, 0x49d2),
            OutW(0x10, 3),
        ]
    );
    assert_eq!((dm.product, dm.build, dm.unplugged), (Some(0xffff), Some(BUILD), Some(3)));
}

#[test]
fn protocol_1_blacklisting() {
    let mut dm = FakeDeviceModel::new(Model::Present { protocol: 1, blacklist: Some((SIROCCO_PRODUCT, BUILD)) });
    assert_eq!(unplug(&mut dm, MASK, SIROCCO_PRODUCT, BUILD), Unplug::Refused);
    assert_eq!(
        dm.log,
        [InW(0x10, 0x49d2), InB(0x12, 1), OutW(0x12, 0xffff), OutL(0x10, 0x0001_0203), InW(0x10, 0xd249)]
    );
    assert_eq!(dm.unplugged, None, "a refused driver must not unplug anything");
}

#[test]
fn blacklist_is_per_build() {
    // The same product with another build number is not refused.
    let mut dm = FakeDeviceModel::new(Model::Present { protocol: 1, blacklist: Some((SIROCCO_PRODUCT, BUILD + 1)) });
    assert_eq!(unplug(&mut dm, UNPLUG_ALL_NICS, SIROCCO_PRODUCT, BUILD), Unplug::Done { protocol: 1 });
    assert_eq!(dm.unplugged, Some(UNPLUG_ALL_NICS));
}

#[test]
fn any_change_of_magic_is_a_refusal() {
    /// Answers the first magic read correctly and every later one with garbage.
    struct Flaky(Vec<Access>);
    impl PortIo for Flaky {
        fn inb(&mut self, port: u16) -> u8 {
            self.0.push(InB(port, 1));
            1
        }
        fn inw(&mut self, port: u16) -> u16 {
            let v = if self.0.is_empty() { MAGIC } else { 0x1234 };
            self.0.push(InW(port, v));
            v
        }
        fn outw(&mut self, port: u16, v: u16) {
            self.0.push(OutW(port, v));
        }
        fn outl(&mut self, port: u16, v: u32) {
            self.0.push(OutL(port, v));
        }
    }
    let mut io = Flaky(vec![]);
    assert_eq!(unplug(&mut io, MASK, 3, 7), Unplug::Refused);
    assert_eq!(io.0, [InW(0x10, 0x49d2), InB(0x12, 1), OutW(0x12, 3), OutL(0x10, 7), InW(0x10, 0x1234)]);
}

#[test]
fn later_protocol_versions_identify_like_version_1() {
    let mut dm = FakeDeviceModel::new(Model::Present { protocol: 2, blacklist: None });
    let all = UNPLUG_ALL_IDE_DISKS | UNPLUG_ALL_NICS | UNPLUG_AUX_IDE_DISKS | UNPLUG_NVME_DISKS;
    assert_eq!(unplug(&mut dm, all, SIROCCO_PRODUCT, 0), Unplug::Done { protocol: 2 });
    assert_eq!(
        dm.log,
        [InW(0x10, 0x49d2), InB(0x12, 2), OutW(0x12, 0xffff), OutL(0x10, 0), InW(0x10, 0x49d2), OutW(0x10, 0xf)]
    );
}

#[test]
fn empty_mask_is_still_written() {
    // Writing 0 is harmless and keeps the sequence the same for every mask.
    let mut dm = FakeDeviceModel::new(Model::Present { protocol: 1, blacklist: None });
    assert_eq!(unplug(&mut dm, 0, SIROCCO_PRODUCT, BUILD), Unplug::Done { protocol: 1 });
    assert_eq!(dm.log.last(), Some(&OutW(0x10, 0)));
}

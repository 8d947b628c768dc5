//! `find_xen` against tables of CPUID answers: Xen alone, Xen behind Viridian, KVM, bare metal.

use super::*;
use std::collections::BTreeMap;

/// A CPU as CPUID shows it: the listed leaves, and `other` for every leaf not listed. Records the leaves asked.
struct FakeCpu {
    leaves: BTreeMap<u32, [u32; 4]>,
    other: [u32; 4],
    asked: Vec<u32>,
}

impl FakeCpu {
    /// A guest CPU: leaf 1 says a hypervisor is present, unlisted leaves read as zeros.
    fn guest() -> FakeCpu {
        let mut cpu = FakeCpu { leaves: BTreeMap::new(), other: [0; 4], asked: vec![] };
        cpu.leaves.insert(1, [0x000a_06a4, 0x0001_0800, 0xfeda_3203 | HYPERVISOR_PRESENT, 0x178b_fbff]);
        cpu
    }

    /// A hypervisor block at `base`: `max_leaf` in eax and the 12-byte `signature`.
    fn with_block(mut self, base: u32, max_leaf: u32, signature: &[u8; 12]) -> FakeCpu {
        let word = |i: usize| u32::from_le_bytes(signature[i..i + 4].try_into().unwrap());
        self.leaves.insert(base, [max_leaf, word(0), word(4), word(8)]);
        self
    }

    /// Xen's version and hypercall leaves after `base`.
    fn with_xen_info(mut self, base: u32, major: u16, minor: u16, pages: u32, msr: u32) -> FakeCpu {
        self.leaves.insert(base + 1, [u32::from(major) << 16 | u32::from(minor), 0, 0, 0]);
        self.leaves.insert(base + 2, [pages, msr, 0, 0]);
        self
    }

    fn find(&mut self) -> Option<XenLeaves> {
        find_xen(|leaf| {
            self.asked.push(leaf);
            self.leaves.get(&leaf).copied().unwrap_or(self.other)
        })
    }
}

const XEN_SIG: &[u8; 12] = b"XenVMMXenVMM";

#[test]
fn signature_constant_spells_xenvmmxenvmm() {
    let bytes: Vec<u8> = XEN_SIGNATURE.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(&bytes, XEN_SIG);
}

#[test]
fn xen_at_the_first_base() {
    let mut cpu = FakeCpu::guest().with_block(0x4000_0000, 0x4000_0005, XEN_SIG).with_xen_info(
        0x4000_0000,
        4,
        17,
        1,
        0x4000_0000,
    );
    assert_eq!(
        cpu.find(),
        Some(XenLeaves {
            base: 0x4000_0000,
            max_leaf: 0x4000_0005,
            version: (4, 17),
            hypercall_pages: 1,
            hypercall_msr: 0x4000_0000,
        })
    );
    assert_eq!(cpu.asked, [1, 0x4000_0000, 0x4000_0001, 0x4000_0002]);
}

#[test]
fn xen_behind_viridian() {
    let mut cpu = FakeCpu::guest()
        .with_block(0x4000_0000, 0x4000_0006, b"Microsoft Hv")
        .with_block(0x4000_0100, 0x4000_0105, XEN_SIG)
        .with_xen_info(0x4000_0100, 4, 19, 1, 0x4000_0200);
    // Viridian's own leaves after its base must not be mistaken for Xen's.
    cpu.leaves.insert(0x4000_0001, [0x3123_7648, 0, 0, 0]);
    cpu.leaves.insert(0x4000_0002, [0x0000_3839, 0x000a_0000, 0, 0]);
    let xen = cpu.find().unwrap();
    assert_eq!(xen.base, 0x4000_0100);
    assert_eq!(xen.max_leaf, 0x4000_0105);
    assert_eq!(xen.version, (4, 19));
    assert_eq!((xen.hypercall_pages, xen.hypercall_msr), (1, 0x4000_0200));
    assert_eq!(cpu.asked, [1, 0x4000_0000, 0x4000_0100, 0x4000_0101, 0x4000_0102]);
}

#[test]
fn xen_at_the_last_base() {
    let mut cpu = FakeCpu::guest().with_block(0x4000_ff00, 0x4000_ff02, XEN_SIG).with_xen_info(
        0x4000_ff00,
        4,
        20,
        1,
        0x4000_0000,
    );
    assert_eq!(cpu.find().map(|x| x.base), Some(0x4000_ff00));
}

#[test]
fn no_hypervisor_bit_means_no_search() {
    // Even a Xen block is ignored when leaf 1 denies a hypervisor: on hardware those leaves are undefined.
    let mut cpu = FakeCpu::guest().with_block(0x4000_0000, 0x4000_0005, XEN_SIG).with_xen_info(
        0x4000_0000,
        4,
        17,
        1,
        0x4000_0000,
    );
    cpu.leaves.get_mut(&1).unwrap()[2] &= !HYPERVISOR_PRESENT;
    assert_eq!(cpu.find(), None);
    assert_eq!(cpu.asked, [1]);
}

#[test]
fn hypervisor_bit_but_all_zeros() {
    let mut cpu = FakeCpu::guest();
    assert_eq!(cpu.find(), None);
    // Every base was tried, and nothing but bases after leaf 1.
    assert_eq!(cpu.asked.len(), 1 + 256);
    assert!(cpu.asked[1..].iter().enumerate().all(|(n, &leaf)| leaf == 0x4000_0000 + n as u32 * 0x100));
}

#[test]
fn bare_metal_garbage() {
    // Intel answers out-of-range leaves with the highest basic leaf's data; the hypervisor bit is clear.
    let mut cpu = FakeCpu::guest();
    cpu.leaves.get_mut(&1).unwrap()[2] &= !HYPERVISOR_PRESENT;
    cpu.other = [0x0000_0e3c, 0x0000_1c0f, 0x0000_003f, 0x0000_0000];
    assert_eq!(cpu.find(), None);
    // Garbage with the bit set (a confused hypervisor) is still not Xen.
    cpu.leaves.get_mut(&1).unwrap()[2] |= HYPERVISOR_PRESENT;
    assert_eq!(cpu.find(), None);
}

#[test]
fn kvm_is_not_xen() {
    let mut cpu = FakeCpu::guest().with_block(0x4000_0000, 0x4000_0001, b"KVMKVMKVM\0\0\0");
    assert_eq!(cpu.find(), None);
}

#[test]
fn xen_without_the_hypercall_leaf_is_not_usable() {
    for max_leaf in [0, 0x4000_0000, 0x4000_0001] {
        let mut cpu = FakeCpu::guest().with_block(0x4000_0000, max_leaf, XEN_SIG).with_xen_info(
            0x4000_0000,
            4,
            17,
            1,
            0x4000_0000,
        );
        assert_eq!(cpu.find(), None, "max_leaf {max_leaf:#x}");
        // The short block's further leaves are never read.
        assert!(!cpu.asked.contains(&0x4000_0001) && !cpu.asked.contains(&0x4000_0002));
    }
}

#[test]
fn a_short_xen_block_is_skipped_for_a_later_one() {
    let mut cpu = FakeCpu::guest()
        .with_block(0x4000_0000, 0x4000_0001, XEN_SIG)
        .with_block(0x4000_0200, 0x4000_0203, XEN_SIG)
        .with_xen_info(0x4000_0200, 4, 18, 2, 0x4000_0300);
    let xen = cpu.find().unwrap();
    assert_eq!(xen.base, 0x4000_0200);
    assert_eq!((xen.version, xen.hypercall_pages, xen.hypercall_msr), ((4, 18), 2, 0x4000_0300));
}

#[test]
fn a_partial_signature_is_not_xen() {
    let mut cpu = FakeCpu::guest().with_block(0x4000_0000, 0x4000_0005, b"XenVMMXenVMm");
    assert_eq!(cpu.find(), None);
    let mut cpu = FakeCpu::guest().with_block(0x4000_0000, 0x4000_0005, b"XenVMMXenVM\0");
    assert_eq!(cpu.find(), None);
}

#[test]
fn version_halves() {
    let mut cpu = FakeCpu::guest().with_block(0x4000_0000, 0x4000_0002, XEN_SIG).with_xen_info(
        0x4000_0000,
        0xffff,
        0x0001,
        1,
        0x4000_0000,
    );
    assert_eq!(cpu.find().unwrap().version, (0xffff, 1));
}

//! The blkif ABI against `xen/io/blkif.h` (sizes and offsets as a C compiler lays them out on x86_64) and fixed
//! byte arrays.

use core::mem::{offset_of, size_of};

use crate::blkfront::plan::Plan;
use crate::blkfront::wire::*;
use crate::ring::ring_size_for_pages;

#[test]
fn constants_match_blkif_h() {
    assert_eq!((BLKIF_OP_READ, BLKIF_OP_WRITE, BLKIF_OP_WRITE_BARRIER, BLKIF_OP_FLUSH_DISKCACHE), (0, 1, 2, 3));
    assert_eq!((BLKIF_OP_RESERVED_1, BLKIF_OP_DISCARD, BLKIF_OP_INDIRECT), (4, 5, 6));
    assert_eq!((BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP), (0, -1, -2));
    assert_eq!((BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST), (11, 8));
    assert_eq!((SEGMENTS_PER_INDIRECT_PAGE, MAX_INDIRECT_SEGMENTS), (512, 4096));
    assert_eq!((VDISK_CDROM, VDISK_REMOVABLE, VDISK_READONLY, BLKIF_DISCARD_SECURE), (1, 2, 4, 1));
    assert_eq!((PAGE_SIZE, SECTOR_SIZE, SECTORS_PER_PAGE), (4096, 512, 8));
    assert_eq!(PROTOCOL_X86_64, "x86_64-abi");
    // __CONST_RING_SIZE(blkif, 4096 << order), as Linux sizes its multi-page rings.
    let sizes: Vec<u32> = (0..=4).map(|order| ring_size_for_pages(1 << order, ENTRY_SIZE)).collect();
    assert_eq!(sizes, [32, 64, 128, 256, 512]);
}

#[test]
fn layouts_match_the_c_compiler() {
    // gcc on /usr/include/xen/io/blkif.h, x86_64: sizeof and offsetof of each struct.
    assert_eq!(size_of::<BlkifRequest>(), 112);
    assert_eq!((offset_of!(BlkifRequest, handle), offset_of!(BlkifRequest, id)), (2, 8));
    assert_eq!((offset_of!(BlkifRequest, sector_number), offset_of!(BlkifRequest, seg)), (16, 24));
    assert_eq!(size_of::<BlkifRequestSegment>(), 8);
    assert_eq!((offset_of!(BlkifRequestSegment, first_sect), offset_of!(BlkifRequestSegment, last_sect)), (4, 5));
    assert_eq!(size_of::<BlkifRequestIndirect>(), 64);
    assert_eq!((offset_of!(BlkifRequestIndirect, nr_segments), offset_of!(BlkifRequestIndirect, id)), (2, 8));
    assert_eq!(offset_of!(BlkifRequestIndirect, sector_number), 16);
    assert_eq!((offset_of!(BlkifRequestIndirect, handle), offset_of!(BlkifRequestIndirect, indirect_grefs)), (24, 28));
    assert_eq!(size_of::<BlkifRequestDiscard>(), 32);
    assert_eq!((offset_of!(BlkifRequestDiscard, flag), offset_of!(BlkifRequestDiscard, nr_sectors)), (1, 24));
    assert_eq!(size_of::<BlkifResponse>(), 16);
    assert_eq!((offset_of!(BlkifResponse, operation), offset_of!(BlkifResponse, status)), (8, 10));
}

#[test]
fn a_request_is_little_endian_bytes_in_header_order() {
    let mut r = BlkifRequest {
        operation: BLKIF_OP_WRITE,
        nr_segments: 2,
        handle: 0xca00,
        id: 0x0807_0605_0403_0201,
        sector_number: 0x1122_3344_5566_7788,
        ..BlkifRequest::default()
    };
    r.seg[0] = BlkifRequestSegment { gref: 0x0d0c_0b0a, first_sect: 0, last_sect: 7 };
    r.seg[1] = BlkifRequestSegment { gref: 0x14, first_sect: 2, last_sect: 3 };
    let b = r.emit();
    #[rustfmt::skip]
    let head = [
        1, 2, 0x00, 0xca, 0, 0, 0, 0,
        1, 2, 3, 4, 5, 6, 7, 8,
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
        0x0a, 0x0b, 0x0c, 0x0d, 0, 7, 0, 0,
        0x14, 0, 0, 0, 2, 3, 0, 0,
    ];
    assert_eq!(b[..40], head);
    assert!(b[40..].iter().all(|&x| x == 0), "unused segments are zero");
    assert_eq!(BlkifRequest::parse(&b), r);
    assert_eq!(r.seg[1].sectors(), 2);
    assert_eq!(BlkifRequestSegment { gref: 0, first_sect: 5, last_sect: 4 }.sectors(), 0, "inverted: invalid");
}

#[test]
fn an_indirect_request_has_its_handle_after_the_sector() {
    let mut r = BlkifRequestIndirect {
        operation: BLKIF_OP_INDIRECT,
        indirect_op: BLKIF_OP_READ,
        nr_segments: 0x0100,
        id: 0x2a,
        sector_number: 0x800,
        handle: 0xca00,
        ..BlkifRequestIndirect::default()
    };
    r.indirect_grefs[0] = 0x2328;
    r.indirect_grefs[7] = 0x0403_0201;
    let b = r.emit();
    #[rustfmt::skip]
    let expected = [
        6, 0, 0x00, 0x01, 0, 0, 0, 0,
        0x2a, 0, 0, 0, 0, 0, 0, 0,
        0x00, 0x08, 0, 0, 0, 0, 0, 0,
        0x00, 0xca, 0, 0, 0x28, 0x23, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        1, 2, 3, 4, 0, 0, 0, 0,
    ];
    assert_eq!(b[..64], expected);
    assert!(b[64..].iter().all(|&x| x == 0), "the rest of the entry is zero");
    assert_eq!(BlkifRequestIndirect::parse(&b), r);
}

#[test]
fn a_discard_carries_its_sector_count() {
    let r = BlkifRequestDiscard {
        operation: BLKIF_OP_DISCARD,
        flag: BLKIF_DISCARD_SECURE,
        handle: 0x0201,
        id: 9,
        sector_number: 16,
        nr_sectors: 0x0102,
    };
    let b = r.emit();
    #[rustfmt::skip]
    let expected = [
        5, 1, 1, 2, 0, 0, 0, 0,
        9, 0, 0, 0, 0, 0, 0, 0,
        16, 0, 0, 0, 0, 0, 0, 0,
        2, 1, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(b[..32], expected);
    assert_eq!(BlkifRequestDiscard::parse(&b), r);
}

#[test]
fn a_response_has_its_status_at_10() {
    let r =
        BlkifResponse { id: 0x0000_0003_0000_0011, operation: BLKIF_OP_FLUSH_DISKCACHE, status: BLKIF_RSP_EOPNOTSUPP };
    let b = r.emit();
    assert_eq!(b, [0x11, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0xfe, 0xff, 0, 0, 0, 0]);
    assert_eq!(BlkifResponse::parse(&b), r);
    let mut noisy = b;
    noisy[9] = 0xaa;
    noisy[12..].fill(0xbb);
    assert_eq!(BlkifResponse::parse(&noisy), r, "padding is ignored");
}

#[test]
fn operations_and_statuses_have_names() {
    assert_eq!(op_name(BLKIF_OP_FLUSH_DISKCACHE), "BLKIF_OP_FLUSH_DISKCACHE");
    assert_eq!(op_name(BLKIF_OP_INDIRECT), "BLKIF_OP_INDIRECT");
    assert_eq!(op_name(9), "an unknown operation");
    assert_eq!(status_name(BLKIF_RSP_ERROR), "BLKIF_RSP_ERROR");
    assert_eq!(status_name(3), "not a BLKIF_RSP_* value");
}

#[test]
fn transfers_split_into_the_fewest_requests() {
    // 1 MiB with 256 indirect segments: one request, 256 full pages.
    let plan = Plan::new(1 << 20, 1 << 20, 256);
    let parts: Vec<_> = plan.parts().collect();
    assert_eq!((plan.pages(), parts.len()), (256, 1));
    assert_eq!((parts[0].sector, parts[0].pages, parts[0].bytes, parts[0].indirect_pages()), (2048, 256, 1 << 20, 1));
    // Without indirect requests: 11 pages each, 24 requests, the last with 3 pages.
    let plan = Plan::new(0, 1 << 20, 0);
    let parts: Vec<_> = plan.parts().collect();
    assert_eq!(parts.len(), 24);
    assert!(parts[..23].iter().all(|p| p.pages == 11 && !p.is_indirect()));
    assert_eq!((parts[23].first_page, parts[23].pages, parts[23].sector), (253, 3, 253 * 8));
    // 300 pages with 256 per indirect request: 256 + 44, both indirect; 260: 256 + a direct 4.
    let sizes = |pages: u64| -> Vec<(u32, bool)> {
        Plan::new(0, pages * 4096, 256).parts().map(|p| (p.pages, p.is_indirect())).collect()
    };
    assert_eq!(sizes(300), [(256, true), (44, true)]);
    assert_eq!(sizes(260), [(256, true), (4, false)]);
    assert_eq!(sizes(11), [(11, false)], "small transfers stay direct");
    // A partial last page: 512-byte sectors 0..=0 of it.
    let plan = Plan::new(512, 4096 + 512, 0);
    let part = plan.parts().next().unwrap();
    assert_eq!((part.sector, part.sectors()), (1, 9));
    assert_eq!(part.segment(0, 7), BlkifRequestSegment { gref: 7, first_sect: 0, last_sect: 7 });
    assert_eq!(part.segment(1, 8), BlkifRequestSegment { gref: 8, first_sect: 0, last_sect: 0 });
    let r = plan.resources();
    assert_eq!((r.ring_slots, r.data_pages, r.indirect_pages), (1, 2, 0));
}

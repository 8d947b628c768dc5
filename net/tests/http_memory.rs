//! `http::serve` under memory pressure, measured by this test binary's own allocator: many connections uploading
//! large bodies at once stay within the memory budget, and an allocation the heap refuses becomes a 503, never an
//! abort (in the guest, an abort crashes the domain).
mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;

use common::memstream::{block_on, run_all, MemStream};
use sirocco_net::http;

/// Counts the bytes live on this thread while tracking is on; refuses allocations past `CAP`.
struct Tracking;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static CAP: Cell<isize> = const { Cell::new(isize::MAX) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only const-initialised thread-locals, which
// never allocate.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if TRACK.with(Cell::get) {
            let live = LIVE.with(Cell::get) + layout.size() as isize;
            if live > CAP.with(Cell::get) {
                return std::ptr::null_mut();
            }
            LIVE.with(|l| l.set(live));
            PEAK.with(|p| p.set(p.get().max(live)));
        }
        // SAFETY: same layout contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if TRACK.with(Cell::get) {
            LIVE.with(|l| l.set(l.get() - layout.size() as isize));
        }
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Runs `f` with allocation tracking on (and allocations past `cap` bytes refused); returns its result and the
/// peak of bytes live.
fn tracked<T>(cap: isize, f: impl FnOnce() -> T) -> (T, isize) {
    LIVE.with(|l| l.set(0));
    PEAK.with(|p| p.set(0));
    CAP.with(|c| c.set(cap));
    TRACK.with(|t| t.set(true));
    let out = f();
    TRACK.with(|t| t.set(false));
    (out, PEAK.with(Cell::get))
}

type Served = Result<http::Served, sirocco_net::NetError>;

const MIB: usize = 1 << 20;

async fn ok(req: &http::Request<'_>) -> Vec<u8> {
    let body = format!("got {}", req.body.len());
    http::response(200, "OK", "text/plain", body.as_bytes(), req.keep_alive)
}

fn upload(chunk: usize) -> MemStream {
    let head = format!("PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n\r\n");
    let mut s = MemStream::new(head.as_bytes(), MIB, b"", chunk);
    s.yield_each_read = true;
    s
}

fn status(s: &MemStream) -> u16 {
    let t = s.text();
    t.strip_prefix("HTTP/1.1 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Issue 10, defect 4: each connection buffered its whole body, growing by doubling (about 2 MiB per 1 MiB
/// upload); 15 such uploads at once exhausted httpd's 32 MiB and crashed the domain. Twenty interleaved uploads
/// must stay within the budget, and every one must be answered (200 or 503), none dropped.
#[test]
fn twenty_concurrent_1mib_uploads_stay_within_the_memory_budget() {
    let budget = http::MemoryBudget::new(4 * MIB);
    let mut streams: Vec<MemStream> = (0..20).map(|_| upload(16384)).collect();
    let (results, peak) = tracked(isize::MAX, || {
        let futs: Vec<Pin<Box<dyn Future<Output = Served> + '_>>> = streams
            .iter_mut()
            .map(|s| Box::pin(http::serve(s, &budget, http::Respond(ok))) as Pin<Box<dyn Future<Output = Served>>>)
            .collect();
        run_all(futs)
    });
    let codes: Vec<u16> = streams.iter().map(status).collect();
    for r in results {
        r.unwrap();
    }
    assert!(codes.iter().all(|c| *c == 200 || *c == 503), "every upload answered 200 or 503: {codes:?}");
    assert!(codes.contains(&200), "the budget admits some uploads: {codes:?}");
    assert!(peak < 8 * MIB as isize, "peak heap use {} KiB for 20 uploads of 1 MiB (codes {codes:?})", peak / 1024);
    assert!(budget.peak() <= budget.limit() && budget.used() == 0, "budget {budget:?}");
}

/// A body the allocator cannot hold (the heap is smaller than the budget thinks) is answered 503, not an abort.
#[test]
fn a_body_the_heap_cannot_hold_is_answered_503_not_an_abort() {
    let mut s = upload(65536);
    s.yield_each_read = false;
    // The budget believes in 64 MiB; the heap has 512 KiB.
    let budget = http::MemoryBudget::new(64 * MIB);
    let (r, _) = tracked(512 * 1024, || block_on(http::serve(&mut s, &budget, http::Respond(ok))));
    r.unwrap();
    assert_eq!(status(&s), 503, "{}", s.text());
}

//! `blktest`: exercises blkfront against the backend and prints results for the lab to check against the backing
//! files, or measures throughput.
//!
//! - `test=pattern` (default): on the first writable 512-byte-sector disk, writes `mb=` MiB (64) of a seeded
//!   pseudo-random pattern (`seed=`), flushes, reads it back, and prints both SHA-256s (dom0 hashes the backing
//!   file); then checks refusals (unaligned, past the end). On a 4096-byte-sector disk: 512-byte I/O refused,
//!   1 MiB of pattern at 1 MiB written and read back. On a read-only disk: writes refused, reads work.
//! - `test=bench`: sequential write and read of `mb=` MiB in 1 MiB operations, and 4 KiB random reads from
//!   `qd=` (16) tasks for `secs=` (10) seconds; prints `SIROCCO-BENCH kind=blk` lines.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use sha2::{Digest, Sha256};
use sirocco::block::{self, Disk, ErrorKind};
use sirocco::Instant;

const MIB: usize = 1 << 20;

/// xorshift64*: the pattern generator (reproducible from the seed and the offset).
fn fill(buf: &mut [u8], seed: u64, offset: u64) {
    let mut x = seed ^ offset.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn check(name: &str, ok: bool, detail: &str) -> bool {
    sirocco::println!("blktest: check {name} {} {detail}", if ok { "ok" } else { "FAIL" });
    ok
}

fn kind<T>(r: &Result<T, block::BlkError>) -> Option<&ErrorKind> {
    r.as_ref().err().map(|e| &e.kind)
}

/// Writes `mb` MiB of pattern at `offset`, flushes, reads back: (written hash, read hash, write s, read s).
async fn pattern(
    disk: &Disk,
    offset: u64,
    mb: usize,
    seed: u64,
) -> Result<(String, String, f64, f64), block::BlkError> {
    let mut buf = vec![0u8; MIB];
    let mut h = Sha256::new();
    let t = Instant::now();
    for i in 0..mb {
        let at = offset + (i * MIB) as u64;
        fill(&mut buf, seed, at);
        h.update(&buf);
        disk.write(at, &buf).await?;
    }
    match disk.flush().await {
        Err(e) if e.kind == ErrorKind::NoFlush => sirocco::println!("blktest: vbd{} offers no flush", disk.id()),
        other => other?,
    }
    let wrote = hex(&h.finalize());
    let write_s = t.elapsed().as_secs_f64();
    let mut h = Sha256::new();
    let t = Instant::now();
    for i in 0..mb {
        disk.read(offset + (i * MIB) as u64, &mut buf).await?;
        h.update(&buf);
    }
    Ok((wrote, hex(&h.finalize()), write_s, t.elapsed().as_secs_f64()))
}

async fn test_rw512(disk: &Disk, mb: usize, seed: u64) -> bool {
    let mut ok = true;
    match pattern(disk, 0, mb, seed).await {
        Ok((w, r, ws, rs)) => {
            sirocco::println!("blktest: pattern vbd{} {mb} MiB seed {seed} written sha256 {w}", disk.id());
            ok &= check(
                "pattern-readback",
                w == r,
                &format!("{mb} MiB written in {ws:.2} s, read back in {rs:.2} s, read sha256 {r}"),
            );
        }
        Err(e) => ok &= check("pattern-readback", false, &format!("I/O error: {e}")),
    }
    let one = [0u8; 512];
    let r = disk.write(1, &one).await;
    ok &= check("unaligned-offset-refused", matches!(kind(&r), Some(ErrorKind::Unaligned { .. })), &format!("{r:?}"));
    let r = disk.write(0, &one[..100]).await;
    ok &= check("unaligned-length-refused", matches!(kind(&r), Some(ErrorKind::Unaligned { .. })), &format!("{r:?}"));
    let mut b = [0u8; 512];
    let r = disk.read(disk.capacity(), &mut b).await;
    ok &= check("past-end-refused", matches!(kind(&r), Some(ErrorKind::OutOfRange { .. })), &format!("{r:?}"));
    // Discard past the pattern, where offered; a clear refusal where not.
    let at = (mb * MIB) as u64;
    let r = disk.discard(at, MIB as u64).await;
    let want = if disk.info().features.discard { r.is_ok() } else { matches!(kind(&r), Some(ErrorKind::NoDiscard)) };
    ok &= check("discard", want, &format!("offered {}: {r:?}", disk.info().features.discard));
    // Past the pattern (dom0 hashes it) and the discarded MiB.
    ok &= cancel(disk, ((mb + 8) * MIB) as u64, seed).await;
    ok
}

/// Cancel-safety against the real blkback (issue 10): 4 MiB reads and writes dropped part-way, 32 times (more
/// than the granted pool could survive if each kept its pages), then a write, flush and read-back over the same
/// sectors must still work and agree, and the driver must have counted the abandoned operations (so the check
/// cannot pass without cancelling anything).
async fn cancel(disk: &Disk, at: u64, seed: u64) -> bool {
    let len = 4 * MIB;
    let mut buf = vec![0u8; len];
    let data = vec![0x5au8; len];
    let before = disk.counters().abandoned;
    for i in 0..32u64 {
        // Give up after a few hundred microseconds: the transfer is under way, not finished.
        let deadline = Instant::now().after(Duration::from_micros(200 + 50 * (i % 8)));
        if i % 2 == 0 {
            let _ = sirocco::select(disk.read(at, &mut buf), sirocco::sleep_until(deadline)).await;
        } else {
            let _ = sirocco::select(disk.write(at, &data), sirocco::sleep_until(deadline)).await;
        }
    }
    let abandoned = disk.counters().abandoned - before;
    let mut want = vec![0u8; len];
    fill(&mut want, seed ^ 0xca, at);
    let r = async {
        disk.write(at, &want).await?;
        disk.flush().await?;
        disk.read(at, &mut buf).await
    }
    .await;
    let same = r.is_ok() && buf == want;
    check(
        "cancel-then-io",
        same && abandoned > 0,
        &format!("32 transfers of 4 MiB dropped part-way ({abandoned} operations abandoned); then write+flush+read: {r:?}, data {}", if same { "identical" } else { "DIFFERENT" }),
    )
}

async fn test_4k(disk: &Disk, seed: u64) -> bool {
    let mut ok = true;
    let r = disk.write(512, &[0u8; 512]).await;
    ok &= check("4k-512-write-refused", matches!(kind(&r), Some(ErrorKind::Unaligned { .. })), &format!("{r:?}"));
    let mut b = [0u8; 512];
    let r = disk.read(0, &mut b).await;
    ok &= check("4k-512-read-refused", matches!(kind(&r), Some(ErrorKind::Unaligned { .. })), &format!("{r:?}"));
    match pattern(disk, MIB as u64, 1, seed).await {
        Ok((w, r, _, _)) => {
            sirocco::println!("blktest: pattern vbd{} 1 MiB at 1 MiB seed {seed} written sha256 {w}", disk.id());
            ok &= check("4k-pattern-readback", w == r, &format!("read sha256 {r}"));
        }
        Err(e) => ok &= check("4k-pattern-readback", false, &format!("I/O error: {e}")),
    }
    ok
}

async fn test_ro(disk: &Disk) -> bool {
    let mut ok = true;
    let r = disk.write(0, &vec![0u8; disk.sector_size() as usize]).await;
    ok &= check("ro-write-refused", matches!(kind(&r), Some(ErrorKind::ReadOnly)), &format!("{r:?}"));
    let r = disk.discard(0, 4096).await;
    ok &= check("ro-discard-refused", kind(&r).is_some(), &format!("{r:?}"));
    let mut b = vec![0u8; 4096];
    let r = disk.read(0, &mut b).await;
    let h = hex(&Sha256::digest(&b));
    ok &= check("ro-read", r.is_ok(), &format!("{r:?} first 4 KiB sha256 {h}"));
    ok
}

static RANDOM_READS: AtomicU64 = AtomicU64::new(0);

async fn random_reader(disk: Disk, span: u64, until: Instant, seed: u64) {
    let mut x = seed | 1;
    let mut buf = [0u8; 4096];
    let blocks = span / 4096;
    while Instant::now() < until {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if let Err(e) = disk.read((x % blocks) * 4096, &mut buf).await {
            sirocco::println!("blktest: random read failed: {e}");
            return;
        }
        RANDOM_READS.fetch_add(1, Ordering::Relaxed);
    }
}

async fn bench(disk: &Disk, mb: usize, qd: u64, secs: u64) -> bool {
    let chunk = 8 * MIB;
    let mut buf = vec![0u8; chunk];
    fill(&mut buf, 7, 0);
    let t = Instant::now();
    for i in 0..mb.div_ceil(8) {
        if let Err(e) = disk.write((i * chunk) as u64, &buf).await {
            return check("bench", false, &format!("write: {e}"));
        }
    }
    if let Err(e) = disk.flush().await {
        if e.kind != ErrorKind::NoFlush {
            return check("bench", false, &format!("flush: {e}"));
        }
    }
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..mb.div_ceil(8) {
        if let Err(e) = disk.read((i * chunk) as u64, &mut buf).await {
            return check("bench", false, &format!("read: {e}"));
        }
    }
    let read_s = t.elapsed().as_secs_f64();
    let until = Instant::now().after(Duration::from_secs(secs));
    let t = Instant::now();
    let before = RANDOM_READS.load(Ordering::Relaxed);
    for i in 0..qd {
        sirocco::spawn(random_reader(disk.clone(), (mb * MIB) as u64, until, 0x1234_5678 + i * 7919));
    }
    sirocco::sleep_until(until).await;
    sirocco::sleep(Duration::from_millis(200)).await;
    let reads = RANDOM_READS.load(Ordering::Relaxed) - before;
    let rand_s = t.elapsed().as_secs_f64();
    let c = disk.counters();
    sirocco::println!(
        "SIROCCO-BENCH kind=blk guest=sirocco mb={mb} seq_write_mbps={:.2} seq_read_mbps={:.2} randread_iops={:.0} qd={qd}",
        mb as f64 / write_s,
        mb as f64 / read_s,
        reads as f64 / rand_s
    );
    sirocco::println!("blktest: counters {c}");
    true
}

#[sirocco::main]
fn main(env: &sirocco::Env) -> Result<sirocco::Exit, block::ConnectError> {
    let disks = block::disks()?;
    if disks.is_empty() {
        return Err(block::ConnectError::NoDisk);
    }
    let arg = |k: &str, d: u64| env.cmdline.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (mb, seed) = (arg("mb", 64) as usize, arg("seed", 1));
    for d in disks {
        let i = d.info();
        sirocco::println!(
            "blktest: vbd{} {} sectors (512 B), {} MiB, sector size {}, {}, flush {:?}, discard {}",
            d.id(),
            i.sectors,
            i.capacity() >> 20,
            i.sector_size,
            if i.read_only { "read-only" } else { "read-write" },
            i.flush_method(),
            i.features.discard
        );
    }
    let test = String::from(env.cmdline.get("test").unwrap_or("pattern"));
    let ok = sirocco::block_on(async move {
        let mut ok = true;
        if test == "bench" {
            return bench(&disks[0], mb, arg("qd", 16), arg("secs", 10)).await;
        }
        for d in disks {
            ok &= if d.info().read_only {
                test_ro(d).await
            } else if d.sector_size() == 4096 {
                test_4k(d, seed).await
            } else {
                test_rw512(d, mb, seed).await
            };
        }
        ok
    });
    sirocco::println!("blktest: {}", if ok { "all checks passed" } else { "some checks FAILED" });
    Ok(sirocco::Exit::Poweroff)
}

//! `memtest`: allocates at least 85% of the domain's memory in chunks, writes an address- and round-dependent
//! pattern, verifies it, frees everything, and repeats. Command line: `rounds=N` (default 3),
//! `chunk_kib=N` (largest chunk, default 1024), `min_percent=N` (default 85), `corrupt` (flip one bit in round
//! 1 to prove the checker catches it).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec::Vec;
use core::fmt;

const MIB: f64 = 1024.0 * 1024.0;

/// A memtest failure.
enum Failure {
    TooLittle { got: u64, want: u64 },
    Mismatch { round: u32, chunk: usize, word: usize, expected: u64, found: u64, errors: u64 },
    BadArg(&'static str),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TooLittle { got, want } => write!(
                f,
                "memtest: FAIL allocated only {:.1} MiB, needed {:.1} MiB",
                *got as f64 / MIB,
                *want as f64 / MIB
            ),
            Failure::Mismatch { round, chunk, word, expected, found, errors } => write!(
                f,
                "memtest: FAIL round {round}: {errors} words wrong; first in chunk {chunk} word {word}: expected {expected:#x}, found {found:#x}"
            ),
            Failure::BadArg(what) => write!(f, "memtest: bad command line: {what}"),
        }
    }
}

/// splitmix64: a cheap, well-mixed pattern so stuck or aliased bits show up.
fn pattern(round: u32, chunk: usize, word: usize) -> u64 {
    let mut z = ((u64::from(round)) << 56 ^ (chunk as u64) << 32 ^ word as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn arg(env: &sirocco::Env, key: &str, default: u64, what: &'static str) -> Result<u64, Failure> {
    env.cmdline.get(key).map_or(Ok(default), |v| v.parse().map_err(|_| Failure::BadArg(what)))
}

#[sirocco::main]
fn main(env: &sirocco::Env) -> Result<(), Failure> {
    let rounds = arg(env, "rounds", 3, "rounds= must be a number")? as u32;
    let max_chunk_words = (arg(env, "chunk_kib", 1024, "chunk_kib= must be a number")? as usize * 1024 / 8).max(512);
    let min_percent = arg(env, "min_percent", 85, "min_percent= must be a number")?;
    let domain = env.memory.domain_bytes;
    let want = domain * min_percent / 100;
    sirocco::println!(
        "memtest: domain {:.1} MiB, heap {:.1} MiB, target >= {min_percent}% ({:.1} MiB), {rounds} rounds",
        domain as f64 / MIB,
        env.memory.heap_bytes as f64 / MIB,
        want as f64 / MIB
    );
    let mut least = u64::MAX;
    for round in 1..=rounds {
        let started = sirocco::uptime();
        let mut chunks: Vec<Vec<u64>> = Vec::new();
        chunks.try_reserve(8192).map_err(|_| Failure::TooLittle { got: 0, want })?;
        let mut words = max_chunk_words;
        let mut bytes = 0u64;
        // Take chunks until even a 4 KiB one fails, halving the size whenever one does not fit.
        while chunks.len() < chunks.capacity() {
            let mut v: Vec<u64> = Vec::new();
            if v.try_reserve_exact(words).is_err() {
                if words <= 512 {
                    break;
                }
                words /= 2;
                continue;
            }
            let c = chunks.len();
            v.extend((0..words).map(|w| pattern(round, c, w)));
            bytes += (words * 8) as u64;
            chunks.push(v);
        }
        if round == 1 && env.cmdline.flag("corrupt") {
            // Self-test of the checker (the lab runs it): one flipped bit must be caught.
            if let Some(v) = chunks.last_mut() {
                let w = v.len() / 2;
                // SAFETY: `w` is in bounds; volatile so the flip is not folded into the pattern write above.
                unsafe { core::ptr::write_volatile(&mut v[w], v[w] ^ 1) };
            }
        }
        let mut errors = 0u64;
        let mut first = None;
        for (c, v) in chunks.iter().enumerate() {
            for (w, cell) in v.iter().enumerate() {
                // Volatile: the compiler must not fold "write x, then compare with x" away; this reads memory.
                // SAFETY: `cell` is a valid, aligned reference into the vector.
                let found = unsafe { core::ptr::read_volatile(cell) };
                let expected = pattern(round, c, w);
                if found != expected {
                    errors += 1;
                    first.get_or_insert((c, w, expected, found));
                }
            }
        }
        if let Some((chunk, word, expected, found)) = first {
            return Err(Failure::Mismatch { round, chunk, word, expected, found, errors });
        }
        let heap = sirocco::heap_stats();
        sirocco::println!(
            "memtest: round {round}: {:.1} MiB in {} chunks ({:.1}% of domain memory) written and verified in {} ms; heap used {:.1} MiB",
            bytes as f64 / MIB,
            chunks.len(),
            bytes as f64 * 100.0 / domain as f64,
            (sirocco::uptime() - started).as_millis(),
            heap.used as f64 / MIB
        );
        least = least.min(bytes);
        drop(chunks);
        let after = sirocco::heap_stats();
        if after.used > 64 * 1024 {
            sirocco::println!("memtest: warning: {} bytes still allocated after freeing", after.used);
        }
    }
    if least < want {
        return Err(Failure::TooLittle { got: least, want });
    }
    sirocco::println!(
        "memtest: PASS {rounds} rounds, at least {:.1} MiB of {:.1} MiB ({:.1}%) each round",
        least as f64 / MIB,
        domain as f64 / MIB,
        least as f64 * 100.0 / domain as f64
    );
    Ok(())
}

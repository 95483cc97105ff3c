//! `sealroom bench commit [--size-mb N | --records N] [--json]`: commit+encrypt
//! throughput of a synthetic dataset, next to two baselines measured in the same run on
//! the same bytes: a plain SHA-256 pass over the file (information), and the
//! commitment's intrinsic work per record in a tight loop on one core —
//! SHA-256 of the record, the double-Keccak leaf and its share (one) of the
//! inner-node Keccaks. `limit_ratio` = commit records/s ÷ that limit. The
//! same commit on one thread (same Merkle root, checked) gives the speed-up
//! on all cores; the intrinsic work split over all cores
//! (`limit_speedup_all_cores`) gives the machine's own ceiling for that
//! speed-up. First of all, before anything else allocates, the
//! bounded-memory commit (`commit_stream_root`, what `sealroom commit` runs
//! without `--tree-out`) runs once: its records/s and the process's peak
//! RSS right after it are reported (`bounded_*`), and its root is checked
//! against the whole-tree commit's; it then runs once more per run, with
//! its own one-thread counterpart (`bounded_speedup_all_cores`,
//! `bounded_limit_ratio`: the figures of what `sealroom commit` runs). Next, the commit with its tree dump
//! (`commit_stream_dump` and the streamed dump, what `sealroom commit
//! --tree-out` runs): records/s including the dump's writing, and the peak
//! RSS after it (`dump_*`).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::time::Instant;

use sealroom_protocol::dataset::{commit_stream, commit_stream_dump, commit_stream_root};
use sealroom_protocol::stream::{DataKey, DEFAULT_SEGMENT_SIZE};
use sha2::{Digest, Sha256};

use super::bench::median;
use crate::exit::{input_err, runtime_err, CmdResult};

/// Arguments of `sealroom bench commit`.
#[derive(clap::Args)]
pub struct Args {
    /// Size of the synthetic dataset in MB (10^6 bytes).
    #[arg(long, default_value_t = 100, conflicts_with = "records")]
    size_mb: u64,
    /// Size of the synthetic dataset in records (≈190 bytes each) instead.
    #[arg(long)]
    records: Option<u64>,
    /// Repetitions of each measurement (the median is reported) [default: by size].
    #[arg(long)]
    runs: Option<u32>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Writes a deterministic CSV of at least `bytes` bytes, or of exactly
/// `rows` records when given: 24 float columns + label.
fn synth(path: &std::path::Path, bytes: u64, rows: Option<u64>) -> std::io::Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let header: Vec<String> = (0..24)
        .map(|i| format!("f{i}"))
        .chain(["label".to_string()])
        .collect();
    writeln!(w, "{}", header.join(","))?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut written = 0u64;
    let mut line = String::with_capacity(256);
    let mut n = 0u64;
    while rows.map_or(written < bytes, |r| n < r) {
        n += 1;
        line.clear();
        for _ in 0..24 {
            // xorshift64*: cheap deterministic values.
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            line.push_str(&format!("{}.{:03},", v % 1000, v % 997));
        }
        line.push_str(if x & 1 == 0 { "0\n" } else { "1\n" });
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    w.flush()?;
    Ok(written)
}

/// The commitment's intrinsic hashing work per record (SHA-256, the
/// double-Keccak leaf, one inner-node Keccak), records already split, on
/// `threads` threads (contiguous halves, thirds, … of the records):
/// records per second in all. On one thread it is the `limit` of
/// `limit_ratio`; on all cores, the machine's own ceiling for the speed-up
/// of hashing, which a VM's cores (shared, or hyperthreads of one physical
/// core) can hold well below the core count.
fn intrinsic_limit_on(records: &[&[u8]], threads: usize) -> f64 {
    use alloy_primitives::B256;
    use sealroom_protocol::merkle;
    let per = records.len().div_ceil(threads.max(1)).max(1);
    let t = Instant::now();
    std::thread::scope(|s| {
        for (c, chunk) in records.chunks(per).enumerate() {
            s.spawn(move || {
                let mut prev = B256::ZERO;
                for (i, r) in chunk.iter().enumerate() {
                    let d: [u8; 32] = Sha256::digest(r).into();
                    let leaf = merkle::leaf_hash(&merkle::uint_word((c * per + i) as u64), &d);
                    prev = merkle::hash_pair(&leaf, &prev);
                }
                std::hint::black_box(prev);
            });
        }
    });
    records.len() as f64 / t.elapsed().as_secs_f64()
}

/// The bounded-memory commit (`commit_stream_root`, what `sealroom commit`
/// runs without `--tree-out`) of `path` into `blob`: records per second and
/// the Merkle root.
fn bounded_commit(
    path: &std::path::Path,
    blob: &std::path::Path,
) -> Result<(f64, alloy_primitives::B256), crate::exit::Failure> {
    let key = DataKey::generate().map_err(runtime_err)?;
    let t = Instant::now();
    let input = File::open(path).map_err(runtime_err)?;
    let out = BufWriter::with_capacity(1 << 20, File::create(blob).map_err(runtime_err)?);
    let res =
        commit_stream_root(input, &key, DEFAULT_SEGMENT_SIZE, out, |_| {}).map_err(runtime_err)?;
    let mut w = res.blob;
    w.flush().map_err(runtime_err)?;
    Ok((
        res.commitment.record_count as f64 / t.elapsed().as_secs_f64(),
        res.commitment.merkle_root,
    ))
}

/// The same commitment and encryption on one thread (the inline record
/// hasher, then the encryptor, chunk by chunk, then the tree — or, when
/// `bounded`, the root from spilled sorted runs, as `sealroom commit` does
/// without `--tree-out`): the baseline of the speed-up on all cores.
/// Returns the records per second and the Merkle root, which must equal
/// the multi-threaded commit's.
fn one_thread_commit(
    path: &std::path::Path,
    blob: &std::path::Path,
    bounded: bool,
) -> Result<(f64, alloy_primitives::B256), crate::exit::Failure> {
    use sealroom_protocol::dataset::{HashingWriter, RecordHasher};
    use sealroom_protocol::merkle::StandardTree;
    use sealroom_protocol::stream::StreamEncryptor;
    let key = DataKey::generate().map_err(runtime_err)?;
    let t = Instant::now();
    let mut input = File::open(path).map_err(runtime_err)?;
    let out = BufWriter::with_capacity(1 << 20, File::create(blob).map_err(runtime_err)?);
    let mut enc = StreamEncryptor::new(&key, DEFAULT_SEGMENT_SIZE, HashingWriter::new(out))
        .map_err(runtime_err)?;
    let mut rh = if bounded {
        RecordHasher::root_only_on(1)
    } else {
        RecordHasher::new()
    };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf).map_err(runtime_err)?;
        if n == 0 {
            break;
        }
        rh.update(&buf[..n]).map_err(runtime_err)?;
        enc.write_all(&buf[..n]).map_err(runtime_err)?;
    }
    let (mut w, _, _) = enc.finish().map_err(runtime_err)?.finish();
    w.flush().map_err(runtime_err)?;
    if bounded {
        let (_, records, root) = rh.finish_root().map_err(runtime_err)?;
        return Ok((records as f64 / t.elapsed().as_secs_f64(), root));
    }
    let hashes = rh.finish().map_err(runtime_err)?;
    let records = hashes.digests.len();
    let tree = StandardTree::from_indexed_digests_on(hashes.digests, hashes.leaves, 1)
        .map_err(runtime_err)?;
    Ok((records as f64 / t.elapsed().as_secs_f64(), tree.root()))
}

fn sha_pass(path: &std::path::Path) -> std::io::Result<()> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut h = Sha256::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    std::hint::black_box(h.finalize());
    Ok(())
}

/// Peak resident set size of this process in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Runs the benchmark.
pub fn run(args: Args) -> CmdResult {
    if args.size_mb == 0 || args.records == Some(0) {
        return Err(input_err("--size-mb, --records: must be at least 1"));
    }
    let size_mb = args
        .records
        .map_or(args.size_mb, |r| r.saturating_mul(190) / 1_000_000);
    let runs = args
        .runs
        .unwrap_or(if size_mb <= 200 { 5 } else { 1 })
        .max(1);
    let dir = tempfile::tempdir().map_err(runtime_err)?;
    let data = dir.path().join("bench.csv");
    let blob = dir.path().join("bench.csv.sealed");
    let size = args
        .size_mb
        .checked_mul(1_000_000)
        .ok_or_else(|| input_err(format!("--size-mb {}: too large", args.size_mb)))?;
    let bytes = synth(&data, size, args.records).map_err(runtime_err)?;
    let mb = bytes as f64 / 1e6;
    // The bounded-memory commit first, so the peak RSS read right after it
    // is its own (everything below holds more).
    let rss_before = peak_rss_mb().unwrap_or(f64::NAN);
    let (bounded_rps, bounded_root) = bounded_commit(&data, &blob)?;
    let bounded_rss = peak_rss_mb().unwrap_or(f64::NAN);
    // Then the commit with its tree dump (`sealroom commit --tree-out`):
    // the tree on disk and its dump streamed to a file, also before the
    // whole-tree commits below allocate.
    let (dump_rps, dump_mb) = {
        let key = DataKey::generate().map_err(runtime_err)?;
        let tree_path = dir.path().join("bench.tree.json");
        let t = Instant::now();
        let input = File::open(&data).map_err(runtime_err)?;
        let out = BufWriter::with_capacity(1 << 20, File::create(&blob).map_err(runtime_err)?);
        let res = commit_stream_dump(input, &key, DEFAULT_SEGMENT_SIZE, out, |_| {})
            .map_err(runtime_err)?;
        let mut w = res.blob;
        w.flush().map_err(runtime_err)?;
        let mut dump =
            BufWriter::with_capacity(1 << 16, File::create(&tree_path).map_err(runtime_err)?);
        res.tree.write_dump(&mut dump).map_err(runtime_err)?;
        drop(dump);
        let rps = res.commitment.record_count as f64 / t.elapsed().as_secs_f64();
        if res.commitment.merkle_root != bounded_root {
            return Err(runtime_err(
                "the commit with a tree dump gave another Merkle root than the bounded commit",
            ));
        }
        let size = std::fs::metadata(&tree_path).map_err(runtime_err)?.len();
        std::fs::remove_file(&tree_path).map_err(runtime_err)?;
        (rps, size as f64 / 1e6)
    };
    let dump_rss = peak_rss_mb().unwrap_or(f64::NAN);
    let (mut sha, mut commit, mut limit, mut commit_rps, mut single_rps) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut records = 0;
    // What `sealroom commit` runs (the bounded commit), against its own
    // one-thread counterpart: the speed-up a user sees.
    let (mut bounded_all, mut bounded_single) = (vec![bounded_rps], Vec::new());
    for run in 0..runs {
        let (rps, root) = one_thread_commit(&data, &blob, true)?;
        bounded_single.push(rps);
        if run > 0 {
            let (rps, again) = bounded_commit(&data, &blob)?;
            bounded_all.push(rps);
            if again != bounded_root {
                return Err(runtime_err(
                    "two bounded commits gave different Merkle roots",
                ));
            }
        }
        if root != bounded_root {
            return Err(runtime_err(
                "the one-thread bounded commit gave another Merkle root than the bounded commit",
            ));
        }
    }
    let bounded_rps = median(bounded_all);
    let bounded_single_rps = median(bounded_single);
    let bounded_speedup = bounded_rps / bounded_single_rps;
    for _ in 0..runs {
        let (rps, single_root) = one_thread_commit(&data, &blob, false)?;
        single_rps.push(rps);
        let t = Instant::now();
        sha_pass(&data).map_err(runtime_err)?;
        sha.push(mb / t.elapsed().as_secs_f64());

        let key = DataKey::generate().map_err(runtime_err)?;
        let t = Instant::now();
        let input = File::open(&data).map_err(runtime_err)?;
        let out = BufWriter::with_capacity(1 << 20, File::create(&blob).map_err(runtime_err)?);
        let res =
            commit_stream(input, &key, DEFAULT_SEGMENT_SIZE, out, |_| {}).map_err(runtime_err)?;
        let mut w = res.blob;
        w.flush().map_err(runtime_err)?;
        let secs = t.elapsed().as_secs_f64();
        commit.push(mb / secs);
        records = res.commitment.record_count;
        commit_rps.push(records as f64 / secs);
        if res.commitment.merkle_root != single_root || res.commitment.merkle_root != bounded_root {
            return Err(runtime_err(
                "the one-thread or bounded-memory commit gave another Merkle root than commit_stream",
            ));
        }
    }
    let single_rps = median(single_rps);
    // Peak RSS of the commits alone (the limit below holds the whole file).
    let rss = peak_rss_mb().unwrap_or(f64::NAN);
    // The records as the limit loop sees them (split before timing).
    let text = std::fs::read(&data).map_err(runtime_err)?;
    let lines: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut limit_all = Vec::new();
    for _ in 0..runs {
        limit.push(intrinsic_limit_on(&lines, 1));
        limit_all.push(intrinsic_limit_on(&lines, cores));
    }
    let limit_all_rps = median(limit_all);
    drop(lines);
    drop(text);
    let limit_rps = median(limit);
    let commit_rps = median(commit_rps);
    let limit_ratio = commit_rps / limit_rps;
    let speedup = commit_rps / single_rps;
    let limit_speedup = limit_all_rps / limit_rps;
    let sha_mb_s = median(sha);
    let commit_mb_s = median(commit);
    let ratio = commit_mb_s / sha_mb_s;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "size_mb": mb,
                "records": records,
                "runs": runs,
                "commit_mb_s": commit_mb_s,
                "sha256_mb_s": sha_mb_s,
                "ratio": ratio,
                "peak_rss_mb": rss,
                "bounded_records_s": bounded_rps,
                "bounded_peak_rss_mb": bounded_rss,
                "rss_before_commit_mb": rss_before,
                "bounded_ratio": bounded_rps / commit_rps,
                "bounded_one_thread_records_s": bounded_single_rps,
                "bounded_speedup_all_cores": bounded_speedup,
                "bounded_limit_ratio": bounded_rps / limit_rps,
                "dump_records_s": dump_rps,
                "dump_peak_rss_mb": dump_rss,
                "dump_mb": dump_mb,
                "commit_records_s": commit_rps,
                "limit_records_s": limit_rps,
                "limit_ratio": limit_ratio,
                "one_thread_records_s": single_rps,
                "speedup_all_cores": speedup,
                "limit_all_cores_records_s": limit_all_rps,
                "limit_speedup_all_cores": limit_speedup,
                "cores": cores,
            })
        );
    } else {
        println!("bench commit: {mb:.1} MB, {records} records, median of {runs} run(s)");
        println!("  commit+encrypt  {commit_mb_s:8.1} MB/s");
        println!("  sha256 baseline {sha_mb_s:8.1} MB/s");
        println!("  ratio           {ratio:8.3}x");
        println!("  commit          {commit_rps:10.0} records/s");
        println!("  intrinsic limit {limit_rps:10.0} records/s (SHA-256 + leaf and inner Keccaks, one core)");
        println!("  limit_ratio     {limit_ratio:8.3}");
        println!("  one thread      {single_rps:10.0} records/s (same commit, same root)");
        println!("  speed-up        {speedup:8.3}x on {cores} cores");
        println!("  limit speed-up  {limit_speedup:8.3}x on {cores} cores (the intrinsic work alone, split over the cores: this machine's ceiling)");
        println!("  peak RSS        {rss:8.1} MB (whole-tree commits)");
        println!(
            "  bounded memory  {bounded_rps:10.0} records/s ({:.3}x the whole-tree commit), peak RSS {bounded_rss:.1} MB (process before it: {rss_before:.1} MB)",
            bounded_rps / commit_rps
        );
        println!(
            "                  one thread {bounded_single_rps:.0} records/s: speed-up {bounded_speedup:.3}x on {cores} cores; limit_ratio {:.3}",
            bounded_rps / limit_rps
        );
        println!(
            "  with tree dump  {dump_rps:10.0} records/s (commit and the streamed {dump_mb:.0} MB dump), peak RSS {dump_rss:.1} MB"
        );
    }
    Ok(())
}

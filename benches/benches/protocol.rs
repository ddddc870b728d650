//! Criterion benchmarks of the protocol core, with the primitives they are
//! built from measured in the same run, so that each figure can be read as a
//! ratio to its floor.
//!
//! `cargo bench -p blindmatch-benches` (add `-- <filter>` for one group).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench harness"
)]

use std::hint::black_box;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use blindmatch_batchmul::{Backend, BatchMul};
use blindmatch_protocol::hash_to_group::hash_item;
use blindmatch_protocol::{
    BlindedTable, ClientTable, Item, ItemType, Matcher, ServerKey, TableBuilder, Voucher,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};

fn sha256_items(n: usize, salt: &str) -> Vec<Item> {
    (0..n)
        .map(|i| Item::new(ItemType::Sha256, &Sha256::digest(format!("{salt} {i}"))).unwrap())
        .collect()
}

/// The primitives every protocol step is made of.
fn floor(c: &mut Criterion) {
    let mut g = c.benchmark_group("floor");
    let mut rng = rand::rng();
    let s = Scalar::random(&mut rng);
    let p = RistrettoPoint::random(&mut rng);
    let enc = p.compress();
    g.bench_function("varbase_mul", |b| b.iter(|| black_box(s) * black_box(p)));
    g.bench_function("fixed_base_mul", |b| {
        b.iter(|| RistrettoPoint::mul_base(black_box(&s)))
    });
    g.bench_function("decompress", |b| b.iter(|| black_box(enc).decompress()));
    g.bench_function("compress", |b| b.iter(|| black_box(p).compress()));
    let points: Vec<RistrettoPoint> = (0..1024)
        .map(|_| RistrettoPoint::random(&mut rng))
        .collect();
    g.throughput(Throughput::Elements(points.len() as u64));
    g.bench_function("double_and_compress_batch_1024", |b| {
        b.iter(|| RistrettoPoint::double_and_compress_batch(black_box(&points)))
    });
    g.throughput(Throughput::Elements(1));
    let uniform = [7u8; 64];
    g.bench_function("from_uniform_bytes", |b| {
        b.iter(|| RistrettoPoint::from_uniform_bytes(black_box(&uniform)))
    });
    let ikm = [1u8; 32];
    g.bench_function("hkdf_sha256_extract_expand64", |b| {
        b.iter(|| {
            let hk = Hkdf::<Sha256>::new(Some(b"salt"), black_box(&ikm));
            let mut okm = [0u8; 64];
            hk.expand(&[0u8; 65], &mut okm).unwrap();
            okm
        })
    });
    let cipher = Aes256Gcm::new(&[3u8; 32].into());
    for len in [32usize, 1092] {
        let mut buf = vec![0u8; len];
        g.bench_function(BenchmarkId::new("aes256gcm_seal", len), |b| {
            b.iter(|| {
                cipher.encrypt_inout_detached(
                    &Nonce::from([0u8; 12]),
                    &[],
                    buf.as_mut_slice().into(),
                )
            })
        });
    }
    g.bench_function("aes256gcm_key_setup", |b| {
        b.iter(|| Aes256Gcm::new(black_box(&[3u8; 32].into())))
    });
    g.finish();
}

fn hash_to_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash_to_group");
    for t in ItemType::ALL {
        let item = Item::new(t, &[0xab; 64][..t.fixed_len().unwrap_or(48)]).unwrap();
        g.bench_function(t.name(), |b| b.iter(|| hash_item(black_box(&item))));
    }
    g.finish();
}

fn table_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("table_build");
    g.sample_size(10);
    let key = ServerKey::generate(&mut rand::rng());
    let n = 20_000;
    let items = sha256_items(n, "build");
    g.throughput(Throughput::Elements(n as u64));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, cores] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        g.bench_function(BenchmarkId::new("per_entry_threads", threads), |b| {
            b.iter(|| {
                pool.install(|| {
                    TableBuilder::new([1; 32])
                        .build(&key, items.clone())
                        .unwrap()
                })
            })
        });
    }
    g.finish();
}

fn vouchers(c: &mut Criterion) {
    let key = ServerKey::generate(&mut rand::rng());
    let listed = sha256_items(10_000, "listed");
    let probes = sha256_items(64, "probe");
    let mut g = c.benchmark_group("voucher");
    for k in [2u8, 3, 4] {
        let built = TableBuilder::new([2; 32])
            .k(k)
            .unwrap()
            .build(&key, listed.clone())
            .unwrap();
        let client = ClientTable::new(built.table.clone()).unwrap();
        let mut rng = rand::rng();
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("create", format!("k{k}")), |b| {
            b.iter(|| {
                client
                    .create_voucher(black_box(&probes[0]), b"ad", &mut rng)
                    .unwrap()
            })
        });
        if k != 3 {
            continue;
        }
        let matcher = Matcher::new(&key, &built.table, built.index).unwrap();
        let batch: Vec<Voucher> = probes
            .iter()
            .map(|p| client.create_voucher(p, b"", &mut rng).unwrap())
            .collect();
        let wire: Vec<Vec<u8>> = batch.iter().map(Voucher::encode).collect();
        g.bench_function("match_single_k3", |b| {
            b.iter(|| matcher.open(black_box(&batch[0])).unwrap())
        });
        g.throughput(Throughput::Elements(batch.len() as u64));
        g.bench_function("match_batch64_k3", |b| {
            b.iter(|| matcher.open_batch(black_box(&batch)))
        });
        g.bench_function("decode_batch64_k3", |b| {
            b.iter(|| {
                wire.iter()
                    .map(|w| Voucher::decode(w, 3).unwrap())
                    .collect::<Vec<_>>()
            })
        });
        g.bench_function("encode_batch64_k3", |b| {
            b.iter(|| batch.iter().map(Voucher::encode).collect::<Vec<_>>())
        });
        let table_wire = built.table.encode();
        g.throughput(Throughput::Elements(u64::from(
            built.table.header().n_slots,
        )));
        g.bench_function("table_decode_k3", |b| {
            b.iter(|| BlindedTable::decode(black_box(&table_wire)).unwrap())
        });
        g.bench_function("client_table_validate_k3", |b| {
            b.iter(|| ClientTable::new(built.table.clone()).unwrap())
        });
    }
    g.finish();
}

/// Threshold mode's inner layer at t = 30 (SPEC Section 14): making a real
/// and a synthetic share (client), and detection plus reconstruction plus
/// opening of 30 real shares among s synthetic ones (server), for s = 0,
/// 60, 90. The goal for the server's part is under 10 ms at s = 90.
fn threshold(c: &mut Criterion) {
    use blindmatch_protocol::threshold::{
        AccountSecret, Outcome, Share, SyntheticRate, Upload, VoucherAccount, reveal, share_len,
    };
    let mut g = c.benchmark_group("threshold");
    let mut rng = rand::rng();
    let item = sha256_items(1, "threshold")[0].clone();
    let secret = AccountSecret::generate(b"bench-account", SyntheticRate::NONE, &mut rng).unwrap();
    for s in [0u16, 60, 90] {
        let keys = secret.keys(30, s).unwrap();
        println!(
            "threshold: share at t = 30, s = {s}: {} bytes",
            share_len(s)
        );
        let mut n = 0u32;
        let mut next_id = || {
            n += 1;
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&n.to_be_bytes());
            id
        };
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("share_real_t30", s), |b| {
            b.iter(|| {
                Share::real(&keys, &next_id(), black_box(&item), b"ad", &mut rand::rng()).unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("share_synthetic_t30", s), |b| {
            b.iter(|| Share::synthetic(&keys, &next_id(), &mut rand::rng()))
        });
        let mut shares: Vec<Share> = (0..30)
            .map(|_| Share::real(&keys, &next_id(), &item, b"", &mut rng).unwrap())
            .collect();
        shares.extend((0..s).map(|_| Share::synthetic(&keys, &next_id(), &mut rng)));
        assert!(matches!(reveal(30, &shares).unwrap(), Outcome::Revealed(_)));
        g.bench_function(BenchmarkId::new("reveal_t30", s), |b| {
            b.iter(|| reveal(30, black_box(&shares)).unwrap())
        });
        // Whole version-2 vouchers for a 10,000-entry table: the client's
        // time for a real and a synthetic one (they do the same work), and
        // the server's opening of a batch of 64, against version 1's
        // `voucher/match_batch64_k3` and the floor in this run.
        let key = ServerKey::generate(&mut rng);
        let built = TableBuilder::new([2; 32])
            .build(&key, sha256_items(10_000, "listed"))
            .unwrap();
        let weights = blindmatch_protocol::threshold::placement_weights(&built);
        let client = ClientTable::new(built.table.clone()).unwrap();
        let matcher = Matcher::new(&key, &built.table, built.index.clone()).unwrap();
        let listed = built.entries[0].clone();
        let real_keys = secret.keys(30, s).unwrap();
        let synthetic_secret =
            AccountSecret::generate(b"bench-account", SyntheticRate(u32::MAX), &mut rng).unwrap();
        let synthetic_keys = synthetic_secret.keys(30, s).unwrap();
        let sender = |keys| VoucherAccount {
            keys,
            account_id: b"bench-account",
            weights: &weights,
        };
        for (what, k) in [("real", &real_keys), ("synthetic", &synthetic_keys)] {
            let sender = sender(k);
            let mut upload = Upload::new(&next_id(), listed.clone(), b"ad".to_vec()).unwrap();
            g.bench_function(
                BenchmarkId::new(format!("voucher_create_{what}_t30"), s),
                |b| {
                    b.iter(|| {
                        // A fresh voucher id each time, as uploads have.
                        upload.voucher_id = next_id();
                        client
                            .create_threshold_voucher(&sender, black_box(&upload), &mut rand::rng())
                            .unwrap()
                    })
                },
            );
        }
        let batch: Vec<_> = (0..64)
            .map(|i| {
                let k = if i % 2 == 0 {
                    &real_keys
                } else {
                    &synthetic_keys
                };
                let upload = Upload::new(&next_id(), listed.clone(), Vec::new()).unwrap();
                client
                    .create_threshold_voucher(&sender(k), &upload, &mut rng)
                    .unwrap()
            })
            .collect();
        let pairs: Vec<(&[u8], _)> = batch.iter().map(|v| (&b"bench-account"[..], v)).collect();
        println!(
            "threshold: voucher at k = 3, t = 30, s = {s}: {} bytes",
            blindmatch_protocol::threshold::threshold_voucher_len(3, s)
        );
        g.throughput(Throughput::Elements(64));
        g.bench_function(BenchmarkId::new("open_batch64_t30", s), |b| {
            b.iter(|| matcher.open_threshold_batch(s, black_box(&pairs)))
        });
        g.throughput(Throughput::Elements(1));
        // The cost below the threshold: 29 real, the detection finds nothing.
        let below = &shares[1..];
        g.bench_function(BenchmarkId::new("detect_below_t30", s), |b| {
            b.iter(|| reveal(30, black_box(below)).unwrap())
        });
    }
    g.finish();
}

/// The server's group work per voucher (decode Q, multiply by α, encode)
/// and the table builder's per entry (map 64 hashed bytes to the group,
/// multiply by α, encode); 64 at a time, on each arithmetic this CPU runs
/// (blindmatch-batchmul's eight-way AVX-512 IFMA kernel, and
/// curve25519-dalek one point at a time).
fn batchmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("batchmul");
    let mut rng = rand::rng();
    let alpha = Scalar::random(&mut rng);
    let encodings: Vec<[u8; 32]> = (0..64)
        .map(|_| RistrettoPoint::random(&mut rng).compress().to_bytes())
        .collect();
    let uniform: Vec<[u8; 64]> = (0..64)
        .map(|_| {
            let mut u = [0u8; 64];
            rand::Rng::fill_bytes(&mut rng, &mut u);
            u
        })
        .collect();
    g.throughput(Throughput::Elements(encodings.len() as u64));
    for backend in [Backend::Dalek, Backend::Avx512Ifma8] {
        match BatchMul::with_backend(&alpha, backend) {
            Ok(m) => {
                g.bench_function(BenchmarkId::new("decode_mul_encode_64", backend), |b| {
                    b.iter(|| m.mul_encoded(black_box(&encodings)))
                });
                g.bench_function(BenchmarkId::new("map_mul_encode_64", backend), |b| {
                    b.iter(|| m.mul_uniform(black_box(&uniform)))
                });
            }
            Err(e) => eprintln!("batchmul: not measured here: {e}"),
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    floor,
    batchmul,
    hash_to_group,
    table_build,
    vouchers,
    threshold
);
criterion_main!(benches);

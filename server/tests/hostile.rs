//! Hostile input, everywhere it enters: one table per way in, each bad input
//! with the status or message it must get. After the RPC table the server
//! must still serve, and must have stored nothing it refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::time::Duration;

use blindmatch_client::SubmissionId;
use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_proto::v1::{DownloadTableRequest, SubmitRequest};
use tonic::Code;

#[path = "support/fixture.rs"]
mod fixture;
use fixture::*;

/// A gRPC codec that sends and receives raw bytes, to put malformed protobuf
/// on the wire.
#[derive(Clone, Default)]
struct Raw;

impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl tonic::codec::Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Calls `path` with `body` as the raw request message.
async fn raw_call(url: &str, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    grpc.unary::<Vec<u8>, Vec<u8>, Raw>(
        tonic::Request::new(body),
        http::uri::PathAndQuery::from_static(path),
        Raw,
    )
    .await
    .expect_err("a malformed request was accepted")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_rpc_input_gets_its_status_and_nothing_is_stored() {
    let fx = Fixture::new();
    let server = fx.start().await;
    let (_client, manifest, table) = connected(&fx, &server).await;
    let id = manifest.table_id().0.to_vec();
    let good = vouchers_for(&table, &with_ad(&listed()[..1], "good"));
    let v = good[0].clone();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = v.clone();
        f(&mut b);
        b
    };
    let submit = |table_id: Vec<u8>, vouchers: Vec<Vec<u8>>| SubmitRequest {
        table_id,
        vouchers,
        submission_id: { SubmissionId::random(&mut rand::rng()) }.0.to_vec(),
        account_id: Vec::new(),
    };
    let reused = { SubmissionId::random(&mut rand::rng()) }.0.to_vec();

    // (what, request, code, message fragment)
    let cases: Vec<(&str, SubmitRequest, Code, &str)> = vec![
        (
            "stale table id",
            submit(vec![7; 32], good.clone()),
            Code::FailedPrecondition,
            "fetch the manifest again",
        ),
        (
            "empty table id",
            submit(Vec::new(), good.clone()),
            Code::FailedPrecondition,
            "is not the current table",
        ),
        (
            "33-byte table id",
            submit([id.clone(), vec![0]].concat(), good.clone()),
            Code::FailedPrecondition,
            "is not the current table",
        ),
        (
            "65 vouchers (max 64)",
            submit(id.clone(), vec![v.clone(); 65]),
            Code::ResourceExhausted,
            "65 vouchers exceeds the maximum of 64",
        ),
        (
            "empty voucher",
            submit(id.clone(), vec![Vec::new()]),
            Code::InvalidArgument,
            "voucher 0:",
        ),
        (
            "truncated voucher",
            submit(id.clone(), vec![v.clone(), v[..v.len() - 1].to_vec()]),
            Code::InvalidArgument,
            "voucher 1:",
        ),
        (
            "oversized voucher",
            submit(id.clone(), vec![[v.clone(), vec![0]].concat()]),
            Code::InvalidArgument,
            "expected 1381 bytes, got 1382",
        ),
        (
            "voucher version 2",
            submit(id.clone(), vec![with(&|b| b[0] = 2)]),
            Code::InvalidArgument,
            "version",
        ),
        (
            "non-canonical Q",
            submit(id.clone(), vec![with(&|b| b[1..33].fill(0xff))]),
            Code::InvalidArgument,
            "not a canonical ristretto255 encoding",
        ),
        (
            "identity Q",
            submit(id.clone(), vec![with(&|b| b[1..33].fill(0))]),
            Code::InvalidArgument,
            "identity",
        ),
        (
            "15-byte submission id",
            SubmitRequest {
                submission_id: vec![1; 15],
                ..submit(id.clone(), good.clone())
            },
            Code::InvalidArgument,
            "submission_id is 15 bytes",
        ),
        (
            "17-byte submission id",
            SubmitRequest {
                submission_id: vec![1; 17],
                ..submit(id.clone(), good.clone())
            },
            Code::InvalidArgument,
            "submission_id is 17 bytes",
        ),
    ];
    let mut raw = VoucherServiceClient::connect(server.url()).await.unwrap();
    for (what, request, code, fragment) in cases {
        let status = raw.submit(request).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        assert!(
            status.message().contains(fragment),
            "{what}: {}",
            status.message()
        );
    }

    // A submission id used again for other vouchers.
    raw.submit(SubmitRequest {
        submission_id: reused.clone(),
        ..submit(id.clone(), good.clone())
    })
    .await
    .unwrap();
    let other = vouchers_for(&table, &with_ad(&unlisted()[..1], "x"));
    let status = raw
        .submit(SubmitRequest {
            submission_id: reused,
            ..submit(id.clone(), other)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{}", status.message());

    // Downloads.
    let mut tables = TableServiceClient::connect(server.url()).await.unwrap();
    let len = manifest.header().slots_len();
    let downloads: Vec<(&str, DownloadTableRequest, Code, &str)> = vec![
        (
            "stale id",
            DownloadTableRequest {
                table_id: vec![7; 32],
                offset: 0,
            },
            Code::FailedPrecondition,
            "fetch the manifest again",
        ),
        (
            "offset not a chunk boundary",
            DownloadTableRequest {
                table_id: id.clone(),
                offset: 32,
            },
            Code::InvalidArgument,
            "not a multiple of the 65536-byte chunk",
        ),
        (
            "offset past the end",
            DownloadTableRequest {
                table_id: id.clone(),
                offset: len + 65536,
            },
            Code::InvalidArgument,
            "chunk within",
        ),
        (
            "offset u64::MAX",
            DownloadTableRequest {
                table_id: id.clone(),
                offset: u64::MAX,
            },
            Code::InvalidArgument,
            "within",
        ),
    ];
    for (what, request, code, fragment) in downloads {
        let status = tables.download_table(request).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        assert!(
            status.message().contains(fragment),
            "{what}: {}",
            status.message()
        );
    }

    // Deltas: from an unknown or malformed id, or to a table not current.
    let deltas = [
        (
            "delta from an unknown table",
            vec![7u8; 32],
            id.clone(),
            Code::NotFound,
            "download the full table",
        ),
        (
            "delta from a 3-byte id",
            vec![7u8; 3],
            id.clone(),
            Code::NotFound,
            "no delta from table 070707",
        ),
        (
            "delta from the current table to itself",
            id.clone(),
            id.clone(),
            Code::NotFound,
            "no delta",
        ),
        (
            "delta to a stale table",
            id.clone(),
            vec![1u8; 32],
            Code::FailedPrecondition,
            "fetch the manifest again",
        ),
    ];
    for (what, from, to, code, fragment) in deltas {
        let status = tables
            .download_delta(blindmatch_proto::v1::DownloadDeltaRequest {
                from_table_id: from,
                to_table_id: to,
            })
            .await
            .expect_err(what);
        assert_eq!(status.code(), code, "{what}: {}", status.message());
        assert!(
            status.message().contains(fragment),
            "{what}: {}",
            status.message()
        );
    }

    // Malformed and oversized protobuf on the wire.
    let url = server.url();
    let garbage = raw_call(&url, "/blindmatch.v1.VoucherService/Submit", vec![0xff; 64]).await;
    assert_eq!(garbage.code(), Code::Internal, "{garbage:?}");
    assert!(garbage.message().contains("decode"), "{garbage:?}");
    let garbage = raw_call(
        &url,
        "/blindmatch.v1.TableService/DownloadTable",
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    )
    .await;
    assert_eq!(garbage.code(), Code::Internal, "{garbage:?}");
    let huge = raw_call(
        &url,
        "/blindmatch.v1.VoucherService/Submit",
        vec![0; 8 << 20],
    )
    .await;
    assert_eq!(huge.code(), Code::OutOfRange, "{huge:?}");
    assert!(huge.message().contains("too large"), "{huge:?}");
    // GetManifest takes no fields: unknown ones are skipped (protobuf), but
    // bytes that are not protobuf at all are refused.
    let garbage = raw_call(
        &url,
        "/blindmatch.v1.TableService/GetManifest",
        vec![0xff; 16],
    )
    .await;
    assert_eq!(garbage.code(), Code::Internal, "{garbage:?}");
    let unknown = raw_call(&url, "/blindmatch.v1.VoucherService/Nope", Vec::new()).await;
    assert_eq!(unknown.code(), Code::Unimplemented, "{unknown:?}");

    // Still serving; only the two good submissions were stored.
    let ok = raw.submit(submit(id, good)).await.unwrap().into_inner();
    assert_eq!(ok.accepted, 1);
    assert!(server.wait_processed(2, Duration::from_secs(20)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.processed(), 2, "a refused request was stored");
    assert_eq!(recorded(&fx.data).len(), 2);
    server.shutdown().await.unwrap();
}

/// Runs the real binary; returns (exit code, stderr).
fn run(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_blindmatch-server"))
        .args(args)
        .env_remove("BLINDMATCH_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "a panic: {err}");
    (out.status.code(), err)
}

/// Every file the binaries read, and their flags: a clear error naming the
/// problem, exit status 2 (or clap's 2 for flags), never a panic.
#[test]
fn every_bad_file_and_flag_gets_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    let dir = fx.dir.path();
    let key = std::fs::read(&fx.key).unwrap();
    let table = std::fs::read(&fx.table).unwrap();
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    let other_key = dir.join("other.key");
    blindmatch_server::keyfile::write_new(&other_key).unwrap();
    let mut bad_magic = key.clone();
    bad_magic[0] ^= 1;
    let mut bad_version = key.clone();
    bad_version[4] = 9;
    let mut bad_public = key.clone();
    bad_public[68] ^= 1;
    let mut zero_scalar = key.clone();
    zero_scalar[5..37].fill(0);
    let keys = [
        ("missing key", dir.join("nope.key"), "No such file"),
        (
            "short key",
            write("short.key", &key[..40], 0o600),
            "expected 69 bytes, got 40",
        ),
        (
            "bad magic",
            write("magic.key", &bad_magic, 0o600),
            "wrong magic",
        ),
        (
            "bad version",
            write("version.key", &bad_version, 0o600),
            "unsupported version 9",
        ),
        (
            "public key mismatch",
            write("public.key", &bad_public, 0o600),
            "does not match",
        ),
        (
            "zero scalar",
            write("zero.key", &zero_scalar, 0o600),
            "zero scalar",
        ),
        (
            "readable by others",
            write("open.key", &key, 0o644),
            "chmod 600",
        ),
        ("key of another table", other_key, "table"),
    ];
    for (what, path, fragment) in keys {
        let (code, err) = serve(&fx, &path, &fx.table);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(fragment), "{what}: {err}");
    }
    let tables = [
        ("missing table", dir.join("nope.bmt"), "No such file"),
        (
            "empty table file",
            write("empty.bmt", b"", 0o600),
            "too short",
        ),
        (
            "not a table file",
            write("text.bmt", b"sha256 abc\n", 0o600),
            "not a blindmatch table file",
        ),
        (
            "truncated table file",
            write("cut.bmt", &table[..table.len() / 2], 0o600),
            "truncated inside",
        ),
        (
            "trailing bytes",
            write("long.bmt", &[table.clone(), vec![0]].concat(), 0o600),
            "unexpected bytes",
        ),
    ];
    for (what, path, fragment) in tables {
        let (code, err) = serve(&fx, &fx.key, &path);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(fragment), "{what}: {err}");
    }

    // Lists given to build.
    let lists: [(&str, &[u8], &str); 12] = [
        ("unknown type", b"sha512 00\n", "unknown item type"),
        ("odd hex", b"sha256 abc\n", "odd number of hex digits"),
        ("wrong length", b"md5 00\n", "expected 16"),
        (
            "non-hex",
            b"sha1 zz39a3ee5e6b4b0d3255bfef95601890afd80709\n",
            "non-hex character",
        ),
        ("not UTF-8", b"sha256 \xff\xfe\n", "line 1"),
        ("nothing in it", b"# only a comment\n", "no entries"),
        // The formats operators receive (lists/): each bad record named.
        (
            "NCMEC fingerprint",
            b"<queryResult>\n<images>\n<image><id>a</id>\n<fingerprints><md5>abc</md5></fingerprints></image>\n</images>\n</queryResult>\n",
            "image 1 (line 4): fingerprint md5: not 32 hex digits: 3 digits",
        ),
        (
            "not NCMEC's XML",
            b"<?xml version=\"1.0\"?><status/>",
            "not NCMEC's <queryResult>",
        ),
        (
            "StopNCII status",
            b"{\"hashRecords\": [{\"signalType\": \"VideoMD5\", \"hashValue\": \"00\", \"hashStatus\": \"?\"}]}",
            "record 1 (line 1): hashStatus: unknown status",
        ),
        (
            "truncated TCAP JSON",
            b"{\"results\": [{\"algorithm\": \"MD5\",",
            "not valid JSON",
        ),
        (
            "ThreatExchange value",
            b"signal_type,signal_str,collab,category,tags\nvideo_md5,0123,c,POSITIVE_CLASS,\n",
            "line 2: signal_str: not 32 hex digits: 4 digits",
        ),
        (
            "nothing blindmatch can match",
            b"signal_type,signal_str\nphoto_dna,\"1,2,3\"\n",
            "no list lists a value blindmatch can match (left out: 1 value(s) of types blindmatch cannot match exactly (photo_dna 1))",
        ),
    ];
    for (what, text, fragment) in lists {
        let list = write("list.txt", text, 0o600);
        let out = dir.join("out.bmt");
        let (code, err) = run(&[
            "build".as_ref(),
            "--list".as_ref(),
            list.as_os_str(),
            "--key".as_ref(),
            fx.key.as_os_str(),
            "--signing-key".as_ref(),
            fx.signing_key.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(fragment), "{what}: {err}");
        assert!(!out.exists(), "{what}: a table was written");
    }

    // Flags.
    let good_list = write(
        "good.txt",
        b"sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
        0o600,
    );
    let k9 = dir.join("k9.bmt");
    let open_signing = write("open.sign", &std::fs::read(&fx.signing_key).unwrap(), 0o644);
    let garbage_signing = write("garbage.sign", b"BMSG\x01not a key", 0o600);
    let not_a_table = write("not-a-table.bmt", b"hello", 0o600);
    let (open_s, garbage_s, not_t, table_s) = (
        open_signing.to_str().unwrap().to_string(),
        garbage_signing.to_str().unwrap().to_string(),
        not_a_table.to_str().unwrap().to_string(),
        fx.table.to_str().unwrap().to_string(),
    );
    let stranger = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let flags: [(&[&str], &str); 17] = [
        (
            &["serve", "--max-batch", "0"],
            "max-batch must be at least 1",
        ),
        (&["serve", "--listen", "nowhere"], "invalid socket address"),
        (
            &["serve", "--rate-limit", "0"],
            "rate-limit must be at least 1",
        ),
        (&["serve", "--dedup-window", "soon"], "--dedup-window"),
        (&["build", "--k", "9"], "k"),
        (&["serve", "--previous-table", &table_s], "--previous-key"),
        (&["serve", "--grace", "a while"], "--grace"),
        (
            &["serve", "--operator-key", stranger],
            "not signed by the operator key given",
        ),
        (&["serve", "--operator-key", "cafe"], "operator-key"),
        (&["build", "--decoys", "5"], "--base"),
        (&["build", "--signing-key", &open_s], "others can read it"),
        (&["build", "--signing-key", &garbage_s], "signing key"),
        (&["build", "--base", &not_t], "not a blindmatch table file"),
        (
            &["build", "--base", &table_s, "--k", "4"],
            "differs from the base table's k = 3",
        ),
        (
            &["build", "--signing-key", "/nonexistent/op.sign"],
            "signing key file /nonexistent/op.sign",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
        (
            &["build", "--list", "ncmc:/nonexistent/list.xml"],
            "a list's format is given as FORMAT:FILE",
        ),
    ];
    for (args, fragment) in flags {
        let mut full: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        if args[0] == "serve" {
            full.extend([
                "--plaintext".as_ref(),
                "--table".as_ref(),
                fx.table.as_os_str(),
                "--key".as_ref(),
                fx.key.as_os_str(),
                "--data".as_ref(),
                fx.data.as_os_str(),
            ]);
        }
        if args[0] == "build" {
            full.extend([
                "--list".as_ref(),
                good_list.as_os_str(),
                "--key".as_ref(),
                fx.key.as_os_str(),
                "--out".as_ref(),
                k9.as_os_str(),
            ]);
            if !args.contains(&"--signing-key") {
                full.extend(["--signing-key".as_ref(), fx.signing_key.as_os_str()]);
            }
        }
        let (code, err) = run(&full);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(fragment), "{args:?}: {err}");
    }
}

fn serve(fx: &Fixture, key: &std::path::Path, table: &std::path::Path) -> (Option<i32>, String) {
    run(&[
        "serve".as_ref(),
        "--plaintext".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
        "--table".as_ref(),
        table.as_os_str(),
        "--data".as_ref(),
        fx.data.as_os_str(),
    ])
}

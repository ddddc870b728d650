//! What the server's integration tests share: a list, a key and a table
//! built by the real `keygen` and `build`, servers in process or as the real
//! binary, and the items on and off the list.

#![allow(dead_code, reason = "each test crate uses a part")]

use std::io::Write;
use std::path::{Path, PathBuf};

use blindmatch_client::core::{Submission, SubmissionId};
use blindmatch_client::{Client, Table, TableCache};
use blindmatch_protocol::{Item, ItemType, OperatorVerifyingKey, TableId};
use blindmatch_server::{BuildOptions, ServeConfig, ServerHandle};
use sha2::{Digest, Sha256};

/// One listed item of every type, and unlisted ones.
pub(crate) fn listed() -> Vec<Item> {
    ItemType::ALL
        .into_iter()
        .map(|t| {
            let d = Sha256::digest(format!("listed {t}"));
            Item::new(t, &d[..t.fixed_len().unwrap_or(24)]).unwrap()
        })
        .collect()
}

pub(crate) fn unlisted() -> Vec<Item> {
    ItemType::ALL
        .into_iter()
        .map(|t| {
            let d = Sha256::digest(format!("unlisted {t}"));
            Item::new(t, &d[..t.fixed_len().unwrap_or(24)]).unwrap()
        })
        .collect()
}

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) table: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) signing_key: PathBuf,
    pub(crate) operator: OperatorVerifyingKey,
    pub(crate) data: PathBuf,
}

impl Fixture {
    /// A list of 2,000 generated entries plus [`listed`], a key, a table.
    pub(crate) fn new() -> Fixture {
        Self::with_threshold(None)
    }

    /// [`Fixture::new`], in threshold mode with `(t, s)` if given.
    pub(crate) fn with_threshold(threshold: Option<(u16, u16)>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.txt");
        let mut f = std::fs::File::create(&list).unwrap();
        writeln!(f, "# test list").unwrap();
        for i in 0..2000 {
            writeln!(f, "{}", hex::encode(Sha256::digest(format!("bulk {i}")))).unwrap();
        }
        for item in listed() {
            writeln!(f, "{} {}", item.item_type(), item.to_hex()).unwrap();
        }
        drop(f);
        let key = dir.path().join("server.key");
        blindmatch_server::keyfile::write_new(&key).unwrap();
        let signing_key = dir.path().join("operator.sign");
        let operator = blindmatch_server::keyfile::write_new_signing(&signing_key)
            .unwrap()
            .verifying_key();
        let table = dir.path().join("table.bmt");
        let opts = BuildOptions {
            threshold,
            ..build_options(&signing_key, None)
        };
        blindmatch_server::build(&list, &key, &table, &opts).unwrap();
        let data = dir.path().join("data");
        Fixture {
            dir,
            table,
            key,
            signing_key,
            operator,
            data,
        }
    }

    pub(crate) async fn start(&self) -> ServerHandle {
        self.start_with(|c| c).await.unwrap()
    }

    /// Starts a server with batches of at most 64 and whatever `configure`
    /// changes.
    pub(crate) async fn start_with(
        &self,
        configure: impl FnOnce(ServeConfig) -> ServeConfig,
    ) -> anyhow::Result<ServerHandle> {
        blindmatch_server::serve::start(configure(ServeConfig {
            max_batch: 64,
            ..self.config()
        }))
        .await
    }

    /// The defaults, with this fixture's files and a free loopback port.
    pub(crate) fn config(&self) -> ServeConfig {
        ServeConfig::new(
            self.table.clone(),
            self.key.clone(),
            self.data.clone(),
            "127.0.0.1:0".parse().unwrap(),
        )
    }

    pub(crate) fn cache(&self, name: &str) -> TableCache {
        TableCache::new(self.dir.path().join(name))
    }
}

/// Build options for a sha256 list signed with `signing_key`.
pub(crate) fn build_options(signing_key: &Path, base: Option<PathBuf>) -> BuildOptions {
    BuildOptions {
        default_type: Some(ItemType::Sha256),
        k: None,
        load_factor: None,
        progress: false,
        signing_key: signing_key.to_path_buf(),
        base,
        decoys: 0,
        threshold: None,
    }
}

pub(crate) async fn channel(server: &ServerHandle) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(server.url())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A client connected to `server`, with the manifest and the validated table.
pub(crate) async fn connected(
    fx: &Fixture,
    server: &ServerHandle,
) -> (Client, blindmatch_client::Manifest, Table) {
    let mut client = Client::connect(&server.url(), fx.operator).await.unwrap();
    let manifest = client.manifest().await.unwrap();
    let table = client.table(&manifest, &fx.cache("cache")).await.unwrap();
    (client, manifest, table)
}

/// Encoded version-1 vouchers for `items` under `table`, whatever its mode:
/// what an honest client's submission holds, for tests that send vouchers
/// by hand (to a threshold table, or cut, or under an id of their own).
pub(crate) fn vouchers_for(table: &Table, items: &[(Item, Vec<u8>)]) -> Vec<Vec<u8>> {
    Table::unverified(table.client_table().clone())
        .submission(items, &mut rand::rng())
        .unwrap()
        .vouchers
}

/// `vouchers` for `table_id` as one submission under a fresh id, with no
/// account: what [`Client::submit`] sends, whatever the vouchers hold.
pub(crate) fn submission(table_id: &TableId, vouchers: Vec<Vec<u8>>) -> Submission {
    account_submission(table_id, &[], vouchers)
}

/// [`submission`] bound to `account_id` (threshold mode).
pub(crate) fn account_submission(
    table_id: &TableId,
    account_id: &[u8],
    vouchers: Vec<Vec<u8>>,
) -> Submission {
    Submission {
        id: SubmissionId::random(&mut rand::rng()),
        table_id: *table_id,
        account_id: account_id.to_vec(),
        vouchers,
        // Informational on the client side: the server computes its own.
        digest: [0; 32],
    }
}

/// `submission` under the id `id` (a retry, or a reuse).
pub(crate) fn with_id(submission: Submission, id: SubmissionId) -> Submission {
    Submission { id, ..submission }
}

pub(crate) fn with_ad(items: &[Item], tag: &str) -> Vec<(Item, Vec<u8>)> {
    items
        .iter()
        .enumerate()
        .map(|(i, it)| (it.clone(), format!("{tag} {i}").into_bytes()))
        .collect()
}

pub(crate) fn recorded(data: &Path) -> Vec<(String, String, Vec<u8>)> {
    blindmatch_server::store::read_all(data)
        .unwrap()
        .into_iter()
        .map(|r| (r.item_type, r.item_hex, r.associated_data))
        .collect()
}

pub(crate) fn expected(items: &[(Item, Vec<u8>)]) -> Vec<(String, String, Vec<u8>)> {
    items
        .iter()
        .map(|(i, ad)| (i.item_type().name().to_string(), i.to_hex(), ad.clone()))
        .collect()
}

pub(crate) async fn client_for(fx: &Fixture, server: &ServerHandle) -> Client {
    Client::connect(&server.url(), fx.operator).await.unwrap()
}

pub(crate) fn spawn_server(fx: &Fixture) -> (std::process::Child, String) {
    spawn_server_with(fx, &[])
}

/// [`spawn_server`] with more flags.
pub(crate) fn spawn_server_with(
    fx: &Fixture,
    extra: &[&std::ffi::OsStr],
) -> (std::process::Child, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_blindmatch-server"));
    cmd.args([
        "serve",
        "--plaintext",
        "--listen",
        "127.0.0.1:0",
        "--max-batch",
        "64",
    ])
    .arg("--table")
    .arg(&fx.table)
    .arg("--key")
    .arg(&fx.key)
    .arg("--data")
    .arg(&fx.data)
    .args(extra);
    spawn(cmd)
}

/// Starts the server command, returns it and the URL it announces.
pub(crate) fn spawn(mut cmd: std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    (child, url)
}

//! `blindmatch`: check items against a blindmatch server from the command
//! line. It prints how many vouchers were submitted and acknowledged, and
//! nothing else: it cannot know, and is not told, whether anything matched.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use blindmatch_client::cli::{AccountCommand, Cli, Command, Server};
use blindmatch_client::{Client, Fetched, TableCache, Upload};
use blindmatch_protocol::tlog::{CosignerKey, LogPolicy, LogVerifyingKey};
use blindmatch_protocol::{Item, ItemType, OperatorVerifyingKey};
use clap::Parser;
use sha2::{Digest, Sha256};

/// The CLI's voucher id for an upload (SPEC 14.4 leaves it to the
/// platform): a hash of the account, the item and its associated data, so
/// that checking one upload twice gives one share. It never leaves the
/// device; the server sees only x, a PRF of it under the account's key.
fn voucher_id(account_id: &[u8], item: &Item, ad: &[u8]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(b"blindmatch-cli/voucher-id");
    for part in [
        account_id,
        item.item_type().name().as_bytes(),
        item.value(),
        ad,
    ] {
        h.update(u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        h.update(part);
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize()[..16]);
    id
}

fn sha256_file(path: &PathBuf) -> anyhow::Result<Item> {
    let mut f = std::fs::File::open(path).with_context(|| format!("--file {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("--file {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Item::new(ItemType::Sha256, &h.finalize())?)
}

/// `--operator-key HEX|PATH`: 64 hex digits, or a file holding them (as
/// `blindmatch-server keygen --signing` writes it).
fn operator_key(value: &str) -> anyhow::Result<OperatorVerifyingKey> {
    let text = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .with_context(|| format!("{value}: neither 64 hex digits nor a readable file"))?
    };
    Ok(blindmatch_client::core::operator_key_from_hex(&text)?)
}

/// Who co-signed the table, for a client that requires a quorum.
fn cosigned_by(manifest: &blindmatch_client::Manifest) -> Option<String> {
    let names: Vec<&str> = manifest
        .cosigners()
        .iter()
        .map(|(_, n)| n.as_str())
        .collect();
    (!names.is_empty()).then(|| format!("co-signed by: {}", names.join(", ")))
}

async fn connect(
    server: &Server,
) -> anyhow::Result<(Client, blindmatch_client::Manifest, TableCache)> {
    let read = |p: &PathBuf, what: &str| {
        std::fs::read(p).with_context(|| format!("{what} {}", p.display()))
    };
    let tls = blindmatch_client::TlsOptions {
        ca_pem: server.ca.as_ref().map(|p| read(p, "--ca")).transpose()?,
        identity: match (&server.tls_cert, &server.tls_key) {
            (Some(c), Some(k)) => Some((read(c, "--tls-cert")?, read(k, "--tls-key")?)),
            _ => None,
        },
        domain: server.tls_domain.clone(),
    };
    let operator = operator_key(&server.operator_key).context("--operator-key")?;
    let mut client = Client::connect_with(&server.server, operator, tls).await?;
    client.set_max_age(server.max_table_age);
    if !server.org_keys.is_empty() {
        let orgs = server
            .org_keys
            .iter()
            .map(|k| operator_key(k).with_context(|| format!("--org-key {k}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let required = server.org_quorum.unwrap_or(orgs.len());
        let quorum =
            blindmatch_client::core::Quorum::new(&orgs, required).context("--org-quorum")?;
        client.set_quorum(Some(quorum));
    }
    let cache = TableCache::new(server.cache.clone().unwrap_or_else(TableCache::default_dir));
    if let Some(policy) = log_policy(server)? {
        client.set_log_policy(Some(policy), &cache)?;
    }
    let manifest = client.manifest().await?;
    Ok((client, manifest, cache))
}

/// `--log-policy FILE`, or `--log-key` with `--witness-key` and
/// `--witness-quorum`.
fn log_policy(server: &Server) -> anyhow::Result<Option<LogPolicy>> {
    if let Some(path) = &server.log_policy {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--log-policy {}", path.display()))?;
        return Ok(Some(
            LogPolicy::parse(&text).with_context(|| format!("--log-policy {}", path.display()))?,
        ));
    }
    let Some(log) = &server.log_key else {
        return Ok(None);
    };
    let log = LogVerifyingKey::parse(log).context("--log-key")?;
    let witnesses = server
        .witness_keys
        .iter()
        .map(|k| CosignerKey::parse(k).with_context(|| format!("--witness-key {k}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if witnesses.is_empty() {
        eprintln!(
            "warning: --log-key without --witness-key: the log's key alone is trusted (no witness checks that the log shows everyone one history)"
        );
    }
    let quorum = server.witness_quorum.unwrap_or(witnesses.len());
    Ok(Some(
        LogPolicy::new(log, &witnesses, quorum).context("--witness-quorum")?,
    ))
}

/// Where the table is logged, for a client that checks the log.
fn logged_at(manifest: &blindmatch_client::Manifest) -> Option<String> {
    let c = manifest.verified().log_checkpoint()?;
    let witnesses = if c.witnesses().is_empty() {
        "no witnesses".to_owned()
    } else {
        format!("witnessed by: {}", c.witnesses().join(", "))
    };
    Some(format!(
        "in the transparency log {} (checkpoint of size {}), {witnesses}",
        c.checkpoint().origin,
        c.checkpoint().size
    ))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Fetch { server } => {
            let (mut client, manifest, cache) = connect(&server).await?;
            let (table, fetched) = client.fetch_table(&manifest, &cache).await?;
            blindmatch_client::core::validate_table(table, manifest.verified())
                .context("validating the table")?;
            let how = match fetched {
                Fetched::Cached => "already cached".to_string(),
                Fetched::Delta { from, slots, bytes } => {
                    format!(
                        "updated from version {from} with a delta of {slots} slots ({bytes} bytes)"
                    )
                }
                Fetched::Full {
                    bytes,
                    delta_refused,
                } => match delta_refused {
                    Some(why) => format!("downloaded in full ({bytes} bytes); no delta: {why}"),
                    None => format!("downloaded ({bytes} bytes)"),
                },
            };
            println!(
                "table version {} ({}) verified: {how}; {} slots, k = {}",
                manifest.version(),
                hex::encode(manifest.table_id().0),
                manifest.header().n_slots,
                manifest.header().k
            );
            if let Some(line) = cosigned_by(&manifest) {
                println!("{line}");
            }
            if let Some(line) = logged_at(&manifest) {
                println!("{line}");
            }
        }
        Command::Manifest { server, json } => {
            let (_, manifest, _) = connect(&server).await?;
            if json {
                let j = blindmatch_client::core::manifest_json(manifest.signed());
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                let m = manifest.verified();
                println!(
                    "version {} built at {} (unix), table id {}, digest {}",
                    m.version(),
                    m.created(),
                    hex::encode(m.table_id().0),
                    hex::encode(m.digest())
                );
                if let Some(p) = m.threshold() {
                    println!(
                        "threshold mode (protocol version 2): t = {}, s = {}",
                        p.threshold(),
                        p.synthetic_bound()
                    );
                }
                if let Some(line) = cosigned_by(&manifest) {
                    println!("{line}");
                }
                if let Some(line) = logged_at(&manifest) {
                    println!("{line}");
                }
            }
        }
        Command::Check {
            server,
            sha256,
            md5,
            sha1,
            pdq,
            file,
            ad,
            account,
        } => {
            let mut items = Vec::new();
            for (t, flag, values) in [
                (ItemType::Sha256, "--sha256", &sha256),
                (ItemType::Md5, "--md5", &md5),
                (ItemType::Sha1, "--sha1", &sha1),
                (ItemType::Pdq, "--pdq", &pdq),
            ] {
                for v in values {
                    items.push(Item::parse(t, v).context(flag)?);
                }
            }
            for path in &file {
                items.push(sha256_file(path)?);
            }
            if items.is_empty() {
                anyhow::bail!("nothing to check: give --sha256, --md5, --sha1, --pdq or --file");
            }
            if ad.len() > blindmatch_protocol::MAX_AD_LEN {
                anyhow::bail!(
                    "--ad is {} bytes, at most {} are allowed",
                    ad.len(),
                    blindmatch_protocol::MAX_AD_LEN
                );
            }
            let (mut client, manifest, cache) = connect(&server).await?;
            let table = client.table(&manifest, &cache).await?;
            let with_ad: Vec<(Item, Vec<u8>)> = items
                .into_iter()
                .map(|i| (i, ad.as_bytes().to_vec()))
                .collect();
            // The core refuses a submission of the wrong mode for the table
            // (SPEC 14); the flag to change is named here.
            let n = match account {
                None => client
                    .check(&manifest, &table, &with_ad)
                    .await
                    .context("without --account")?,
                Some(path) => {
                    let secret = blindmatch_client::account::read(&path)?;
                    let uploads: Vec<Upload> = with_ad
                        .into_iter()
                        .map(|(item, ad)| Upload {
                            voucher_id: voucher_id(secret.account_id(), &item, &ad),
                            item,
                            associated_data: ad,
                        })
                        .collect();
                    client
                        .check_account(&manifest, &table, &secret, &uploads)
                        .await
                        .with_context(|| format!("--account {}", path.display()))?
                }
            };
            println!("{n} vouchers submitted and acknowledged");
        }
        Command::Account {
            command:
                AccountCommand::New {
                    out,
                    id,
                    synthetic_rate,
                },
        } => {
            blindmatch_client::account::create(&out, id.as_bytes(), synthetic_rate)?;
            println!(
                "wrote account secret {} (mode 0600) for account id {id:?}, synthetic rate {synthetic_rate}; \
                 keep it secret, and give the account's other devices the same file",
                out.display()
            );
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

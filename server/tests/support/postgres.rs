//! The PostgreSQL the tests use: the cluster `scripts/pg-test-cluster.sh`
//! starts (`.ci/run` does), named by one variable, `BLINDMATCH_TEST_POSTGRES`
//! (a URL of a role that may create databases). Each test gets a database
//! of its own.
//!
//! Without the variable a PostgreSQL test says so on stderr and passes as
//! skipped; under CI (`CI` set) it fails instead, so that a CI run without
//! PostgreSQL cannot look green.

#![allow(dead_code, reason = "each test crate uses a part")]

/// The variable naming the test cluster.
pub(crate) const VAR: &str = "BLINDMATCH_TEST_POSTGRES";

/// The cluster's URL, or `None` (after saying so loudly) if there is none.
pub(crate) fn cluster(test: &str) -> Option<String> {
    match std::env::var(VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {VAR} is not set under CI: .ci/run starts a PostgreSQL cluster for these tests"
            );
            eprintln!(
                "SKIPPED {test}: no PostgreSQL ({VAR} is not set). Run: eval \"$(scripts/pg-test-cluster.sh start)\""
            );
            None
        }
    }
}

/// Runs `sql` on the cluster (as its URL's role, on its database).
pub(crate) fn execute(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (url, sql) = (url.to_owned(), sql.to_owned());
    // On a thread of its own: callers may be inside a runtime already.
    std::thread::spawn(move || {
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("{VAR}: cannot connect: {e}"));
            tokio::spawn(conn);
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    })
    .join()
    .unwrap();
}

/// A new, empty database on the cluster; returns its URL.
pub(crate) fn fresh_database(test: &str) -> Option<String> {
    let url = cluster(test)?;
    let name = format!("bm_{}_{:08x}", sanitize(test), rand::random::<u32>());
    execute(&url, &format!("CREATE DATABASE {name}"));
    let (base, query) = url.split_once('?').unwrap_or((&url, ""));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    Some(if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    })
}

fn sanitize(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .take(24)
        .collect::<String>()
        .to_lowercase()
}

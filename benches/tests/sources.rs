//! The load's streams come from the source addresses they are bound to, as
//! the server sees them: checked through the server's per-source connection
//! cap, which counts connections by the same peer address that its
//! admission's fair share does. With a cap of one connection per source,
//! two streams from two sources both get through and a second from the
//! same source is closed; were the binding lost (every stream from
//! 127.0.0.1), the second source's stream would be closed too.

use blindmatch_benches::items::sha_items;
use blindmatch_benches::load;
use blindmatch_benches::service;
use blindmatch_proto::v1::GetManifestRequest;
use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_protocol::TableBuilder;
use blindmatch_server::ServeConfig;

#[tokio::test]
async fn each_source_is_its_own_client_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let key = blindmatch_server::keyfile::write_new(&dir.path().join("server.key")).unwrap();
    let built = TableBuilder::new([7; 32])
        .build(&key, sha_items(100, "sources test"))
        .unwrap();
    service::write_table(dir.path(), &built).unwrap();
    let mut cfg = ServeConfig::new(
        dir.path().join("table.bmt"),
        dir.path().join("server.key"),
        dir.path().join("data"),
        "127.0.0.1:0".parse().unwrap(),
    );
    cfg.limits.connections.max_per_source = 1;
    let server = blindmatch_server::serve::start(cfg).await.unwrap();
    let url = server.url();

    let (a, b) = (load::source(1), load::source(2));
    assert_eq!((a.octets(), b.octets()), ([127, 0, 0, 2], [127, 0, 0, 3]));
    let mut from_a = TableServiceClient::new(load::channel(&url, a).await.unwrap());
    let mut from_b = TableServiceClient::new(load::channel(&url, b).await.unwrap());
    from_a
        .get_manifest(GetManifestRequest::default())
        .await
        .unwrap();
    from_b
        .get_manifest(GetManifestRequest::default())
        .await
        .unwrap();

    // A second connection from a source at its cap is closed on accept:
    // either the handshake or the first call fails.
    let again = async {
        let mut c = TableServiceClient::new(load::channel(&url, a).await?);
        c.get_manifest(GetManifestRequest::default()).await?;
        anyhow::Ok(())
    };
    assert!(
        again.await.is_err(),
        "a second connection from {a} got through a cap of one per source"
    );
    // The first ones are still served.
    from_a
        .get_manifest(GetManifestRequest::default())
        .await
        .unwrap();
    server.shutdown().await.unwrap();
}

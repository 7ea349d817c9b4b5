//! Starting and stopping a real private cluster.

use std::net::TcpStream;

use guild_pg::{Cluster, Storage};

#[test]
fn cluster_starts_on_loopback_and_is_gone_after_stop() {
    let cluster = Cluster::start(&Storage::Ephemeral).expect("cluster starts");
    let data_dir = cluster.data_dir().to_owned();
    let port = cluster.port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
    assert!(data_dir.join("PG_VERSION").exists());
    assert_eq!(
        cluster.url("postgres"),
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );

    cluster.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // An ephemeral cluster removes its temporary directory when it stops.
    assert!(!data_dir.exists());
    assert!(!data_dir.parent().expect("temporary root").exists());
}

#[test]
fn a_kept_cluster_restarts_on_its_existing_data() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("pg");
    let storage = Storage::Persistent(data_dir.clone());
    let first = Cluster::start(&storage).expect("first start");
    first.stop();
    assert!(data_dir.join("PG_VERSION").exists());
    let second = Cluster::start(&storage).expect("second start");
    assert!(TcpStream::connect(("127.0.0.1", second.port())).is_ok());
    second.stop();
}

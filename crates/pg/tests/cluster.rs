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

#[test]
fn a_kept_cluster_starts_under_a_private_directory_and_is_found_again() {
    use std::os::unix::fs::PermissionsExt;
    // What `mkdir -m 700 /root/demo` or `mktemp -d` make: closed to every other user,
    // the postgres user included.
    let private = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod 700");
    let requested = private.path().join("demo/.guild/pg");
    let storage = Storage::Persistent(requested.clone());

    let cluster = Cluster::start(&storage).expect("starts under a 0700 parent");
    assert!(TcpStream::connect(("127.0.0.1", cluster.port())).is_ok());
    let data_dir = cluster.data_dir().to_owned();
    assert!(data_dir.join("PG_VERSION").exists());
    // The requested path leads to the data, wherever it is kept.
    assert_eq!(requested.canonicalize().expect("resolves"), data_dir);
    cluster.stop();

    let again = Cluster::start(&storage).expect("starts again on the same data");
    assert_eq!(again.data_dir(), data_dir);
    again.stop();
    if !data_dir.starts_with(private.path()) {
        // Kept elsewhere (as root): the test removes what it made there.
        assert!(
            data_dir.starts_with(guild_pg::RELOCATED_ROOT),
            "{}",
            data_dir.display()
        );
        std::fs::remove_dir_all(&data_dir).expect("remove the relocated cluster");
    }
}

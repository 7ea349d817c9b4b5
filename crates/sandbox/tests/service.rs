//! Services: a server in a sandbox with no network, reached from the host through the relay,
//! and reaching a host address through it; stopping one leaves nothing behind.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use guild_sandbox::{CommandSpec, Limits, NotReady, Reach, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The status line and body of `GET path` on `addr`.
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    format!("{status}\n{body}")
}

/// A host TCP server that answers each line with `echo: LINE`.
async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0; 1024];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let answer = format!("echo: {}", String::from_utf8_lossy(&buf[..n]));
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (addr, serve)
}

const REACH_CHECK: &str = r#"
import socket
with socket.create_connection(("127.0.0.1", 5432), timeout=5) as s:
    s.sendall(b"ping from inside")
    print("reached:", s.recv(100).decode(), flush=True)
"#;

#[tokio::test]
async fn a_server_without_network_is_reached_from_the_host_and_reaches_the_host() {
    // The relay is kept where the sandbox user cannot reach it, as in /root/...: the sandbox
    // copies it into its root.
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let relay = private.path().join("relay");
    std::fs::copy(common::relay_path(), &relay).unwrap();
    let (root, sandbox) = common::sandbox_with(Limits::default(), relay);

    let scratch = sandbox.scratch().unwrap();
    let marker = common::marker();
    let site = scratch.path().join(format!("site-{marker}"));
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("hello.txt"), "hello from the sandbox\n").unwrap();
    std::fs::write(scratch.path().join("reach.py"), REACH_CHECK).unwrap();
    let (echo, _echo_server) = echo_server().await;

    let command = format!(
        "python3 reach.py && exec python3 -m http.server 8000 --bind 127.0.0.1 --directory site-{marker}"
    );
    let reach = [Reach {
        port: 5432,
        to: echo,
    }];
    let service = sandbox
        .start(&scratch, &CommandSpec::new(command), 8000, &reach)
        .await
        .unwrap();
    service
        .wait_ready("/hello.txt", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(service.base_url().starts_with("http://127.0.0.1:"));
    let answer = get(service.addr(), "/hello.txt").await;
    assert_eq!(answer, "HTTP/1.0 200 OK\nhello from the sandbox\n");
    // Several clients at once go through separate tunnels.
    let answers = futures_join(service.addr()).await;
    assert!(
        answers.iter().all(|a| a.starts_with("HTTP/1.0 200")),
        "{answers:?}"
    );
    assert!(
        service.tail().contains("reached: echo: ping from inside"),
        "{}",
        service.tail()
    );
    assert!(
        !common::survivors(&marker).is_empty(),
        "the service's processes are not found"
    );

    let outcome = service.stop().await;
    assert_eq!(outcome.status, Status::Stopped, "{outcome:?}");
    assert!(outcome.tail.contains("GET /hello.txt"), "{}", outcome.tail);
    assert_eq!(common::survivors(&marker), Vec::<String>::new());
    if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
        == 0
    {
        let copies = std::fs::read_dir(root.path().join("bin")).unwrap().count();
        assert_eq!(
            copies, 1,
            "the relay was not copied into the sandbox's root"
        );
    }
}

async fn futures_join(addr: SocketAddr) -> Vec<String> {
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..12 {
        requests.spawn(async move { get(addr, "/").await });
    }
    requests.join_all().await
}

#[tokio::test]
async fn a_service_that_ends_early_is_not_ready_and_says_why() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let service = sandbox
        .start(
            &scratch,
            &CommandSpec::new("echo cannot bind >&2; exit 4"),
            8000,
            &[],
        )
        .await
        .unwrap();
    let error = service
        .wait_ready("/", Duration::from_secs(30))
        .await
        .unwrap_err();
    match &error {
        NotReady::Ended(outcome) => {
            assert_eq!(outcome.status, Status::Exited(4));
            assert_eq!(outcome.tail, "cannot bind\n");
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("cannot bind"));
    assert_eq!(service.stop().await.status, Status::Exited(4));
}

#[tokio::test]
async fn a_service_that_never_answers_times_out_with_its_output() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let marker = common::marker();
    let command = format!("echo starting; sleep 300.{marker}");
    let service = sandbox
        .start(&scratch, &CommandSpec::new(command), 8000, &[])
        .await
        .unwrap();
    match service.wait_ready("/", Duration::from_millis(500)).await {
        Err(NotReady::TimedOut { tail, .. }) => assert_eq!(tail, "starting\n"),
        other => panic!("{other:?}"),
    }
    assert_eq!(service.stop().await.status, Status::Stopped);
    assert_eq!(common::survivors(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn a_dropped_service_is_killed() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let marker = common::marker();
    let service = sandbox
        .start(
            &scratch,
            &CommandSpec::new(format!("sleep 300.{marker}")),
            8000,
            &[],
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while common::survivors(&marker).is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !common::survivors(&marker).is_empty(),
        "the service did not start"
    );
    drop(service);
    let dropped = std::time::Instant::now();
    while !common::survivors(&marker).is_empty() && dropped.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(common::survivors(&marker), Vec::<String>::new());
}

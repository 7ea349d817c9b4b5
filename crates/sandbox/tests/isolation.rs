//! What a sandboxed command sees: its output and exit code come back, the environment is the
//! sandbox's, the network is its own, and only the scratch directory and cache are writable.

mod common;

use guild_sandbox::{CommandSpec, Network, Status};

#[tokio::test]
async fn exit_code_output_and_passed_env_come_back() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let spec = CommandSpec {
        env: vec![("GREETING".into(), "hello there".into())],
        ..CommandSpec::new(
            "echo \"$GREETING\"; echo to-stderr >&2; echo \"$HOME $LANG $CI\"; exit 3",
        )
    };
    let outcome = sandbox.run(&scratch, &spec).await;
    assert_eq!(outcome.status, Status::Exited(3), "{outcome:?}");
    assert_eq!(
        outcome.tail,
        "hello there\nto-stderr\n/home/sandbox C.UTF-8 true\n"
    );
    assert_eq!(outcome.output_bytes, outcome.tail.len() as u64);
}

#[tokio::test]
async fn redacted_strings_do_not_reach_the_tail() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let spec = CommandSpec {
        env: vec![("TOKEN".into(), "tok-123456789".into())],
        redact: vec!["tok-123456789".into()],
        ..CommandSpec::new("echo \"token is $TOKEN\"")
    };
    let outcome = sandbox.run(&scratch, &spec).await;
    assert_eq!(outcome.tail, "token is [redacted]\n", "{outcome:?}");
}

/// The secret is set in this test process's environment. `std::env::set_var` is unsafe (and
/// unsafe code is forbidden here), so the test runs itself again with the secret set.
#[tokio::test]
async fn guild_environment_is_not_visible_inside() {
    const NAME: &str = "GUILD_TEST_SECRET";
    const VALUE: &str = "s3cr3t-4711-value";
    if std::env::var(NAME).is_err() {
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "guild_environment_is_not_visible_inside",
                "--exact",
                "--test-threads=1",
            ])
            .env(NAME, VALUE)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&child.stderr)
        );
        assert!(
            stdout.contains("1 passed"),
            "the check did not run: {stdout}"
        );
        return;
    }
    assert_eq!(std::env::var(NAME).unwrap(), VALUE);

    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let script = "env; echo pid1-environ-bytes=$(wc -c < /proc/1/environ); \
                  echo processes=$(ls -d /proc/[0-9]* | wc -l); \
                  for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do \
                      echo \"$f:\"; tr '\\0' ' ' < \"$f\"; echo; done";
    let outcome = sandbox.run(&scratch, &CommandSpec::new(script)).await;
    assert!(outcome.success(), "{outcome:?}");
    let tail = &outcome.tail;
    assert!(tail.contains("HOME=/home/sandbox\n"), "{tail}");
    assert!(tail.contains("/proc/1/environ:"), "{tail}");
    assert!(tail.contains("pid1-environ-bytes=0\n"), "{tail}");
    assert!(!tail.contains(VALUE) && !tail.contains(NAME), "{tail}");
    assert!(
        !tail.contains("HOME=/root") && !tail.contains("CARGO"),
        "{tail}"
    );
    // bwrap's reaper, the shell, its subshell and the pipeline: no process of the host.
    let processes: usize = tail
        .lines()
        .find_map(|line| line.strip_prefix("processes="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(processes <= 8, "{tail}");
}

/// Tries a TCP connection to each address and prints whether it connected.
const CONNECT: &str = r#"
import socket, sys
for address in sys.argv[1:]:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        print(address, "connected")
    except OSError as error:
        print(address, "failed", error)
"#;

#[tokio::test]
async fn no_network_reaches_neither_the_host_nor_outside() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    std::fs::write(scratch.path().join("connect.py"), CONNECT).unwrap();
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = host.local_addr().unwrap();
    let command = format!("python3 connect.py {host} 1.1.1.1:443 93.184.215.14:80");
    let outcome = sandbox.run(&scratch, &CommandSpec::new(command)).await;
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        outcome.tail.contains(&format!("{host} failed")),
        "{}",
        outcome.tail
    );
    assert!(
        outcome.tail.contains("1.1.1.1:443 failed"),
        "{}",
        outcome.tail
    );
    assert!(
        outcome.tail.contains("93.184.215.14:80 failed"),
        "{}",
        outcome.tail
    );
    assert!(!outcome.tail.contains("connected"), "{}", outcome.tail);
}

#[tokio::test]
async fn registries_network_is_the_host_network() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    std::fs::write(scratch.path().join("connect.py"), CONNECT).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap();
    let spec = CommandSpec {
        network: Network::Registries,
        ..CommandSpec::new(format!(
            "python3 connect.py {host}; cat /etc/resolv.conf >/dev/null && ls /etc/ssl >/dev/null && echo resolv-and-ssl-readable"
        ))
    };
    let outcome = sandbox.run(&scratch, &spec).await;
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        outcome.tail.contains(&format!("{host} connected")),
        "{}",
        outcome.tail
    );
    assert!(
        outcome.tail.contains("resolv-and-ssl-readable"),
        "{}",
        outcome.tail
    );
    listener.set_nonblocking(true).unwrap();
    assert!(
        listener.accept().is_ok(),
        "the host listener saw no connection"
    );
}

#[tokio::test]
async fn only_the_scratch_directory_home_and_cache_are_writable() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap();
    std::fs::create_dir(scratch.path().join("src")).unwrap();
    std::fs::write(scratch.path().join("src/in.txt"), "from the host\n").unwrap();
    let host_tmp_marker = format!("/tmp/guild-sandbox-test-{}", common::marker());

    let script = format!(
        "test -e {secret} && echo SECRET-PATH-EXISTS; cat {secret} 2>/dev/null; \
         for d in /root /work /var /srv /opt /home/root {outside}; do test -e $d && echo \"PRESENT $d\"; done; \
         ls /home; \
         for f in /usr/x /etc/x /x /bin/x /lib/x /proc/sys/kernel/hostname /dev/x; do \
             (echo x > $f) 2>/dev/null && echo \"WROTE $f\"; done; \
         mkdir /newdir 2>/dev/null && echo WROTE-ROOT; \
         touch {host_tmp_marker} && echo tmp-is-private; \
         echo out > /project/out.txt && echo more >> src/in.txt && cat src/in.txt; \
         touch /cache/npm/x /home/sandbox/x && echo cache-and-home-writable",
        secret = secret.display(),
        outside = outside.path().display(),
    );
    let outcome = sandbox.run(&scratch, &CommandSpec::new(script)).await;
    assert!(outcome.success(), "{outcome:?}");
    let tail = &outcome.tail;
    assert!(
        !tail.contains("SECRET") && !tail.contains("host secret"),
        "{tail}"
    );
    assert!(
        !tail.contains("PRESENT") && !tail.contains("WROTE"),
        "{tail}"
    );
    assert!(
        tail.starts_with("sandbox\n"),
        "only the sandbox's home is under /home: {tail}"
    );
    assert!(tail.contains("tmp-is-private"), "{tail}");
    assert!(
        !std::path::Path::new(&host_tmp_marker).exists(),
        "the host's /tmp was written"
    );
    assert!(tail.contains("from the host\nmore\n"), "{tail}");
    assert!(tail.contains("cache-and-home-writable"), "{tail}");
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("out.txt")).unwrap(),
        "out\n"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.path().join("src/in.txt")).unwrap(),
        "from the host\nmore\n"
    );
}

#[tokio::test]
async fn the_sandbox_user_is_unprivileged_and_cannot_nest_namespaces() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let script = "id; grep -E '^(CapEff|Groups|NoNewPrivs)' /proc/self/status; \
                  unshare -U true 2>/dev/null && echo NESTED-USERNS; hostname";
    let outcome = sandbox.run(&scratch, &CommandSpec::new(script)).await;
    assert!(outcome.success(), "{outcome:?}");
    let tail = &outcome.tail;
    assert!(
        tail.starts_with("uid=1000(sandbox) gid=1000(sandbox) groups=1000(sandbox)\n"),
        "{tail}"
    );
    assert!(tail.contains("CapEff:\t0000000000000000"), "{tail}");
    assert!(!tail.contains("NESTED-USERNS"), "{tail}");
    assert!(tail.ends_with("sandbox\n"), "{tail}");
}

#[tokio::test]
async fn a_missing_working_directory_fails_to_start() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    for cwd in ["missing", "../x"] {
        let spec = CommandSpec {
            cwd: cwd.into(),
            ..CommandSpec::new("true")
        };
        let outcome = sandbox.run(&scratch, &spec).await;
        assert!(
            matches!(outcome.status, Status::FailedToStart(_)),
            "{cwd}: {outcome:?}"
        );
    }
    std::fs::create_dir_all(scratch.path().join("web/app")).unwrap();
    let spec = CommandSpec {
        cwd: "web/app".into(),
        ..CommandSpec::new("pwd")
    };
    assert_eq!(
        sandbox.run(&scratch, &spec).await.tail,
        "/project/web/app\n"
    );
}

#[tokio::test]
async fn the_scratch_directory_is_removed_when_dropped() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let outcome = sandbox
        .run(
            &scratch,
            &CommandSpec::new("mkdir -p a/b && touch a/b/f && chmod 0 a/b a"),
        )
        .await;
    assert!(outcome.success(), "{outcome:?}");
    let dir = scratch.path().parent().unwrap().to_path_buf();
    drop(scratch);
    assert!(!dir.exists(), "{} is still there", dir.display());
}

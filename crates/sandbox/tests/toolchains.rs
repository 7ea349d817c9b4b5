//! The real toolchains run under the default limits, and the probe finds them.

mod common;

use guild_sandbox::{CommandSpec, Limits, Status};

#[tokio::test]
async fn the_probe_passes_and_finds_the_toolchains() {
    let (_root, sandbox) = common::sandbox();
    sandbox.probe().await.unwrap();
    for program in ["node", "npm", "python3"] {
        let path = sandbox.which(program).await.unwrap();
        assert!(path.starts_with('/') && path.ends_with(program), "{path}");
    }
    let missing = sandbox.which("no-such-program-4711").await.unwrap_err();
    assert!(missing.reason.contains("not installed"), "{missing}");
    assert!(sandbox.which("node; rm -rf /").await.is_err());
}

#[tokio::test]
async fn npm_runs_under_the_default_limits() {
    let (_root, sandbox) = common::sandbox();
    let outcome = sandbox
        .run(
            &sandbox.scratch().unwrap(),
            &CommandSpec::new("npm --version"),
        )
        .await;
    assert!(outcome.success(), "{outcome:?}");
    assert!(
        outcome
            .tail
            .trim()
            .split('.')
            .all(|n| n.parse::<u32>().is_ok()),
        "{}",
        outcome.tail
    );
}

const ALLOCATE_300_MB: &str = "node -e \"const b = []; \
    for (let i = 0; i < 30; i++) b.push(Buffer.alloc(10 << 20, 1)); \
    console.log('allocated', b.length * 10, 'MiB')\"";

#[tokio::test]
async fn node_allocates_300_mb_under_the_default_limits_and_not_under_a_small_one() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let outcome = sandbox
        .run(&scratch, &CommandSpec::new(ALLOCATE_300_MB))
        .await;
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.tail, "allocated 300 MiB\n");

    let small = CommandSpec {
        limits: Some(Limits {
            memory_bytes: 256 << 20,
            ..Limits::default()
        }),
        ..CommandSpec::new(ALLOCATE_300_MB)
    };
    let outcome = sandbox.run(&scratch, &small).await;
    assert!(!outcome.success(), "{outcome:?}");
    assert!(!outcome.tail.contains("allocated"), "{outcome:?}");
}

#[tokio::test]
async fn a_python_venv_is_made_and_used_under_the_default_limits() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let command = "python3 -m venv .venv && .venv/bin/python -c 'import sys; print(sys.prefix)'";
    let outcome = sandbox.run(&scratch, &CommandSpec::new(command)).await;
    assert_eq!(outcome.status, Status::Exited(0), "{outcome:?}");
    assert_eq!(outcome.tail, "/project/.venv\n");
    assert!(scratch.path().join(".venv/bin/python").exists());
}

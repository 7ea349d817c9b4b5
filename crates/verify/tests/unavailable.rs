//! What cannot run is reported `unavailable`, never `passed`: a toolchain missing on the
//! worker, a sandbox that cannot be set up.

use std::time::Duration;

use guild_design::Design;
use guild_verify::{InstallNetwork, Timeouts, Verdict, Verifier, VerifierConfig};
use serde_json::json;

fn design(install: &str) -> Design {
    Design::from_value(json!({
        "contract": {},
        "data_model": {},
        "components": [{
            "name": "tool", "directory": ".", "stack": "a made-up stack",
            "commands": {"install": install, "test": "true"}
        }],
        "files": [{"path": "README.md", "task": "readme", "purpose": "what it is"}]
    }))
    .expect("a design")
}

fn config(root: std::path::PathBuf) -> VerifierConfig {
    VerifierConfig {
        root,
        relay: None,
        network: InstallNetwork::None,
        timeouts: Timeouts {
            install: Duration::from_secs(30),
            check: Duration::from_secs(30),
            start: Duration::from_secs(5),
        },
        concurrency: 1,
    }
}

#[tokio::test]
async fn a_toolchain_missing_on_the_worker_makes_its_steps_unavailable_not_passed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let verifier = Verifier::new(config(dir.path().join("sandbox")));
    verifier.available().await.expect("the sandbox works here");
    let (report, findings) = verifier
        .verify(
            &design("no-such-toolchain install"),
            &[("README.md", "# x\n")],
            &[],
        )
        .await;
    assert_eq!(report.status, Verdict::Unavailable, "{report:#?}");
    let steps = &report.components[0].steps;
    assert_eq!(steps[0].status, Verdict::Unavailable);
    assert_eq!(
        steps[0].reason.as_deref(),
        Some("`no-such-toolchain` is not installed on this worker")
    );
    // What comes after is not run, and not passed either.
    assert_eq!(steps[1].status, Verdict::Skipped);
    assert!(findings.is_empty());
    assert_eq!(report.summary, "tool: install unavailable test skipped");

    // The same design with a toolchain that is there passes.
    let (report, _) = verifier
        .verify(&design("test -f README.md"), &[("README.md", "# x\n")], &[])
        .await;
    assert_eq!(report.status, Verdict::Passed, "{report:#?}");
}

#[tokio::test]
async fn a_sandbox_that_cannot_be_set_up_makes_every_step_unavailable() {
    // A file where the sandbox's directory should be.
    let dir = tempfile::tempdir().expect("temp dir");
    let blocked = dir.path().join("not-a-directory");
    std::fs::write(&blocked, "x").expect("write");
    let verifier = Verifier::new(config(blocked.join("sandbox")));
    assert!(verifier.available().await.is_err());
    let (report, findings) = verifier
        .verify(&design("true"), &[("README.md", "# x\n")], &[])
        .await;
    assert_eq!(report.status, Verdict::Unavailable);
    assert!(
        report.components[0]
            .steps
            .iter()
            .all(|s| s.status == Verdict::Unavailable)
    );
    assert!(findings.is_empty());
}

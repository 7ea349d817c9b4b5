//! The limits: wall clock, process count, output, CPU time and memory stop what passes them,
//! and nothing of a killed command's process tree survives.

mod common;

use std::time::Duration;

use guild_sandbox::{CommandSpec, Limits, Status};

fn with_limits(command: &str, limits: Limits) -> CommandSpec {
    CommandSpec {
        limits: Some(limits),
        ..CommandSpec::new(command)
    }
}

#[tokio::test]
async fn an_endless_loop_is_killed_at_the_wall_clock_with_its_whole_tree() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let marker = common::marker();
    // A background child that would outlive its shell, a double-forked one, and a loop.
    let command =
        format!("sleep 1000.{marker} & (setsid sleep 2000.{marker} &) ; while :; do :; done");
    let spec = with_limits(&command, common::limits(2));
    let seen = async {
        let sleeper = format!("sleep 2000.{marker}");
        loop {
            if common::survivors(&marker)
                .iter()
                .any(|p| p.ends_with(&format!("{sleeper} ")))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (outcome, ()) = tokio::join!(sandbox.run(&scratch, &spec), seen);
    assert_eq!(outcome.status, Status::TimedOut, "{outcome:?}");
    assert!(outcome.duration >= Duration::from_secs(2), "{outcome:?}");
    assert!(outcome.duration < Duration::from_secs(5), "{outcome:?}");
    assert_eq!(common::survivors(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn a_fork_bomb_hits_the_process_limit_and_the_host_carries_on() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let marker = common::marker();
    let limits = Limits {
        processes: 64,
        ..common::limits(4)
    };
    let command = format!("bomb() {{ bomb | bomb & }}; bomb; while :; do sleep 1.{marker}; done");
    let outcome = sandbox.run(&scratch, &with_limits(&command, limits)).await;
    assert!(!outcome.success(), "{outcome:?}");
    assert!(outcome.duration < Duration::from_secs(8), "{outcome:?}");
    assert!(
        outcome.tail.contains("Cannot fork"),
        "the limit was not hit: {outcome:?}"
    );
    assert_eq!(common::survivors(&marker), Vec::<String>::new());

    let (_root, fresh) = common::sandbox();
    let after = fresh
        .run(&fresh.scratch().unwrap(), &CommandSpec::new("echo fine"))
        .await;
    assert_eq!(
        (after.status, after.tail.as_str()),
        (Status::Exited(0), "fine\n")
    );
}

/// The process limit counts the processes of one sandbox, not of every sandbox of the uid.
#[tokio::test]
async fn sandboxes_do_not_share_the_process_count() {
    let (_root, sandbox) = common::sandbox();
    let limits = Limits {
        processes: 40,
        ..common::limits(30)
    };
    let holder = sandbox.scratch().unwrap();
    let hold = with_limits(
        "for i in $(seq 30); do sleep 60 & done; touch ready; while [ ! -e stop ]; do sleep 0.05; done",
        limits.clone(),
    );
    let holding = sandbox.run(&holder, &hold);
    let other = sandbox.scratch().unwrap();
    let checks = async {
        while !holder.path().join("ready").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let within = sandbox
            .run(
                &other,
                &with_limits(
                    "for i in $(seq 30); do sleep 5 & done; echo started 30",
                    limits.clone(),
                ),
            )
            .await;
        let beyond = sandbox
            .run(
                &other,
                &with_limits(
                    "for i in $(seq 45); do sleep 5 & done; echo started 45",
                    limits.clone(),
                ),
            )
            .await;
        std::fs::write(holder.path().join("stop"), "").unwrap();
        (within, beyond)
    };
    let (held, (within, beyond)) = tokio::join!(holding, checks);
    assert!(held.success(), "{held:?}");
    assert!(
        within.success() && within.tail.contains("started 30"),
        "{within:?}"
    );
    assert!(beyond.tail.contains("Cannot fork"), "{beyond:?}");
}

#[tokio::test]
async fn an_output_flood_is_cut_at_the_cap() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let marker = common::marker();
    let limits = Limits {
        output_bytes: 1 << 20,
        tail_bytes: 4096,
        ..common::limits(60)
    };
    let outcome = sandbox
        .run(&scratch, &with_limits(&format!("yes {marker}"), limits))
        .await;
    assert_eq!(outcome.status, Status::OutputLimit, "{:?}", outcome.status);
    assert!(outcome.output_bytes > 1 << 20, "{}", outcome.output_bytes);
    assert!(outcome.output_bytes < 4 << 20, "{}", outcome.output_bytes);
    assert!(
        outcome.tail.len() <= 4096 && outcome.tail.len() > 4000,
        "{}",
        outcome.tail.len()
    );
    assert!(
        outcome.tail.lines().skip(1).all(|line| line == marker),
        "{}",
        outcome.tail
    );
    assert!(outcome.duration < Duration::from_secs(30), "{outcome:?}");
    assert_eq!(common::survivors(&marker), Vec::<String>::new());
}

#[tokio::test]
async fn the_cpu_limit_stops_a_busy_loop_before_the_wall_clock() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let limits = Limits {
        cpu: Duration::from_secs(1),
        ..common::limits(60)
    };
    let outcome = sandbox
        .run(&scratch, &with_limits("while :; do :; done", limits))
        .await;
    const SIGKILL: i32 = 9;
    const SIGXCPU: i32 = 24;
    assert!(
        matches!(outcome.status, Status::Signalled(SIGXCPU | SIGKILL)),
        "{outcome:?}"
    );
    assert!(outcome.duration < Duration::from_secs(20), "{outcome:?}");
}

#[tokio::test]
async fn the_memory_limit_stops_a_large_allocation() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let limits = Limits {
        memory_bytes: 64 << 20,
        ..common::limits(60)
    };
    let allocate = "python3 -c 'b = bytearray(200 << 20); print(\"allocated\", len(b))'";
    let outcome = sandbox.run(&scratch, &with_limits(allocate, limits)).await;
    assert_eq!(outcome.status, Status::Exited(1), "{outcome:?}");
    assert!(outcome.tail.contains("MemoryError"), "{outcome:?}");
}

#[tokio::test]
async fn the_file_size_limit_stops_a_large_file() {
    let (_root, sandbox) = common::sandbox();
    let scratch = sandbox.scratch().unwrap();
    let limits = Limits {
        file_size_bytes: 1 << 20,
        ..common::limits(60)
    };
    let write = "head -c 5000000 /dev/zero > big; echo status=$?";
    let outcome = sandbox.run(&scratch, &with_limits(write, limits)).await;
    assert!(
        outcome.tail.contains("File size limit exceeded") || outcome.tail.contains("status=153"),
        "{outcome:?}"
    );
    let written = std::fs::metadata(scratch.path().join("big")).unwrap().len();
    assert_eq!(written, 1 << 20);
}

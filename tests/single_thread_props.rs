//! The kernels-vs-reference property (`props/mod.rs`) as a plain `main`,
//! without libtest and without threads, so it runs under qemu-user (whose
//! 7.2 `thread::spawn` hangs): `.ci/run` runs it for aarch64 under qemu
//! with the NEON kernels. It is also part of `cargo test` on every host.
//! `PROPTEST_CASES` sets the number of random cases (default 256); a
//! failure prints the shrunk case and exits with status 1.
//!
//! `single_thread_props digest` instead prints the activations' output
//! digests over all 2^32 inputs (`activations.rs`, `exhaustive_digests`;
//! `FUSEDRNN_SWEEP_KERNEL`, `FUSEDRNN_SWEEP_FUNCTION`): the NEON sweep
//! under qemu, where libtest's threads hang.

mod common;
mod props;
mod sweep;

use fusedrnn::KernelFamily;
use proptest::test_runner::{Config, TestRunner};

fn main() {
    if std::env::args().nth(1).as_deref() == Some("digest") {
        sweep::print_digests();
        return;
    }
    let families: Vec<&str> = KernelFamily::available()
        .into_iter()
        .map(KernelFamily::name)
        .collect();
    // On aarch64 the NEON family must be among them, or the run below
    // would check nothing but the portable kernels.
    #[cfg(target_arch = "aarch64")]
    assert!(
        KernelFamily::Neon.is_available(),
        "aarch64 host without the NEON family: {families:?}"
    );
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let cases = runner.config().cases;
    match runner.run(&props::case(), |c| props::check(&c, false)) {
        Ok(()) => println!(
            "single-thread property: {cases} random models, families {} against the reference: ok",
            families.join(" ")
        ),
        Err(e) => {
            eprintln!("single-thread property failed: {e}");
            std::process::exit(1);
        }
    }
}

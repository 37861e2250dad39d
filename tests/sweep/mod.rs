//! Exhaustive activation sweeps shared by `activations.rs` (libtest) and
//! `single_thread_props.rs` (a plain `main`, for qemu-user).

use fusedrnn::activations::{apply, Function};
use fusedrnn::KernelFamily;

/// The families a sweep covers: every one this host runs, or only the one
/// `FUSEDRNN_SWEEP_KERNEL` names (under qemu, the scalar families would
/// only add hours).
pub fn sweep_families() -> Vec<KernelFamily> {
    match std::env::var("FUSEDRNN_SWEEP_KERNEL") {
        Ok(name) => vec![KernelFamily::from_name(&name).expect("a family name")],
        Err(_) => KernelFamily::available(),
    }
}

/// FNV-1a over `family`'s outputs for the inputs `block << 28 ..
/// (block + 1) << 28` (one sixteenth of all 2^32 bit patterns) in order,
/// every NaN output counted as one value (ISAs differ in NaN payloads, and
/// a NaN is right wherever the reference is NaN). Equal digests mean the
/// same outputs, so a family whose digests equal those of a family swept
/// exhaustively has the same worst ULP, without the f64 reference's cost
/// (hours under qemu).
pub fn digest(family: KernelFamily, f: Function, block: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let chunk = 1u64 << 22;
    let mut ys = vec![0f32; chunk as usize];
    for start in (block << 28..(block + 1) << 28).step_by(chunk as usize) {
        for (k, y) in ys.iter_mut().enumerate() {
            *y = f32::from_bits((start + k as u64) as u32);
        }
        apply(family, f, &mut ys).unwrap();
        for y in &ys {
            let b = if y.is_nan() { 0x7fc0_0000 } else { y.to_bits() };
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The digest of each sixteenth of all 2^32 inputs, per family and
/// function, printed as each is done.
pub fn print_digests() {
    let only = std::env::var("FUSEDRNN_SWEEP_FUNCTION").ok();
    // Resume a sweep cut short: the first sixteenth to digest.
    let from: u64 = std::env::var("FUSEDRNN_SWEEP_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for family in sweep_families() {
        for f in [
            Function::Sigmoid,
            Function::Tanh,
            Function::Elu,
            Function::Softplus,
        ] {
            let name = format!("{f:?}").to_lowercase();
            if only.as_ref().is_some_and(|o| *o != name) {
                continue;
            }
            for block in from..16 {
                let d = digest(family, f, block);
                println!("digest {family:?} {f:?} {block:2}/16: {d:016x}");
            }
        }
    }
}

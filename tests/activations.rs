//! Error bounds of the vectorized sigmoid, tanh, Elu and Softplus, for every kernel family
//! this host runs (the reference family checks the scalar twins), against an
//! f64 reference. The fast tests cover special values, every 257th bit
//! pattern, and dense sweeps of the ranges that matter; the `#[ignore]`d
//! `exhaustive_*` tests sweep all 2^32 inputs and print the worst one
//! (`cargo test --release --test activations -- --ignored --nocapture`;
//! `FUSEDRNN_SWEEP_KERNEL=avx512` sweeps one family only).

use fusedrnn::activations::{
    apply, Function, ELU_MAX_ULP, SIGMOID_MAX_ULP, SOFTPLUS_MAX_ULP, TANH_MAX_ULP,
};
use fusedrnn::KernelFamily;

mod sweep;
use sweep::sweep_families;

fn exact(f: Function, x: f32) -> f64 {
    let x = x as f64;
    match f {
        Function::Sigmoid => fusedrnn::reference::activations::sigmoid(x),
        Function::Tanh => x.tanh(),
        Function::Elu => {
            if x >= 0.0 {
                x
            } else {
                x.exp_m1()
            }
        }
        // ln(1 + e^x) without overflow of e^x in f64.
        Function::Softplus => {
            if x > 30.0 {
                x + (-x).exp()
            } else {
                x.exp().ln_1p()
            }
        }
    }
}

const ALL: [Function; 4] = [
    Function::Sigmoid,
    Function::Tanh,
    Function::Elu,
    Function::Softplus,
];

/// ULP distance from the correctly rounded result; results whose exact
/// value is subnormal may be flushed to 0 (distance 0 then). NaN must map
/// to NaN.
fn ulp_error(f: Function, x: f32, got: f32) -> u32 {
    let want = exact(f, x);
    if x.is_nan() {
        return if got.is_nan() { 0 } else { u32::MAX };
    }
    let w = want as f32;
    if want.abs() < f32::MIN_POSITIVE as f64 && (got == 0.0 || got.abs() < f32::MIN_POSITIVE) {
        return 0;
    }
    if got.is_nan() || got.signum() != w.signum() && got != 0.0 && w != 0.0 {
        return u32::MAX;
    }
    let key = |v: f32| {
        let b = v.to_bits() as i64;
        if b < 0x8000_0000 {
            b
        } else {
            0x8000_0000 - b
        }
    };
    (key(got) - key(w)).unsigned_abs().min(u32::MAX as u64) as u32
}

fn worst(family: KernelFamily, f: Function, xs: &[f32]) -> (u32, f32) {
    let mut ys = xs.to_vec();
    apply(family, f, &mut ys).unwrap();
    xs.iter()
        .zip(&ys)
        .map(|(&x, &y)| (ulp_error(f, x, y), x))
        .max_by_key(|e| e.0)
        .unwrap_or((0, 0.0))
}

fn bound(f: Function) -> u32 {
    match f {
        Function::Sigmoid => SIGMOID_MAX_ULP,
        Function::Tanh => TANH_MAX_ULP,
        Function::Elu => ELU_MAX_ULP,
        Function::Softplus => SOFTPLUS_MAX_ULP,
    }
}

fn sample() -> Vec<f32> {
    let mut xs: Vec<f32> = (0..u32::MAX / 257)
        .map(|i| f32::from_bits(i * 257))
        .filter(|x| !x.is_nan())
        .collect();
    // Dense where the functions bend and where the formulas switch.
    for k in -2_000_000..2_000_000 {
        xs.push(k as f32 * 1e-5);
        xs.push(k as f32 * 5e-5);
    }
    // Where Elu's and Softplus's formulas switch or cancel.
    for k in -100_000..100_000 {
        xs.push(-0.35 + k as f32 * 1e-7);
        xs.push(k as f32 * 1e-9);
    }
    xs.extend([
        0.0,
        -0.0,
        0.625,
        -0.625,
        0.624_999_94,
        9.0,
        9.1,
        44.0,
        87.0,
        88.0,
        89.0,
        -87.0,
        -87.336_55,
        -87.4,
        -88.0,
        -89.0,
        -104.0,
        1e30,
        -1e30,
        f32::MAX,
        f32::MIN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MIN_POSITIVE,
        1e-40,
    ]);
    xs
}

#[test]
fn activations_within_bounds_on_every_family() {
    let xs = sample();
    for family in KernelFamily::available() {
        for f in ALL {
            let (ulp, x) = worst(family, f, &xs);
            println!("{family:?} {f:?}: worst {ulp} ULP at x = {x:e}");
            assert!(
                ulp <= bound(f),
                "{family:?} {f:?}: {ulp} ULP at x = {x:e} ({:#x})",
                x.to_bits()
            );
        }
    }
}

#[test]
fn special_values() {
    for family in KernelFamily::available() {
        let mut v = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            100.0,
            -100.0,
            0.0,
            -0.0,
        ];
        apply(family, Function::Tanh, &mut v).unwrap();
        assert!(v[0].is_nan(), "{family:?}");
        assert_eq!(&v[1..], &[1.0, -1.0, 1.0, -1.0, 0.0, -0.0], "{family:?}");
        let mut v = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            100.0,
            -100.0,
            0.0,
        ];
        apply(family, Function::Sigmoid, &mut v).unwrap();
        assert!(v[0].is_nan(), "{family:?}");
        assert_eq!(&v[1..], &[1.0, 0.0, 1.0, 0.0, 0.5], "{family:?}");
        let mut v = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -100.0,
            0.0,
            -0.0,
        ];
        apply(family, Function::Elu, &mut v).unwrap();
        assert!(v[0].is_nan(), "{family:?}");
        assert_eq!(
            &v[1..],
            &[f32::INFINITY, -1.0, -1.0, 0.0, 0.0],
            "{family:?}"
        );
        let mut v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -100.0, 100.0];
        apply(family, Function::Softplus, &mut v).unwrap();
        assert!(v[0].is_nan(), "{family:?}");
        assert_eq!(&v[1..], &[f32::INFINITY, 0.0, 0.0, 100.0], "{family:?}");
    }
}

/// Prints the output digest of each sixteenth of the inputs, per family
/// and function ([`sweep::digest`]), as each is done:
/// `cargo test --release --test activations -- --ignored --nocapture
/// exhaustive_digests`; `FUSEDRNN_SWEEP_FUNCTION=tanh` (sigmoid, elu,
/// softplus) limits it to one function. Under qemu (no threads, so no
/// libtest): `single_thread_props digest`. The README's NEON section
/// gives the figures.
#[test]
#[ignore = "evaluates all 2^32 inputs per family and function (minutes)"]
fn exhaustive_digests() {
    sweep::print_digests();
}

fn exhaustive(f: Function) {
    for family in sweep_families() {
        let mut worst_all = (0u32, 0.0f32);
        let chunk = 1u64 << 24;
        let mut start = 0u64;
        while start < 1u64 << 32 {
            let xs: Vec<f32> = (start..start + chunk)
                .map(|b| f32::from_bits(b as u32))
                .collect();
            let w = worst(family, f, &xs);
            if w.0 > worst_all.0 {
                worst_all = w;
            }
            start += chunk;
        }
        println!(
            "{family:?} {f:?}: worst {} ULP at x = {:e} ({:#010x})",
            worst_all.0,
            worst_all.1,
            worst_all.1.to_bits()
        );
        assert!(worst_all.0 <= bound(f));
    }
}

#[test]
#[ignore = "sweeps all 2^32 inputs per family (minutes)"]
fn exhaustive_sigmoid() {
    exhaustive(Function::Sigmoid);
}

#[test]
#[ignore = "sweeps all 2^32 inputs per family (minutes)"]
fn exhaustive_tanh() {
    exhaustive(Function::Tanh);
}

#[test]
#[ignore = "sweeps all 2^32 inputs per family (minutes)"]
fn exhaustive_elu() {
    exhaustive(Function::Elu);
}

#[test]
#[ignore = "sweeps all 2^32 inputs per family (minutes)"]
fn exhaustive_softplus() {
    exhaustive(Function::Softplus);
}

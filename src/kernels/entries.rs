//! The per-ISA entry points. The generic kernels are `#[inline(always)]`
//! over [`Simd`]; each ISA instantiates them inside functions compiled with
//! its `#[target_feature]`s (taken from the one feature list per ISA,
//! `simd::x86_64::isa_features!`), so the intrinsics inline. [`Token`]
//! dispatches from a token to them; holding the token proves the features.

use super::dot::{self, Acc, Elem, Kernel};
use super::project::{self, XRows};
use super::qdot;
use super::step;
use super::tile::{Bufs, Ctx};
use crate::activations::activation_v;
use crate::config::Activation;
use crate::family::Isa;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
use crate::simd::aarch64::Neon;
use crate::simd::portable::Portable;
#[cfg(target_arch = "x86_64")]
use crate::simd::x86_64::{isa_features, Avx2, Avx512};
use crate::simd::Simd;
use crate::team::Part;

/// AVX-512 tiles run over whole panels up to 256 KiB of a block (f32: 512
/// rows, K <= 512): its 6-row half tiles reuse each weight vector 6 times,
/// enough to run at the FMA rate from L2, and parking the sums of small
/// chunks (24 zmm per tile and chunk) costs more than it saves
/// (lstm-h256-b64: 86 GFLOP/s unchunked, 66 with 8 KiB chunks, 47 with 4
/// KiB; one run each on this project's Zen 4 machine). Larger blocks
/// (lstm-h1024: 512 KiB of R per block, beside 512 KiB of W in a streaming
/// step) leave a 1 MiB L2, and every tile of the block would stream them
/// from L3 again: in 256 KiB chunks the park costs 48 moves per 12k FMAs,
/// and 16 streams of lstm-h1024 / gru-h1024 stepped together ran 2.8%
/// faster (median of 5 interleaved runs, AMD EPYC Zen 4; batches of
/// lstm-h256 and the team unchanged).
#[cfg(target_arch = "x86_64")]
const CHUNK_AVX512: usize = 256 * 1024;
/// AVX2's 3-row tiles reuse each weight vector 3 times, which needs more
/// than L2 delivers; 8 KiB chunks stay in L1 (lstm-h256-b64: 61 GFLOP/s
/// unchunked, 64-71 with 8 KiB chunks, 60-62 with 16 KiB).
const CHUNK_AVX2: usize = 8192;

/// The signature of an out-of-line [`dot::dot`].
type DotFn<S, E, const G: usize, const MB: usize, const NV: usize> =
    unsafe fn(
        S,
        *const E,
        usize,
        usize,
        usize,
        [*const f32; MB],
        [Acc<<S as Simd>::V, G, NV>; MB],
    ) -> [Acc<<S as Simd>::V, G, NV>; MB];

/// The signature of an out-of-line [`qdot::dot_q`].
type DotQFn<S, const G: usize, const MB: usize, const NV: usize> =
    unsafe fn(
        S,
        *const i8,
        *const i32,
        usize,
        usize,
        [*const i8; MB],
    ) -> [Acc<<S as Simd>::V, G, NV>; MB];

/// The signature of an out-of-line [`step::pair_block`].
type PairFn<S> = unsafe fn(S, &Ctx<'_>, step::Pass, usize, &Bufs, &[usize]);

/// The signature of an out-of-line [`activation_v`].
type ActFn<S> = unsafe fn(S, Activation, <S as Simd>::V) -> <S as Simd>::V;

/// `impl Kernel` for an ISA token whose out-of-line product is `$dot` and
/// activation `$act`.
macro_rules! kernel_impl {
    ($ty:ty, $dot:ident, $dotq:ident, $act:ident, $pairs:ident, full: $full:expr, half: $half:expr, chunk: $chunk:expr, proj: $proj:expr, biased: $biased:expr) => {
        impl Kernel for $ty {
            const FULL_ROWS: usize = $full;
            const HALF_ROWS: usize = $half;
            const CHUNK_BYTES: usize = $chunk;
            const PROJ_ROWS: usize = $proj;
            #[inline(always)]
            fn q_biased(self) -> bool {
                $biased
            }
            /// # Safety
            /// The contract of [`Kernel::dot_k`].
            #[inline(always)]
            unsafe fn dot_k<E: Elem, const G: usize, const MB: usize, const NV: usize>(
                self,
                blk: *const E,
                v0: usize,
                k0: usize,
                k1: usize,
                rows: [*const f32; MB],
                acc: [Acc<<$ty as Simd>::V, G, NV>; MB],
            ) -> [Acc<<$ty as Simd>::V, G, NV>; MB] {
                if MB == 1 && (std::mem::size_of::<E>() == 4 || <$ty as Simd>::LANES > 8) {
                    // One row's sums fit beside the epilogue's constants,
                    // and at batch 1 with a small H the call would cost
                    // more than it saves (gru-h64-b1: +25%). Not with
                    // 16-bit weights on 16 registers (AVX2): the widening
                    // temporaries made LLVM keep a sum on the stack
                    // (lstm-h1024-b1 bf16: 450 us inlined, 293 out of line).
                    // SAFETY: forwarded contract.
                    return unsafe {
                        dot::dot::<$ty, E, G, MB, NV, false>(self, blk, v0, k0, k1, rows, acc)
                    };
                }
                // rustc drops `#[inline(never)]` on `#[target_feature]`
                // functions (1.95: no `noinline` in the IR) and LLVM then
                // inlines them into the step; a call through an opaque
                // pointer stays a call.
                let f: DotFn<$ty, E, G, MB, NV> = std::hint::black_box($dot::<E, G, MB, NV>);
                // SAFETY: forwarded contract; holding the token proves the
                // CPU features.
                unsafe { f(self, blk, v0, k0, k1, rows, acc) }
            }

            /// # Safety
            /// The contract of [`Kernel::dot_q`].
            #[inline(always)]
            unsafe fn dot_q<const G: usize, const MB: usize, const NV: usize>(
                self,
                blk: *const i8,
                corr: *const i32,
                v0: usize,
                k4: usize,
                q: [*const i8; MB],
            ) -> [Acc<<$ty as Simd>::V, G, NV>; MB] {
                // Out of line always (see `dot_k`).
                let f: DotQFn<$ty, G, MB, NV> = std::hint::black_box($dotq::<G, MB, NV>);
                // SAFETY: forwarded contract; holding the token proves the
                // CPU features.
                unsafe { f(self, blk, corr, v0, k4, q) }
            }

            /// # Safety
            /// The contract of [`Kernel::pair_block`].
            #[inline(always)]
            unsafe fn pair_block<const DEF: bool>(
                self,
                ctx: &Ctx<'_>,
                pass: step::Pass,
                blk: usize,
                b: &Bufs,
                rows: &[usize],
            ) {
                // Out of line always (see `dot_k` and `step::pair_block`).
                let f: PairFn<$ty> = std::hint::black_box($pairs::<DEF>);
                // SAFETY: forwarded contract; holding the token proves the
                // CPU features.
                unsafe { f(self, ctx, pass, blk, b, rows) }
            }

            #[inline(always)]
            fn act(self, a: Activation, v: <$ty as Simd>::V) -> <$ty as Simd>::V {
                // An opaque pointer keeps the call a call (see `dot_k`).
                let f: ActFn<$ty> = std::hint::black_box($act as ActFn<$ty>);
                // SAFETY: holding the token proves the CPU features.
                unsafe { f(self, a, v) }
            }
        }
    };
}

/// The `#[target_feature]` entry points of one x86_64 ISA, compiled with
/// the features of `isa_features!($isa)`.
#[cfg(target_arch = "x86_64")]
macro_rules! entries {
    (
        $isa:ident,
        $ty:ty,
        $step:ident,
        $project:ident,
        $stream:ident,
        $fma:ident,
        $dot:ident,
        $dotq:ident,
        $qd:expr,
        $dotq_impl:ident,
        $act:ident,
        $pairs:ident,
        full: $full:expr,
        half: $half:expr,
        chunk: $chunk:expr,
        proj: $proj:expr,
        biased: $biased:expr
    ) => {
        isa_features!($isa enable {
            /// # Safety
            /// The CPU supports the features and the contract of
            /// [`qdot::dot_q`] holds.
            #[inline(never)]
            unsafe fn $dotq<const G: usize, const MB: usize, const NV: usize>(
                s: $ty,
                blk: *const i8,
                corr: *const i32,
                v0: usize,
                k4: usize,
                q: [*const i8; MB],
            ) -> [Acc<<$ty as Simd>::V, G, NV>; MB] {
                // SAFETY: forwarded contract.
                unsafe { qdot::dot_q::<$ty, _, G, MB, NV>(s, $qd, blk, corr, v0, k4, q) }
            }

            /// # Safety
            /// The CPU supports the features and the contract of
            /// [`dot::dot`] holds.
            #[inline(never)]
            unsafe fn $dot<E: Elem, const G: usize, const MB: usize, const NV: usize>(
                s: $ty,
                blk: *const E,
                v0: usize,
                k0: usize,
                k1: usize,
                rows: [*const f32; MB],
                acc: [Acc<<$ty as Simd>::V, G, NV>; MB],
            ) -> [Acc<<$ty as Simd>::V, G, NV>; MB] {
                // SAFETY: forwarded contract.
                unsafe { dot::dot::<$ty, E, G, MB, NV, false>(s, blk, v0, k0, k1, rows, acc) }
            }

            /// # Safety
            /// The CPU supports the features.
            #[inline(never)]
            unsafe fn $act(s: $ty, a: Activation, v: <$ty as Simd>::V) -> <$ty as Simd>::V {
                activation_v(s, a, v)
            }

            /// # Safety
            /// The CPU supports the features and the contract of
            /// [`step::pair_block`] holds.
            #[inline(never)]
            unsafe fn $pairs<const DEF: bool>(
                s: $ty,
                ctx: &Ctx<'_>,
                pass: step::Pass,
                blk: usize,
                b: &Bufs,
                rows: &[usize],
            ) {
                // SAFETY: forwarded contract.
                unsafe { step::pair_block::<$ty, DEF>(s, ctx, pass, blk, b, rows) }
            }

            /// # Safety
            /// The CPU supports the features (proved by holding the token)
            /// and the contract of [`step::step`] holds.
            unsafe fn $step(
                s: $ty,
                ctx: &Ctx<'_>,
                b: &Bufs,
                rows: &[usize],
                backwards: bool,
                part: Part<'_>,
            ) {
                // SAFETY: forwarded contract.
                unsafe { step::step(s, ctx, b, rows, backwards, part) }
            }

            /// # Safety
            /// The CPU supports the features and the contract of
            /// [`project::project`] holds.
            unsafe fn $project(
                s: $ty,
                ctx: &Ctx<'_>,
                x: XRows,
                out: *mut f32,
                blocks: (usize, usize),
            ) {
                // SAFETY: forwarded contract.
                unsafe { project::project(s, ctx, x, out, blocks) }
            }

            /// # Safety
            /// The CPU supports the features.
            #[cfg(feature = "testing")]
            unsafe fn $stream(s: $ty, d: &[f32]) -> f32 {
                super::probe::stream_sum(s, d)
            }

            /// # Safety
            /// The CPU supports the features.
            #[cfg(feature = "testing")]
            unsafe fn $fma(s: $ty, iters: usize) -> (f64, f32) {
                super::probe::fma_chains(s, iters)
            }
        });
        kernel_impl!($ty, $dot, $dotq_impl, $act, $pairs, full: $full, half: $half, chunk: $chunk, proj: $proj, biased: $biased);
    };
}

#[cfg(target_arch = "x86_64")]
entries!(
    avx512,
    Avx512,
    step_avx512,
    project_avx512,
    stream_avx512,
    fma_avx512,
    dot_avx512,
    dotq_avx512_sign,
    qdot::Avx512Q,
    dotq_avx512,
    act_avx512,
    pairs_avx512,
    // 32 registers: a whole-block LSTM tile of 3 rows holds 24 sums, a
    // half-block tile of 6 rows 24 (plus 6 broadcasts and one weight); a
    // projection tile of 12 rows 24 (one gate's two vectors per row).
    full: 3,
    half: 6,
    chunk: CHUNK_AVX512,
    proj: 12,
    // `vpdpbusd` multiplies unsigned activations: stored plus 128, the
    // product's broadcasts need no xor (the same check `dotq_avx512` makes).
    biased: qdot::Avx512Vnni::new().is_some()
);
#[cfg(target_arch = "x86_64")]
entries!(
    avx2,
    Avx2,
    step_avx2,
    project_avx2,
    stream_avx2,
    fma_avx2,
    dot_avx2,
    dotq_avx2,
    qdot::SignQ,
    dotq_avx2,
    act_avx2,
    pairs_avx2,
    // 16 registers: one whole-block LSTM row (8 sums) or 3 half-block rows
    // (12); a projection tile of 6 rows 12 (one gate's two vectors per row).
    full: 1,
    half: 3,
    chunk: CHUNK_AVX2,
    proj: 6,
    biased: false
);

#[cfg(target_arch = "x86_64")]
isa_features!(avx512vnni enable {
    /// # Safety
    /// The CPU supports the features (proved by `d`) and the contract of
    /// [`qdot::dot_q`] holds.
    #[inline(never)]
    unsafe fn dotq_avx512_vnni<const G: usize, const MB: usize, const NV: usize>(
        s: Avx512,
        d: qdot::Avx512Vnni,
        blk: *const i8,
        corr: *const i32,
        v0: usize,
        k4: usize,
        q: [*const i8; MB],
    ) -> [Acc<<Avx512 as Simd>::V, G, NV>; MB] {
        // SAFETY: forwarded contract.
        unsafe { qdot::dot_q::<Avx512, _, G, MB, NV>(s, d, blk, corr, v0, k4, q) }
    }
});

/// The AVX-512 int8-dynamic product: `vpdpbusd` when the CPU has VNNI
/// (detected once), else AVX2's signed byte products on each half.
///
/// # Safety
/// The contract of [`qdot::dot_q`]; the token proves AVX-512F.
#[cfg(target_arch = "x86_64")]
unsafe fn dotq_avx512<const G: usize, const MB: usize, const NV: usize>(
    s: Avx512,
    blk: *const i8,
    corr: *const i32,
    v0: usize,
    k4: usize,
    q: [*const i8; MB],
) -> [Acc<<Avx512 as Simd>::V, G, NV>; MB] {
    // SAFETY: forwarded contract; a VNNI token exists only on a CPU with
    // VNNI, the Avx512 token proves the rest of both functions' features.
    unsafe {
        match qdot::Avx512Vnni::new() {
            Some(d) => dotq_avx512_vnni::<G, MB, NV>(s, d, blk, corr, v0, k4, q),
            None => dotq_avx512_sign::<G, MB, NV>(s, blk, corr, v0, k4, q),
        }
    }
}

/// The out-of-line product and activation of an ISA that needs no
/// `#[target_feature]` (Portable; NEON, which the aarch64 targets enable for
/// all code), so `#[inline(never)]` holds; see [`Kernel`].
macro_rules! plain_entries {
    ($ty:ty, $dot:ident, $dotq:ident, $qd:expr, $act:ident, $pairs:ident) => {
        /// # Safety
        /// The contract of [`qdot::dot_q`].
        #[inline(never)]
        unsafe fn $dotq<const G: usize, const MB: usize, const NV: usize>(
            s: $ty,
            blk: *const i8,
            corr: *const i32,
            v0: usize,
            k4: usize,
            q: [*const i8; MB],
        ) -> [Acc<<$ty as Simd>::V, G, NV>; MB] {
            // SAFETY: forwarded contract.
            unsafe { qdot::dot_q::<$ty, _, G, MB, NV>(s, $qd, blk, corr, v0, k4, q) }
        }

        /// # Safety
        /// The contract of [`dot::dot`].
        #[inline(never)]
        unsafe fn $dot<E: Elem, const G: usize, const MB: usize, const NV: usize>(
            s: $ty,
            blk: *const E,
            v0: usize,
            k0: usize,
            k1: usize,
            rows: [*const f32; MB],
            acc: [Acc<<$ty as Simd>::V, G, NV>; MB],
        ) -> [Acc<<$ty as Simd>::V, G, NV>; MB] {
            // SAFETY: forwarded contract.
            unsafe { dot::dot::<$ty, E, G, MB, NV, false>(s, blk, v0, k0, k1, rows, acc) }
        }

        /// [`step::pair_block`], out of line (see [`Kernel::pair_block`]).
        ///
        /// # Safety
        /// The contract of [`step::pair_block`].
        #[inline(never)]
        unsafe fn $pairs<const DEF: bool>(
            s: $ty,
            ctx: &Ctx<'_>,
            pass: step::Pass,
            blk: usize,
            b: &Bufs,
            rows: &[usize],
        ) {
            // SAFETY: forwarded contract.
            unsafe { step::pair_block::<$ty, DEF>(s, ctx, pass, blk, b, rows) }
        }

        /// [`activation_v`], out of line (see [`Kernel::act`]).
        ///
        /// # Safety
        /// None: `unsafe` only to share [`ActFn`] with the feature-gated ISAs.
        #[inline(never)]
        unsafe fn $act(s: $ty, a: Activation, v: <$ty as Simd>::V) -> <$ty as Simd>::V {
            activation_v(s, a, v)
        }
    };
}

plain_entries!(
    Portable,
    dot_portable,
    dotq_portable,
    qdot::PortableQ,
    act_portable,
    pairs_portable
);
// [f32; 8] "vectors": small tiles; the compiler maps them to whatever
// registers the target has.
kernel_impl!(Portable, dot_portable, dotq_portable, act_portable, pairs_portable, full: 1, half: 2, chunk: CHUNK_AVX2, proj: 0, biased: false);

#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
plain_entries!(Neon, dot_neon, dotq_neon, qdot::NeonQ, act_neon, pairs_neon);
// 32 registers, as AVX-512: a whole-block LSTM tile of 3 rows holds 24
// sums, a half-block tile of 6 rows 24 (plus the broadcasts and one
// weight). The chunk size is AVX2's (8 KiB stays in any aarch64 L1); it is
// not measured on an ARM core yet, nor are the projection's gate-pair tiles
// (off: 0), which were measured on x86 only.
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
kernel_impl!(Neon, dot_neon, dotq_neon, act_neon, pairs_neon, full: 3, half: 6, chunk: CHUNK_AVX2, proj: 0, biased: false);

/// Dispatch from an ISA token to its `#[target_feature]` entry points.
#[derive(Clone, Copy)]
pub(crate) struct Token(pub(crate) Isa);

impl Token {
    /// One time step: [`step::step`] for this token's ISA.
    ///
    /// # Safety
    /// The contract of [`step::step`]; the token is not the reference's.
    pub(crate) unsafe fn step(
        self,
        ctx: &Ctx<'_>,
        b: &Bufs,
        rows: &[usize],
        backwards: bool,
        part: Part<'_>,
    ) {
        // SAFETY: forwarded contract; an Avx2/Avx512 token proves its CPU
        // features.
        unsafe {
            match self.0 {
                Isa::Scalar => unreachable!("the reference has no fast kernel"),
                Isa::Portable(s) => step::step(s, ctx, b, rows, backwards, part),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2(s) => step_avx2(s, ctx, b, rows, backwards, part),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512(s) => step_avx512(s, ctx, b, rows, backwards, part),
                #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                Isa::Neon(s) => step::step(s, ctx, b, rows, backwards, part),
            }
        }
    }

    /// The input projection: [`project::project`] for this token's ISA.
    ///
    /// # Safety
    /// The contract of [`project::project`]; the token is not the reference's.
    pub(crate) unsafe fn project(
        self,
        ctx: &Ctx<'_>,
        x: XRows,
        out: *mut f32,
        blocks: (usize, usize),
    ) {
        // SAFETY: forwarded contract; tokens prove features.
        unsafe {
            match self.0 {
                Isa::Scalar => unreachable!("the reference has no fast kernel"),
                Isa::Portable(s) => project::project(s, ctx, x, out, blocks),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2(s) => project_avx2(s, ctx, x, out, blocks),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512(s) => project_avx512(s, ctx, x, out, blocks),
                #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                Isa::Neon(s) => project::project(s, ctx, x, out, blocks),
            }
        }
    }

    /// Sums `d` with this ISA's loads ([`super::probe::stream_sum`]).
    #[cfg(feature = "testing")]
    pub(crate) fn stream_sum(self, d: &[f32]) -> f32 {
        match self.0 {
            Isa::Scalar => d.iter().sum(),
            Isa::Portable(s) => super::probe::stream_sum(s, d),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX2, FMA and F16C.
            Isa::Avx2(s) => unsafe { stream_avx2(s, d) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX-512F.
            Isa::Avx512(s) => unsafe { stream_avx512(s, d) },
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon(s) => super::probe::stream_sum(s, d),
        }
    }

    /// Runs [`super::probe::fma_chains`] with this ISA.
    #[cfg(feature = "testing")]
    pub(crate) fn fma_chains(self, iters: usize) -> (f64, f32) {
        match self.0 {
            Isa::Scalar => super::probe::fma_chains(crate::simd::portable::Scalar, iters),
            Isa::Portable(s) => super::probe::fma_chains(s, iters),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX2, FMA and F16C.
            Isa::Avx2(s) => unsafe { fma_avx2(s, iters) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token proves AVX-512F.
            Isa::Avx512(s) => unsafe { fma_avx512(s, iters) },
            #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
            Isa::Neon(s) => super::probe::fma_chains(s, iters),
        }
    }
}

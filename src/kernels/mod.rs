//! The fast kernels: ISA selection, packed weights per layer direction, and
//! the safe drivers around the fused step of [`rnn`].
//!
//! Kernel names follow one grammar, `{cell}_f32_{isa}_nr{NR}` (e.g.
//! `lstm_f32_avx512_nr32`, `gru_f32_avx2_nr16`, `lstm_f32_portable_nr16`),
//! where NR is the number of hidden units per packed block.

pub(crate) mod pack;
pub(crate) mod rnn;

use crate::config::{Cell, Config, GruReset};
use crate::error::{Error, Result};
use crate::plan::KernelFamily;
use crate::simd::portable::Portable;
#[cfg(target_arch = "x86_64")]
use crate::simd::x86_64::{Avx2, Avx512};
use crate::simd::Simd;
use crate::weights::{DirectionWeights, WeightFormat};
use pack::{padded, Panels};
use rnn::{Bufs, Ctx, XSrc};

/// An ISA token (or the scalar reference).
#[derive(Clone, Copy)]
pub(crate) enum Isa {
    Scalar,
    Portable(Portable),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
}

impl Isa {
    /// Units per packed block: two vectors.
    pub(crate) fn nr(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Portable(_) => 2 * Portable::LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2(_) => 2 * Avx2::LANES,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512(_) => 2 * Avx512::LANES,
        }
    }
}

/// Calls `f` with the token of `family`, or a typed error if this CPU
/// cannot run it.
pub(crate) fn with_isa<R>(family: KernelFamily, f: impl FnOnce(Isa) -> R) -> Result<R> {
    let isa = match family {
        KernelFamily::Reference => Some(Isa::Scalar),
        KernelFamily::Portable => Some(Isa::Portable(Portable)),
        #[cfg(target_arch = "x86_64")]
        KernelFamily::Avx2 => Avx2::new().map(Isa::Avx2),
        #[cfg(target_arch = "x86_64")]
        KernelFamily::Avx512 => Avx512::new().map(Isa::Avx512),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    isa.map(f).ok_or_else(|| {
        Error::KernelUnavailable(format!(
            "`{}` needs CPU features this host lacks",
            family.name()
        ))
    })
}

/// One layer direction, packed for one ISA.
#[derive(Clone, Debug)]
pub(crate) struct DirPack {
    /// `W`, all G gates over the layer input.
    pub(crate) w: Panels,
    /// `R`: LSTM 4 gates, GRU reset-after 3 gates, GRU reset-before z and r.
    pub(crate) r: Panels,
    /// GRU reset-before: `R_n`.
    pub(crate) rn: Option<Panels>,
    /// `[G*Hp]` biases added in the epilogue: LSTM `Wb + Rb`; GRU z, r
    /// `Wb + Rb`; GRU n `Wb` (reset-after) or `Wb + Rb` (reset-before).
    pub(crate) bias: Vec<f32>,
    /// GRU reset-after: `Rb_n` `[Hp]`, scaled by r.
    pub(crate) rbn: Vec<f32>,
    /// LSTM peepholes `[3*Hp]`, `i, f, o`.
    pub(crate) peep: Option<Vec<f32>>,
    /// LSTM projection, one "gate" of `Hout` units over `H`.
    pub(crate) proj: Option<Panels>,
}

impl DirPack {
    pub(crate) fn new(
        cfg: &Config,
        w: &DirectionWeights,
        layer: usize,
        nr: usize,
        fmt: WeightFormat,
    ) -> DirPack {
        let (h, g) = (cfg.hidden_size, cfg.cell.gates());
        let (inp, hout) = (cfg.layer_input_size(layer), cfg.output_size());
        let hp = h.div_ceil(nr) * nr;
        let wp = Panels::pack(g, h, inp, nr, fmt, |gate, j, k| {
            w.w[(gate * h + j) * inp + k]
        });
        let before = cfg.cell == Cell::Gru && cfg.gru_reset == GruReset::BeforeMatmul;
        let r_gates = if before { 2 } else { g };
        let rp = Panels::pack(r_gates, h, hout, nr, fmt, |gate, j, k| {
            w.r[(gate * h + j) * hout + k]
        });
        let rn = before.then(|| Panels::pack(1, h, h, nr, fmt, |_, j, k| w.r[(2 * h + j) * h + k]));
        let after = cfg.cell == Cell::Gru && !before;
        let mut bias = Vec::with_capacity(g * hp);
        for gate in 0..g {
            let rb_counts = !(after && gate == 2);
            bias.extend(padded(
                (0..h)
                    .map(|j| w.wb[gate * h + j] + if rb_counts { w.rb[gate * h + j] } else { 0.0 }),
                hp,
            ));
        }
        let rbn = if after {
            padded(w.rb[2 * h..3 * h].iter().copied(), hp)
        } else {
            Vec::new()
        };
        let peep = w.peepholes.as_ref().map(|p| {
            (0..3)
                .flat_map(|k| padded(p[k * h..(k + 1) * h].iter().copied(), hp))
                .collect()
        });
        let proj = w
            .proj
            .as_ref()
            .map(|p| Panels::pack(1, hout, h, nr, fmt, |_, j, k| p[j * h + k]));
        DirPack {
            w: wp,
            r: rp,
            rn,
            bias,
            rbn,
            peep,
            proj,
        }
    }

    fn hp(&self) -> usize {
        self.r.blocks * self.r.nr
    }

    /// Row stride of the h buffers: room for H (epilogue blocks) and for
    /// the projection's blocks.
    fn hstride(&self) -> usize {
        let p = self.proj.as_ref().map_or(0, |p| p.blocks * p.nr);
        self.hp().max(p)
    }

    /// Bytes of the recurrent panels read per step (R, R_n, projection).
    pub(crate) fn recurrent_bytes(&self) -> usize {
        self.r.bytes()
            + self.rn.as_ref().map_or(0, |p| p.bytes())
            + self.proj.as_ref().map_or(0, |p| p.bytes())
    }
}

/// A model's fast kernel: the ISA and every layer direction packed for it.
#[derive(Clone)]
pub(crate) struct FastKernel {
    isa: Isa,
    packs: Vec<DirPack>,
}

impl std::fmt::Debug for FastKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FastKernel(nr {}, {} packs)",
            self.isa.nr(),
            self.packs.len()
        )
    }
}

/// Scratch buffers of the fast kernels (inside [`crate::Workspace`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct FastWs {
    xproj: Vec<f32>,
    h0: Vec<f32>,
    h1: Vec<f32>,
    c: Vec<f32>,
    aux: Vec<f32>,
    z: Vec<f32>,
    xn: Vec<f32>,
    acc: Vec<f32>,
    off: Vec<usize>,
    rows: Vec<usize>,
}

impl FastWs {
    /// Grows the per-step buffers to `batch` rows (h rows of `hstride`,
    /// partial sums of [`rnn::ACC_SLOTS`] blocks of `nr`, the others of `hp`).
    fn grow_step(&mut self, batch: usize, hstride: usize, hp: usize, nr: usize) {
        grow(&mut self.acc, batch * rnn::ACC_SLOTS * nr);
        for v in [&mut self.h0, &mut self.h1] {
            grow(v, batch * hstride);
        }
        for v in [&mut self.c, &mut self.aux, &mut self.z, &mut self.xn] {
            grow(v, batch * hp);
        }
        grow(&mut self.off, batch);
        grow(&mut self.rows, batch);
    }
}

impl FastWs {
    /// The step's buffers: the given input source and h rows, this
    /// workspace's scratch for everything else.
    fn bufs(&mut self, x: XSrc, h_prev: *const f32, h_next: *mut f32, hstride: usize) -> Bufs {
        Bufs {
            x,
            h_prev,
            h_next,
            hstride,
            c: self.c.as_mut_ptr(),
            aux: self.aux.as_mut_ptr(),
            z: self.z.as_mut_ptr(),
            xn: self.xn.as_mut_ptr(),
            acc: self.acc.as_mut_ptr(),
        }
    }
}

fn grow<T: Copy + Default>(v: &mut Vec<T>, n: usize) {
    if v.len() < n {
        v.resize(n, T::default());
    }
}

/// One layer direction over a whole sequence.
pub(crate) struct SeqArgs<'a> {
    /// Layer input; entry (t, b) at `src_at(t, b)`, `In` floats.
    pub(crate) src: &'a [f32],
    pub(crate) src_t: usize,
    pub(crate) src_b: usize,
    /// Output; entry (t, b) of this direction at `dst_t*t + dst_b*b + dst_off`.
    pub(crate) dst: &'a mut [f32],
    pub(crate) dst_t: usize,
    pub(crate) dst_b: usize,
    pub(crate) dst_off: usize,
    pub(crate) seq_len: usize,
    pub(crate) batch: usize,
    pub(crate) lengths: Option<&'a [usize]>,
    pub(crate) reverse: bool,
    /// This direction's state rows: h `[B, Hout]`, c `[B, H]` (LSTM).
    pub(crate) h: &'a mut [f32],
    pub(crate) c: &'a mut [f32],
}

impl FastKernel {
    pub(crate) fn new(
        cfg: &Config,
        weights: &[DirectionWeights],
        isa: Isa,
        fmt: WeightFormat,
    ) -> FastKernel {
        let nr = isa.nr();
        let dirs = cfg.num_directions();
        let packs = weights
            .iter()
            .enumerate()
            .map(|(i, w)| DirPack::new(cfg, w, i / dirs, nr, fmt))
            .collect();
        FastKernel { isa, packs }
    }

    pub(crate) fn nr(&self) -> usize {
        self.isa.nr()
    }

    /// Bytes of recurrent weights one time step reads (every layer direction).
    pub(crate) fn recurrent_bytes(&self) -> usize {
        self.packs.iter().map(|p| p.recurrent_bytes()).sum()
    }

    /// Streams every recurrent panel once with this ISA's loads; see
    /// [`rnn::stream_sum`].
    pub(crate) fn stream_recurrent(&self) -> f32 {
        let mut sum = 0.0;
        for p in &self.packs {
            let mut mats = vec![&p.r];
            mats.extend(p.rn.as_ref());
            mats.extend(p.proj.as_ref());
            for m in mats {
                let d = m.raw();
                sum += match self.isa {
                    Isa::Scalar => d.iter().sum(),
                    Isa::Portable(s) => rnn::stream_sum(s, d),
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the token proves AVX2 and FMA.
                    Isa::Avx2(s) => unsafe { stream_avx2(s, d) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the token proves AVX-512F.
                    Isa::Avx512(s) => unsafe { stream_avx512(s, d) },
                };
            }
        }
        sum
    }

    fn ctx<'a>(&'a self, cfg: &'a Config, idx: usize) -> Ctx<'a> {
        let dirs = cfg.num_directions();
        let p = &self.packs[idx];
        Ctx {
            cfg,
            acts: cfg.activations[idx % dirs],
            p,
            hp: p.hp(),
            inp: cfg.layer_input_size(idx / dirs),
        }
    }

    /// Runs layer direction `idx` over a sequence. Every slice length is
    /// checked here, before any unsafe code runs.
    pub(crate) fn sequence(&self, cfg: &Config, idx: usize, a: SeqArgs<'_>, ws: &mut FastWs) {
        let ctx = self.ctx(cfg, idx);
        let (hp, hs, hout, inp) = (ctx.hp, cfg.hidden_size, cfg.output_size(), ctx.inp);
        let g = cfg.cell.gates();
        let hstride = ctx.p.hstride();
        let (t_len, batch) = (a.seq_len, a.batch);
        let n_rows = t_len * batch;
        // The layer input is a [T*B, In] matrix in its memory order.
        let row_of = |t: usize, b: usize| (t * a.src_t + b * a.src_b) / inp;
        assert!(a.src.len() >= n_rows * inp, "layer input too short");
        assert!(a.h.len() == batch * hout && (cfg.cell != Cell::Lstm || a.c.len() == batch * hs));
        if n_rows > 0 {
            let last = row_of(t_len - 1, batch - 1)
                .max(row_of(t_len - 1, 0))
                .max(row_of(0, batch - 1));
            assert!(last < n_rows);
            assert!(
                a.dst.len() >= (t_len - 1) * a.dst_t + (batch - 1) * a.dst_b + a.dst_off + hout
            );
        }
        let xs = rnn::xproj_stride(g, hp);
        grow(&mut ws.xproj, n_rows * xs);
        ws.grow_step(batch, hstride, hp, self.isa.nr());
        // SAFETY: x holds n_rows rows of In floats (asserted above); xproj
        // holds n_rows rows of xproj_stride (grown above); the packs match the token.
        unsafe {
            Token(self.isa).project(&ctx, a.src.as_ptr(), inp, n_rows, ws.xproj.as_mut_ptr())
        };
        for b in 0..batch {
            let row = &mut ws.h0[b * hstride..(b + 1) * hstride];
            row.fill(0.0);
            row[..hout].copy_from_slice(&a.h[b * hout..(b + 1) * hout]);
            let crow = &mut ws.c[b * hp..(b + 1) * hp];
            crow.fill(0.0);
            if cfg.cell == Cell::Lstm {
                crow[..hs].copy_from_slice(&a.c[b * hs..(b + 1) * hs]);
            }
        }
        let len = |b: usize| a.lengths.map_or(t_len, |l| l[b]);
        let (mut cur, mut nxt) = (std::mem::take(&mut ws.h0), std::mem::take(&mut ws.h1));
        for s in 0..t_len {
            let mut n_active = 0;
            for b in 0..batch {
                let lb = len(b);
                if s < lb {
                    let t = if a.reverse { lb - 1 - s } else { s };
                    ws.off[b] = row_of(t, b) * xs;
                    ws.rows[n_active] = b;
                    n_active += 1;
                } else {
                    nxt[b * hstride..(b + 1) * hstride]
                        .copy_from_slice(&cur[b * hstride..(b + 1) * hstride]);
                }
            }
            if n_active == 0 {
                std::mem::swap(&mut cur, &mut nxt);
                continue;
            }
            let x = XSrc::Pre {
                base: ws.xproj.as_ptr(),
                off: ws.off.as_ptr(),
            };
            let bufs = ws.bufs(x, cur.as_ptr(), nxt.as_mut_ptr(), hstride);
            let rows = &ws.rows[..n_active];
            // SAFETY: every buffer was grown above to B rows of its stride;
            // off[b] + G*Hp <= n_rows*xs for active rows; the packs match the
            // token; cur and nxt are distinct buffers.
            unsafe { Token(self.isa).step(&ctx, &bufs, rows, s % 2 == 1) };
            for &b in rows {
                let lb = len(b);
                let t = if a.reverse { lb - 1 - s } else { s };
                let o = t * a.dst_t + b * a.dst_b + a.dst_off;
                a.dst[o..o + hout].copy_from_slice(&nxt[b * hstride..b * hstride + hout]);
            }
            std::mem::swap(&mut cur, &mut nxt);
        }
        for b in 0..batch {
            for t in len(b)..t_len {
                let o = t * a.dst_t + b * a.dst_b + a.dst_off;
                a.dst[o..o + hout].fill(0.0);
            }
            let zero = a.lengths.is_some() && len(b) == 0;
            let h = &mut a.h[b * hout..(b + 1) * hout];
            if zero {
                h.fill(0.0);
            } else {
                h.copy_from_slice(&cur[b * hstride..b * hstride + hout]);
            }
            if cfg.cell == Cell::Lstm {
                let c = &mut a.c[b * hs..(b + 1) * hs];
                if zero {
                    c.fill(0.0);
                } else {
                    c.copy_from_slice(&ws.c[b * hp..b * hp + hs]);
                }
            }
        }
        ws.h0 = cur;
        ws.h1 = nxt;
    }

    /// One streaming step of layer `k` (a forward model): `x` `[B, In]`,
    /// state rows `h` `[B, Hout]` and `c` `[B, H]` updated in place;
    /// `backwards` alternates the panel walk between calls.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stream(
        &self,
        cfg: &Config,
        k: usize,
        x: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        backwards: bool,
        ws: &mut FastWs,
    ) {
        let ctx = self.ctx(cfg, k);
        let (hp, hs, hout, inp) = (ctx.hp, cfg.hidden_size, cfg.output_size(), ctx.inp);
        let hstride = ctx.p.hstride();
        let batch = h.len() / hout;
        assert!(x.len() == batch * inp && h.len() == batch * hout);
        assert!(cfg.cell != Cell::Lstm || c.len() == batch * hs);
        ws.grow_step(batch, hstride, hp, self.isa.nr());
        for b in 0..batch {
            ws.h0[b * hstride..b * hstride + hout].copy_from_slice(&h[b * hout..(b + 1) * hout]);
            if cfg.cell == Cell::Lstm {
                ws.c[b * hp..b * hp + hs].copy_from_slice(&c[b * hs..(b + 1) * hs]);
            }
            ws.off[b] = b * inp;
            ws.rows[b] = b;
        }
        let xs = XSrc::Fused {
            base: x.as_ptr(),
            off: ws.off.as_ptr(),
        };
        let (h_prev, h_next) = (ws.h0.as_ptr(), ws.h1.as_mut_ptr());
        let bufs = ws.bufs(xs, h_prev, h_next, hstride);
        let rows = &ws.rows[..batch];
        // SAFETY: buffers grown above to B rows of their strides; x has B
        // rows of In floats at off[b] = b*In; packs match the token.
        unsafe { Token(self.isa).step(&ctx, &bufs, rows, backwards) };
        for b in 0..batch {
            h[b * hout..(b + 1) * hout].copy_from_slice(&ws.h1[b * hstride..b * hstride + hout]);
            if cfg.cell == Cell::Lstm {
                c[b * hs..(b + 1) * hs].copy_from_slice(&ws.c[b * hp..b * hp + hs]);
            }
        }
    }
}

/// Dispatch from an ISA token to its `#[target_feature]` entry points.
#[derive(Clone, Copy)]
struct Token(Isa);

/// AVX-512 tiles run over whole panels: its 6-row half tiles reuse each
/// weight vector 6 times, enough to run at the FMA rate from L2, and
/// parking the sums of chunks (24 zmm per tile and chunk) costs more than
/// it saves (lstm-h256-b64: 86 GFLOP/s unchunked, 66 with 8 KiB chunks, 47
/// with 4 KiB; one run each on this project's Zen 4 machine).
const CHUNK_AVX512: usize = 0;
/// AVX2's 3-row tiles reuse each weight vector 3 times, which needs more
/// than L2 delivers; 8 KiB chunks stay in L1 (lstm-h256-b64: 61 GFLOP/s
/// unchunked, 64-71 with 8 KiB chunks, 60-62 with 16 KiB).
const CHUNK_AVX2: usize = 8192;

/// The signature of an out-of-line [`rnn::dot`].
type DotFn<S, E, const G: usize, const MB: usize, const NV: usize> =
    unsafe fn(
        S,
        *const E,
        usize,
        usize,
        usize,
        [*const f32; MB],
        [rnn::Acc<<S as Simd>::V, G, NV>; MB],
    ) -> [rnn::Acc<<S as Simd>::V, G, NV>; MB];

/// `impl rnn::Kernel` for an ISA token whose out-of-line product is `$dot`.
macro_rules! kernel_impl {
    ($ty:ty, $dot:ident, full: $full:expr, half: $half:expr, chunk: $chunk:expr) => {
        impl rnn::Kernel for $ty {
            const FULL_ROWS: usize = $full;
            const HALF_ROWS: usize = $half;
            const CHUNK_BYTES: usize = $chunk;
            #[inline(always)]
            unsafe fn dot_k<E: rnn::Elem, const G: usize, const MB: usize, const NV: usize>(
                self,
                blk: *const E,
                v0: usize,
                k0: usize,
                k1: usize,
                rows: [*const f32; MB],
                acc: [rnn::Acc<<$ty as Simd>::V, G, NV>; MB],
            ) -> [rnn::Acc<<$ty as Simd>::V, G, NV>; MB] {
                if MB == 1 && (std::mem::size_of::<E>() == 4 || <$ty as Simd>::LANES > 8) {
                    // One row's sums fit beside the epilogue's constants,
                    // and at batch 1 with a small H the call would cost
                    // more than it saves (gru-h64-b1: +25%). Not with
                    // 16-bit weights on 16 registers (AVX2): the widening
                    // temporaries made LLVM keep a sum on the stack
                    // (lstm-h1024-b1 bf16: 450 us inlined, 293 out of line).
                    // SAFETY: forwarded contract.
                    return unsafe {
                        rnn::dot::<$ty, E, G, MB, NV>(self, blk, v0, k0, k1, rows, acc)
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
        }
    };
}

/// The `#[target_feature]` entry points: each instantiates the generic code
/// for one ISA so its intrinsics inline.
macro_rules! entries {
    (
        $step:ident,
        $project:ident,
        $stream:ident,
        $dot:ident,
        $ty:ty,
        $features:literal,
        full: $full:expr,
        half: $half:expr,
        chunk: $chunk:expr
    ) => {
        /// # Safety
        /// The CPU supports the features and the contract of [`rnn::dot`]
        /// holds.
        #[target_feature(enable = $features)]
        #[inline(never)]
        unsafe fn $dot<E: rnn::Elem, const G: usize, const MB: usize, const NV: usize>(
            s: $ty,
            blk: *const E,
            v0: usize,
            k0: usize,
            k1: usize,
            rows: [*const f32; MB],
            acc: [rnn::Acc<<$ty as Simd>::V, G, NV>; MB],
        ) -> [rnn::Acc<<$ty as Simd>::V, G, NV>; MB] {
            // SAFETY: forwarded contract.
            unsafe { rnn::dot::<$ty, E, G, MB, NV>(s, blk, v0, k0, k1, rows, acc) }
        }
        kernel_impl!($ty, $dot, full: $full, half: $half, chunk: $chunk);
        /// # Safety
        /// The CPU supports the features (proved by holding the token) and
        /// the contract of [`rnn::step`] holds.
        #[target_feature(enable = $features)]
        unsafe fn $step(s: $ty, ctx: &Ctx<'_>, b: &Bufs, rows: &[usize], backwards: bool) {
            // SAFETY: forwarded contract.
            unsafe { rnn::step(s, ctx, b, rows, backwards) }
        }
        /// # Safety
        /// The CPU supports the features.
        #[target_feature(enable = $features)]
        unsafe fn $stream(s: $ty, d: &[f32]) -> f32 {
            rnn::stream_sum(s, d)
        }
        /// # Safety
        /// The CPU supports the features and the contract of
        /// [`rnn::project`] holds.
        #[target_feature(enable = $features)]
        unsafe fn $project(
            s: $ty,
            ctx: &Ctx<'_>,
            x: *const f32,
            xs: usize,
            n: usize,
            out: *mut f32,
        ) {
            // SAFETY: forwarded contract.
            unsafe { rnn::project(s, ctx, x, xs, n, out) }
        }
    };
}

#[cfg(target_arch = "x86_64")]
entries!(
    step_avx512,
    project_avx512,
    stream_avx512,
    dot_avx512,
    Avx512,
    "avx512f,avx2,fma",
    // 32 registers: a whole-block LSTM tile of 3 rows holds 24 sums, a
    // half-block tile of 6 rows 24 (plus 6 broadcasts and one weight).
    full: 3,
    half: 6,
    chunk: CHUNK_AVX512
);
#[cfg(target_arch = "x86_64")]
entries!(
    step_avx2,
    project_avx2,
    stream_avx2,
    dot_avx2,
    Avx2,
    "avx2,fma,f16c",
    // 16 registers: one whole-block LSTM row (8 sums) or 3 half-block rows (12).
    full: 1,
    half: 3,
    chunk: CHUNK_AVX2
);

/// Portable needs no features; its product is out of line for the same
/// reason as the others' (see [`rnn::Kernel`]).
#[inline(never)]
unsafe fn dot_portable<E: rnn::Elem, const G: usize, const MB: usize, const NV: usize>(
    s: Portable,
    blk: *const E,
    v0: usize,
    k0: usize,
    k1: usize,
    rows: [*const f32; MB],
    acc: [rnn::Acc<<Portable as Simd>::V, G, NV>; MB],
) -> [rnn::Acc<<Portable as Simd>::V, G, NV>; MB] {
    // SAFETY: forwarded contract.
    unsafe { rnn::dot::<Portable, E, G, MB, NV>(s, blk, v0, k0, k1, rows, acc) }
}

// [f32; 8] "vectors": small tiles; the compiler maps them to whatever
// registers the target has.
kernel_impl!(Portable, dot_portable, full: 1, half: 2, chunk: CHUNK_AVX2);

impl Token {
    /// # Safety
    /// The contract of [`rnn::step`].
    unsafe fn step(self, ctx: &Ctx<'_>, b: &Bufs, rows: &[usize], backwards: bool) {
        // SAFETY: forwarded contract; an Avx2/Avx512 token proves
        // its CPU features.
        unsafe {
            match self.0 {
                Isa::Scalar => unreachable!("the reference has no fast kernel"),
                Isa::Portable(s) => rnn::step(s, ctx, b, rows, backwards),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2(s) => step_avx2(s, ctx, b, rows, backwards),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512(s) => step_avx512(s, ctx, b, rows, backwards),
            }
        }
    }

    /// # Safety
    /// The contract of [`rnn::project`].
    unsafe fn project(self, ctx: &Ctx<'_>, x: *const f32, xs: usize, n: usize, out: *mut f32) {
        // SAFETY: forwarded contract; tokens prove features.
        unsafe {
            match self.0 {
                Isa::Scalar => unreachable!("the reference has no fast kernel"),
                Isa::Portable(s) => rnn::project(s, ctx, x, xs, n, out),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2(s) => project_avx2(s, ctx, x, xs, n, out),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512(s) => project_avx512(s, ctx, x, xs, n, out),
            }
        }
    }
}

//! Packing canonical weights into gate-interleaved panels, once per model.
//!
//! A [`Panels`] holds `G` gates of a `[G*H, K]` weight matrix for blocks of
//! `NR` hidden units (`NR` = two vectors of the kernel's ISA). Block `b` is
//! contiguous: for each `k` in `0..K`, the `G` gates' `NR` weights of units
//! `b*NR .. b*NR+NR`, so one sequential pass over a block produces all gate
//! pre-activations of those units. Units past `H` are zero.
//!
//! [`DirPack`] packs one layer direction (`W`, `R`, the GRU's `R_n`, the
//! projection, the epilogue's biases and peepholes) for one `NR`; a model
//! is packed once, for the family and format chosen when it is built.

use bytemuck::{Pod, Zeroable};

use crate::config::{Cell, Config, GruReset};
use crate::error::{Error, Result};
use crate::weights::{DirectionWeights, WeightFormat};

/// 64 bytes, 64-byte aligned: the storage unit that keeps every panel
/// aligned to a cache line.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Line([f32; 16]);

/// A 64-byte aligned, zero-initialized f32 buffer. One of 2 MiB or more
/// asks the kernel to back it with transparent huge pages (see
/// [`advise_huge`]).
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn zeroed(len: usize) -> AlignedBuf {
        let n = len.div_ceil(16);
        let mut lines = Vec::with_capacity(n);
        // Before the zeros below first touch the pages, so they fault in
        // as huge pages where the kernel grants them.
        advise_huge(lines.as_ptr() as usize, n * std::mem::size_of::<Line>());
        lines.resize(n, Line([0.0; 16]));
        AlignedBuf { lines, len }
    }
    pub(crate) fn as_slice(&self) -> &[f32] {
        &bytemuck::cast_slice(&self.lines)[..self.len]
    }
    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut bytemuck::cast_slice_mut(&mut self.lines)[..self.len]
    }
}

impl Clone for AlignedBuf {
    /// A fresh buffer (advised as [`AlignedBuf::zeroed`] advises) with the
    /// same floats.
    fn clone(&self) -> AlignedBuf {
        let mut b = AlignedBuf::zeroed(self.len);
        b.lines.copy_from_slice(&self.lines);
        b
    }
}

/// Asks Linux to back the 2 MiB-aligned stretches inside `bytes` bytes at
/// `addr` with transparent huge pages (`madvise(MADV_HUGEPAGE)`; it takes
/// effect when they are first touched). Buffers under 2 MiB hold no such
/// stretch and are left alone; the ones that do are the panels of f32
/// models from H = 512 (R: 4 MiB) and bf16 from H = 1024, whose steps
/// stream them from L3 or DRAM. A step that streams 16 MiB of weights then
/// needs 8 TLB entries instead of 4096 (more than the second-level TLB's
/// 2048 on recent Intel cores): measured (Intel Xeon m207, a loop
/// streaming a 16 MiB buffer from L3 with 64-byte loads, 2 x 5 runs)
/// 25.8-27.6 -> 28.9-29.8 GB/s (a 1 MiB buffer in L2 streams the same
/// either way). Only a hint: systems without transparent huge pages (or
/// with them set to `never`) refuse it and keep 4 KiB pages, which changes
/// nothing but speed.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn advise_huge(addr: usize, bytes: usize) {
    // One huge page (2 MiB on x86_64, and on aarch64 with 4 KiB pages).
    const HUGE_PAGE: usize = 2 << 20;
    // Inward to whole huge pages: only those can be huge, and the range
    // stays inside the allocation.
    let (Some(start), Some(end)) = (
        addr.checked_next_multiple_of(HUGE_PAGE),
        addr.checked_add(bytes).map(|e| e & !(HUGE_PAGE - 1)),
    ) else {
        return;
    };
    if end <= start {
        return;
    }
    extern "C" {
        fn madvise(
            addr: *mut std::ffi::c_void,
            len: usize,
            advice: std::ffi::c_int,
        ) -> std::ffi::c_int;
    }
    // Linux's value on x86_64 and aarch64 (asm-generic).
    const MADV_HUGEPAGE: std::ffi::c_int = 14;
    // SAFETY: [start, end) lies inside the allocation of `bytes` bytes at
    // `addr` that the caller owns (rounded inward above, both ends 2
    // MiB-aligned, so page-aligned on every page size); this advice only
    // changes how the kernel backs those pages, never their contents or
    // whether they are mapped, and a refusal (an error return, ignored)
    // leaves them as they were.
    unsafe {
        madvise(start as *mut std::ffi::c_void, end - start, MADV_HUGEPAGE);
    }
}

/// Elsewhere a no-op (see the Linux version).
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn advise_huge(_addr: usize, _bytes: usize) {}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} floats)", self.len)
    }
}

/// Gate-interleaved panels of one weight matrix, packed for one `NR`, in
/// f32, a 16-bit storage format or int8 with per-row scales.
#[derive(Clone, Debug)]
pub(crate) struct Panels {
    data: AlignedBuf,
    /// Int8: the scale of each gate's unit (row of the canonical matrix),
    /// `[blocks][g][nr]`, 0 past `H`; empty for the other formats.
    scales: AlignedBuf,
    /// Int8-dynamic: `-128 * Σ_k q_w` of each unit, `[blocks][g][nr]` (i32
    /// bits), where the VNNI product's sums start; empty otherwise.
    corr: AlignedBuf,
    format: WeightFormat,
    /// Gates per block.
    pub(crate) g: usize,
    /// Reduction length (the input the matrix multiplies).
    pub(crate) k: usize,
    /// Units per block.
    pub(crate) nr: usize,
    /// Number of blocks, `ceil(H / NR)`.
    pub(crate) blocks: usize,
}

impl Panels {
    /// Packs `g` gates of `h` units over `k` inputs; `weight(gate, unit, kk)`
    /// gives the canonical weight, stored in `format` (rounded to nearest,
    /// ties to even, for the 16-bit formats).
    pub(crate) fn pack(
        g: usize,
        h: usize,
        k: usize,
        nr: usize,
        format: WeightFormat,
        weight: impl Fn(usize, usize, usize) -> f32,
    ) -> Panels {
        let blocks = h.div_ceil(nr);
        let kp = stored_rows(format, k);
        let elems = blocks * kp * g * nr;
        let mut vals = vec![0.0f32; elems];
        for b in 0..blocks {
            for kk in 0..k {
                for gate in 0..g {
                    let base = ((b * kp + kk) * g + gate) * nr;
                    for u in 0..nr.min(h - b * nr) {
                        vals[base + u] = weight(gate, b * nr + u, kk);
                    }
                }
            }
        }
        let mut data = AlignedBuf::zeroed((elems * format.bytes()).div_ceil(4));
        let mut scales = AlignedBuf::zeroed(0);
        let mut corr = AlignedBuf::zeroed(0);
        match format {
            WeightFormat::F32 => data.as_mut_slice().copy_from_slice(&vals),
            WeightFormat::F16 => {
                let d: &mut [u16] = bytemuck::cast_slice_mut(data.as_mut_slice());
                for (o, &x) in d.iter_mut().zip(&vals) {
                    *o = half::f16::from_f32(x).to_bits();
                }
            }
            WeightFormat::Bf16 => {
                // Each gate's NR units as NR/2 pairs (unit i, unit NR/2 + i):
                // one full-width load gives both vectors (see `rnn::Bf16`).
                let d: &mut [u16] = bytemuck::cast_slice_mut(data.as_mut_slice());
                let half = nr / 2;
                for (run, o) in vals.chunks_exact(nr).zip(d.chunks_exact_mut(nr)) {
                    for (u, &x) in run.iter().enumerate() {
                        o[2 * (u % half) + u / half] = half::bf16::from_f32(x).to_bits();
                    }
                }
            }
            WeightFormat::Int8 | WeightFormat::Int8Dynamic => {
                // Each (gate, unit) row over k quantized on its own. Int8
                // keeps the f32 layout, one byte each; int8-dynamic stores
                // [K/4][2][g][nr/2][4] (the two halves of every gate's
                // units), one unit's four consecutive k adjacent (see
                // `qdot.rs`), and the row's `-128 * Σ q` (VNNI's
                // starting sums).
                let dynamic = format == WeightFormat::Int8Dynamic;
                scales = AlignedBuf::zeroed(blocks * g * nr);
                if dynamic {
                    corr = AlignedBuf::zeroed(blocks * g * nr);
                }
                let d: &mut [i8] = bytemuck::cast_slice_mut(data.as_mut_slice());
                let sc = scales.as_mut_slice();
                let cr: &mut [i32] = bytemuck::cast_slice_mut(corr.as_mut_slice());
                let (mut row, mut q) = (vec![0.0f32; k], vec![0i8; k]);
                for b in 0..blocks {
                    for gate in 0..g {
                        for u in 0..nr.min(h - b * nr) {
                            let at = |kk: usize| ((b * kp + kk) * g + gate) * nr + u;
                            for (kk, r) in row.iter_mut().enumerate() {
                                *r = vals[at(kk)];
                            }
                            let i = (b * g + gate) * nr + u;
                            sc[i] = crate::weights::quantize_row_int8(&row, &mut q);
                            for (kk, &qi) in q.iter().enumerate() {
                                let to = if dynamic {
                                    let group = b * (kp / 4) + kk / 4;
                                    let l = nr / 2;
                                    group * g * nr * 4
                                        + super::qdot::group_at(g, l, u / l, gate)
                                        + (u % l) * 4
                                        + kk % 4
                                } else {
                                    at(kk)
                                };
                                d[to] = qi;
                            }
                            if dynamic {
                                cr[i] = -128 * q.iter().map(|&v| i32::from(v)).sum::<i32>();
                            }
                        }
                    }
                }
            }
        }
        Panels {
            data,
            scales,
            corr,
            format,
            g,
            k,
            nr,
            blocks,
        }
    }

    /// Elements in one block (int8-dynamic: `K` rounded up to 4 rows).
    pub(crate) fn block_len(&self) -> usize {
        stored_rows(self.format, self.k) * self.g * self.nr
    }

    /// Bytes of `n` blocks' weights (without int8 scales).
    pub(crate) fn blocks_bytes(&self, n: usize) -> usize {
        n.saturating_mul(self.block_len())
            .saturating_mul(self.format.bytes())
    }

    /// The storage format.
    pub(crate) fn format(&self) -> WeightFormat {
        self.format
    }

    /// The first element, as the storage type `E` (f32 for
    /// [`WeightFormat::F32`], a 16-bit type for the others).
    pub(crate) fn ptr<E>(&self) -> *const E {
        self.data.as_slice().as_ptr().cast()
    }

    /// Int8: the scales of block `blk`, `[g][nr]`.
    ///
    /// # Safety
    /// The panels are int8 and `blk < blocks`.
    pub(crate) unsafe fn scales_at(&self, blk: usize) -> *const f32 {
        debug_assert!(self.format.is_int8() && blk < self.blocks);
        // SAFETY: int8 panels hold blocks * g * nr scales (see `pack`) and
        // blk < blocks (the caller's contract).
        unsafe { self.scales.as_slice().as_ptr().add(blk * self.g * self.nr) }
    }

    /// Int8-dynamic: the corrections of block `blk`, `[g][nr]`.
    ///
    /// # Safety
    /// The panels are int8-dynamic and `blk < blocks`.
    pub(crate) unsafe fn corr_at(&self, blk: usize) -> *const i32 {
        debug_assert!(self.format == WeightFormat::Int8Dynamic && blk < self.blocks);
        // SAFETY: int8-dynamic panels hold blocks * g * nr corrections (see
        // `pack`) and blk < blocks (the caller's contract).
        unsafe {
            self.corr
                .as_slice()
                .as_ptr()
                .cast::<i32>()
                .add(blk * self.g * self.nr)
        }
    }

    /// The packed storage viewed as f32 words (16-bit formats: two elements
    /// a word), for streaming its bytes once.
    #[cfg(feature = "testing")]
    pub(crate) fn raw(&self) -> &[f32] {
        self.data.as_slice()
    }

    /// Bytes of packed weights (int8: with the scales).
    pub(crate) fn bytes(&self) -> usize {
        self.blocks * self.block_len() * self.format.bytes()
            + 4 * (self.scales.as_slice().len() + self.corr.as_slice().len())
    }
}

/// Rows a block stores for a reduction of `k`: int8-dynamic rounds up to
/// whole groups of four (zeros past `k`).
fn stored_rows(format: WeightFormat, k: usize) -> usize {
    if format == WeightFormat::Int8Dynamic {
        k.div_ceil(4) * 4
    } else {
        k
    }
}

/// A per-unit vector padded to `blocks * nr` (biases, peepholes).
fn padded(v: impl Iterator<Item = f32>, len: usize) -> Vec<f32> {
    let mut out: Vec<f32> = v.collect();
    out.resize(len, 0.0);
    out
}

/// Grows a scratch buffer to at least `n` elements (never shrinks, so a
/// workspace allocates only until it has seen its largest shape).
///
/// # Errors
/// [`Error::TooLarge`] if the memory cannot be had (instead of aborting).
pub(crate) fn grow<T: Copy + Default>(v: &mut Vec<T>, n: usize) -> Result<()> {
    if v.len() < n {
        v.try_reserve_exact(n - v.len())
            .map_err(|_| Error::TooLarge {
                what: format!("workspace buffer of {n} elements"),
            })?;
        v.resize(n, T::default());
    }
    Ok(())
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
        // Int8-dynamic quantizes only the vectors `W` and `R` multiply;
        // `R_n (r ⊙ h)` and the projection keep f32 activations.
        let fmt_f = if fmt == WeightFormat::Int8Dynamic {
            WeightFormat::Int8
        } else {
            fmt
        };
        let rn =
            before.then(|| Panels::pack(1, h, h, nr, fmt_f, |_, j, k| w.r[(2 * h + j) * h + k]));
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
            .map(|p| Panels::pack(1, hout, h, nr, fmt_f, |_, j, k| p[j * h + k]));
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

    /// Whether `W` and `R` are int8-dynamic (their products take quantized
    /// rows).
    pub(crate) fn dynamic(&self) -> bool {
        self.r.format() == WeightFormat::Int8Dynamic
    }

    pub(crate) fn hp(&self) -> usize {
        self.r.blocks * self.r.nr
    }

    /// Row stride of the h buffers: room for H (epilogue blocks) and for
    /// the projection's blocks.
    pub(crate) fn hstride(&self) -> usize {
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

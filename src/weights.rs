//! Canonical weights: one gate order per cell, f32, `[out, in]` row-major.
//!
//! Every importer produces these; every kernel packs from them.

use crate::config::{Cell, Config};
use crate::error::{Error, Result};

/// The weights of one direction of one layer, in canonical form.
///
/// Gate blocks are stacked along the rows in the canonical order: LSTM
/// `i, f, g, o`, GRU `z, r, n` (see [`crate::config::lstm_gate`],
/// [`crate::config::gru_gate`]). With `G` gates, `H = hidden_size`,
/// `Hout = output_size` and `In` the layer's input size:
#[derive(Debug, Clone, PartialEq)]
pub struct DirectionWeights {
    /// Input weights `[G*H, In]`.
    pub w: Vec<f32>,
    /// Recurrent weights `[G*H, Hout]`.
    pub r: Vec<f32>,
    /// Input bias `[G*H]` (ONNX `Wb`, PyTorch `bias_ih`).
    pub wb: Vec<f32>,
    /// Recurrent bias `[G*H]` (ONNX `Rb`, PyTorch `bias_hh`). Kept apart
    /// from `wb` because the GRU reset-after form scales it by `r`.
    pub rb: Vec<f32>,
    /// LSTM peepholes `[3*H]` in the order `i, f, o`, or `None`.
    pub peepholes: Option<Vec<f32>>,
    /// LSTM projection `[Hout, H]` (PyTorch `weight_hr`), present iff
    /// `proj_size > 0`.
    pub proj: Option<Vec<f32>>,
}

/// How the fast kernels store the weight matrices (`W`, `R`, the
/// projection) once packed; compute, biases, peepholes and states stay f32.
///
/// The 16-bit formats halve the bytes a step reads, which is what bounds a
/// batch-1 step once the weights leave L2 (large H). They change the model:
/// [`crate::Rnn::with_weight_format`] rounds the matrices to the format
/// (nearest, ties to even) and every kernel, the reference included, then
/// computes with the rounded values. Rounding error per weight: bf16
/// 2^-9 relative (8 significant bits), f16 2^-12 relative (11 bits, normal
/// range; magnitudes below 6.1e-5 lose precision, below 6e-8 become 0,
/// above 65504 become infinite).
///
/// [`WeightFormat::Int8`] quarters the bytes: each row of a matrix (one
/// gate's unit over its inputs; one output of the projection) is stored
/// as signed 8-bit integers `q` in `-127..=127` with one f32 scale `s`
/// per row, `w ≈ q * s` (symmetric, see [`quantize_row_int8`]). The
/// error per weight is at most `s / 2 = max|row| / 254`: relative to the
/// row's largest weight, not to the weight itself. Compute stays f32 (the
/// activations are not quantized); the kernels apply `s` once per output
/// after the row's product, the reference multiplies each weight.
///
/// Measured on the project's Zen 4 machine (README), batch 1: with
/// AVX-512 bf16 makes a step 1.5-1.9x faster and f16 1.0-1.4x; with AVX2
/// (H = 1024) 1.3-1.5x. Batches are no faster (AVX-512) or slower (AVX2):
/// keep f32 for them. int8: see the README's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightFormat {
    /// 32-bit floats, as given.
    #[default]
    F32,
    /// IEEE binary16 (widened with F16C / AVX-512F).
    F16,
    /// bfloat16, the high half of an f32 (widened by a 16-bit shift).
    Bf16,
    /// Signed 8-bit integers with one f32 scale per matrix row (weights
    /// only: states and arithmetic stay f32).
    Int8,
    /// `"int8-dynamic"`: the int8 weights of [`WeightFormat::Int8`], and
    /// the vectors `W` and `R` multiply (the layer input `x` and the
    /// previous `h`) quantized too, per vector and time step
    /// ([`quantize_activations`]), so the products are integer dot
    /// products (AVX-512 VNNI `vpdpbusd`, AVX2 `vpmaddubsw`), exact in
    /// i32 and scaled once per output: `(Σ q_w q_x) * (s_w * s_x)`. The
    /// reset-before GRU's `R_n (r ⊙ h)` and the LSTM projection keep f32
    /// activations (int8 weights widened, as [`WeightFormat::Int8`]).
    /// Faster than `Int8` where the step is bound by arithmetic rather
    /// than memory; the activations' rounding (at most `max|x| / 254` per
    /// element) adds error: see the README's int8 tables. Sizes a product
    /// reduces over (input size, `Hout`) are limited to
    /// [`INT8_DYNAMIC_MAX_K`] so that its sums fit in i32.
    Int8Dynamic,
}

/// The longest reduction [`WeightFormat::Int8Dynamic`] accepts (layer
/// input size, `Hout`): `255 * 127 * 65536 < 2^31`, so every integer sum
/// of a product (with the `+128` offset the VNNI kernels use) fits in i32.
pub const INT8_DYNAMIC_MAX_K: usize = 1 << 16;

impl WeightFormat {
    /// Every format.
    pub const ALL: &'static [WeightFormat] = &[
        WeightFormat::F32,
        WeightFormat::F16,
        WeightFormat::Bf16,
        WeightFormat::Int8,
        WeightFormat::Int8Dynamic,
    ];

    /// `"f32"`, `"f16"`, `"bf16"`, `"int8"` or `"int8-dynamic"` (as in
    /// kernel names and tool flags).
    pub fn name(self) -> &'static str {
        match self {
            WeightFormat::F32 => "f32",
            WeightFormat::F16 => "f16",
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Int8 => "int8",
            WeightFormat::Int8Dynamic => "int8-dynamic",
        }
    }

    /// The format of that name.
    ///
    /// # Errors
    /// [`Error::UnknownName`] for any other name (as
    /// [`crate::KernelFamily::from_name`] gives for a family).
    pub fn from_name(name: &str) -> Result<WeightFormat> {
        WeightFormat::ALL
            .iter()
            .copied()
            .find(|f| f.name() == name)
            .ok_or_else(|| Error::UnknownName {
                kind: "weight format",
                name: name.to_string(),
                known: WeightFormat::ALL.iter().map(|f| f.name()).collect(),
            })
    }

    /// Bytes per stored weight (int8: plus one f32 scale per row).
    pub fn bytes(self) -> usize {
        match self {
            WeightFormat::F32 => 4,
            WeightFormat::F16 | WeightFormat::Bf16 => 2,
            WeightFormat::Int8 | WeightFormat::Int8Dynamic => 1,
        }
    }

    /// [`WeightFormat::Int8`] or [`WeightFormat::Int8Dynamic`] (the
    /// weights stored the same way).
    pub fn is_int8(self) -> bool {
        matches!(self, WeightFormat::Int8 | WeightFormat::Int8Dynamic)
    }

    /// `x` rounded to the format and widened back to f32 (exactly what a
    /// kernel loads). [`WeightFormat::Int8`] needs the whole row for its
    /// scale, so a lone value is returned unchanged: use
    /// [`quantize_row_int8`] or [`DirectionWeights::rounded`].
    pub fn round(self, x: f32) -> f32 {
        match self {
            WeightFormat::F32 | WeightFormat::Int8 | WeightFormat::Int8Dynamic => x,
            WeightFormat::F16 => half::f16::from_f32(x).to_f32(),
            WeightFormat::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }
}

/// Rows whose largest magnitude is below this are stored as zeros (scale
/// 0): a scale that small would be subnormal and lose the exactness below.
pub(crate) const INT8_TINY: f32 = 1e-30;

/// Quantizes one matrix row to int8: writes `q[i] = round(row[i] / s)` in
/// `-127..=127` and returns the scale `s`, so that `q[i] * s` (computed in
/// f32, exact) is the stored weight.
///
/// `s` is `max|row| / 127` rounded up to 16 significant bits, so `127 * s`
/// and every `q * s` are exact f32 products and quantizing the stored
/// weights again gives the same `q` and `s` (idempotent: a model rounded
/// to int8 and packed again is unchanged). Error per weight: at most
/// `s / 2`. A row of zeros, or whose largest magnitude is below 1e-30,
/// gets `s = 0` and zeros; a row holding an infinity or NaN gets
/// `s = NaN` (so its outputs are NaN, as an f32 model's would be, or
/// nearly: an infinite weight times a zero input is NaN here).
///
/// # Panics
/// Never; `q` shorter than `row` leaves the rest of `row` unquantized and
/// a longer `q` keeps its tail (callers pass equal lengths).
pub fn quantize_row_int8(row: &[f32], q: &mut [i8]) -> f32 {
    let max = row.iter().fold(0.0f32, |m, &x| {
        if x.is_nan() || m.is_nan() {
            f32::NAN
        } else {
            m.max(x.abs())
        }
    });
    let scale = if !max.is_finite() {
        f32::NAN
    } else if max < INT8_TINY {
        0.0
    } else {
        // Keep 16 significant bits (clear the low 8 of 23 fraction bits),
        // rounding up so that |x| / s <= 127; down if 127 * s would
        // overflow.
        let raw = (max / 127.0).to_bits();
        let up = f32::from_bits((raw + 0xff) & !0xff);
        if (127.0 * up).is_finite() {
            up
        } else {
            f32::from_bits(raw & !0xff)
        }
    };
    for (o, &x) in q.iter_mut().zip(row) {
        *o = if scale.is_finite() && scale > 0.0 {
            // `as` saturates; the clamp keeps -128 out.
            (x / scale).round_ties_even().clamp(-127.0, 127.0) as i8
        } else {
            0
        };
    }
    scale
}

/// 1.5 * 2^23: adding it to a float of magnitude below 2^22 and
/// subtracting it again rounds to an integer, ties to even, in two IEEE
/// operations that are exact in their order (the same on every ISA);
/// unlike `round_ties_even` it vectorizes without SSE4.1. Between the two,
/// the sum lies in `[2^23, 2^24)`, where the low 8 bits of its pattern are
/// the integer's low 8 bits (the vector quantizer stores those).
pub(crate) const ROUND: f32 = 12_582_912.0;

/// Quantizes one activation vector for [`WeightFormat::Int8Dynamic`]:
/// writes `q[i] = round(v[i] / s)` (ties to even, in `-127..=127`, computed
/// as `v[i] * (127 / max)`) and returns `s = max / 127`, where `max` is the
/// largest `|v[i]|` (symmetric, one scale per vector and step, so the
/// error per element is at most `s / 2 = max / 254`). The reference calls
/// this function; the kernel families run the same IEEE operations on
/// their vectors (bit for bit the same bytes and scale, tested per family),
/// so every family quantizes a vector identically and their integer sums
/// agree exactly. A vector of zeros
/// (or whose largest magnitude is below 1e-30) gets `s = 0` and zeros; one
/// holding a NaN or an infinity gets `s = NaN`, so the products it feeds
/// are NaN.
///
/// # Panics
/// Never; a `q` shorter than `v` quantizes only its length, a longer one
/// keeps its tail (callers pass equal lengths).
#[inline(always)]
pub fn quantize_activations(v: &[f32], q: &mut [i8]) -> f32 {
    // Sixteen running maxima (a form the compiler vectorizes; the maximum
    // is exact whatever the order), and whether any value is a NaN or an
    // infinity.
    let mut lanes = [0.0f32; 16];
    let mut bad_lanes = [false; 16];
    let chunks = v.chunks_exact(16);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..16 {
            let a = c[i].abs();
            lanes[i] = if a > lanes[i] { a } else { lanes[i] };
            bad_lanes[i] |= !a.is_finite();
        }
    }
    for (i, &x) in tail.iter().enumerate() {
        let a = x.abs();
        lanes[i] = if a > lanes[i] { a } else { lanes[i] };
        bad_lanes[i] |= !a.is_finite();
    }
    let max = lanes.iter().fold(0.0f32, |m, &a| if a > m { a } else { m });
    let bad = bad_lanes.iter().any(|&b| b);
    if bad || max < INT8_TINY {
        q.iter_mut().take(v.len()).for_each(|o| *o = 0);
        return if bad { f32::NAN } else { 0.0 };
    }
    let inv = 127.0 / max;
    for (o, &x) in q.iter_mut().zip(v) {
        // |x * inv| <= 127 (x finite, |x| <= max); the clamp keeps -128
        // out should the product round above 127.
        let y = ((x * inv).clamp(-127.0, 127.0) + ROUND) - ROUND;
        *o = y as i8;
    }
    max / 127.0
}

/// `v` (rows of `cols` values) with each row quantized to int8 and
/// widened back (`q * s`).
fn int8_rows(v: &[f32], cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(v.len());
    let mut q = vec![0i8; cols];
    for row in v.chunks(cols.max(1)) {
        let s = quantize_row_int8(row, &mut q);
        out.extend(q.iter().take(row.len()).map(|&qi| f32::from(qi) * s));
    }
    out
}

fn check(what: &str, v: &[f32], dims: &[usize]) -> Result<()> {
    // Bounded by `Config::validate`, which runs first; checked all the same.
    let expected = crate::error::product(what, dims)?;
    if v.len() != expected {
        return Err(Error::Shape {
            what: what.to_string(),
            expected: dims.to_vec(),
            got: vec![v.len()],
        });
    }
    Ok(())
}

impl DirectionWeights {
    /// These weights with the matrices (`w`, `r`, `proj`) rounded to
    /// `format`; biases and peepholes unchanged. For
    /// [`WeightFormat::Int8`] each row (`G*H` rows of `w` and `r`, `Hout`
    /// rows of `proj`, their lengths taken from the bias length: validate
    /// first) is quantized with [`quantize_row_int8`] and widened back.
    pub fn rounded(&self, format: WeightFormat) -> DirectionWeights {
        let r = |v: &Vec<f32>| v.iter().map(|&x| format.round(x)).collect::<Vec<f32>>();
        let (w, rr, proj) = if format.is_int8() {
            let gh = self.wb.len().max(1);
            let hout = self.r.len() / gh;
            (
                int8_rows(&self.w, self.w.len() / gh),
                int8_rows(&self.r, hout),
                self.proj
                    .as_ref()
                    .map(|p| int8_rows(p, p.len() / hout.max(1))),
            )
        } else {
            (r(&self.w), r(&self.r), self.proj.as_ref().map(r))
        };
        DirectionWeights {
            w,
            r: rr,
            wb: self.wb.clone(),
            rb: self.rb.clone(),
            peepholes: self.peepholes.clone(),
            proj,
        }
    }

    /// Checks every shape against the configuration for layer `layer`
    /// (the configuration itself is checked first).
    ///
    /// # Errors
    /// [`Error::Shape`] for a tensor of the wrong size,
    /// [`Error::MissingTensor`] / [`Error::Unsupported`] for a projection
    /// or peepholes that do not match the configuration.
    pub fn validate(&self, cfg: &Config, layer: usize) -> Result<()> {
        cfg.validate()?;
        let g = cfg.cell.gates();
        let h = cfg.hidden_size;
        let hout = cfg.output_size();
        let inp = cfg.layer_input_size(layer);
        check("W", &self.w, &[g * h, inp])?;
        check("R", &self.r, &[g * h, hout])?;
        check("input bias", &self.wb, &[g * h])?;
        check("recurrent bias", &self.rb, &[g * h])?;
        if let Some(p) = &self.peepholes {
            if cfg.cell != Cell::Lstm {
                return Err(Error::Unsupported("peepholes on a GRU".into()));
            }
            check("peepholes", p, &[3 * h])?;
        }
        match (&self.proj, cfg.proj_size) {
            (None, 0) => {}
            (Some(p), ps) if ps > 0 => check("projection", p, &[hout, h])?,
            (Some(_), _) => {
                return Err(Error::Unsupported(
                    "projection weights without proj_size".into(),
                ))
            }
            (None, _) => return Err(Error::MissingTensor("projection weights".into())),
        }
        Ok(())
    }
}

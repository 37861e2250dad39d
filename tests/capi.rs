//! The C API (`fusedrnn::capi`, feature `capi`): the committed header is
//! what cbindgen makes of `src/capi.rs` now (fails if stale), and the
//! functions, called as C would, give the Rust API's numbers and a typed
//! status for every null pointer, wrong length and stale handle.

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::ptr::{null, null_mut};

use fusedrnn::capi::*;
use fusedrnn::import::pytorch::{self, PytorchOptions};
use fusedrnn::import::safetensors::TensorFile;
use fusedrnn::{Cell, Sequence, Workspace};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_committed_header_is_current() {
    let dir = root();
    let config = cbindgen::Config::from_file(dir.join("examples/c/cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_src(dir.join("src/capi.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen parses src/capi.rs")
        .write(&mut fresh);
    let committed = std::fs::read(dir.join("examples/c/fusedrnn.h")).unwrap_or_default();
    assert!(
        fresh == committed,
        "examples/c/fusedrnn.h is stale: run `cbindgen --config examples/c/cbindgen.toml --output examples/c/fusedrnn.h src/capi.rs`"
    );
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn last_error() -> String {
    // SAFETY: never null, NUL-terminated, valid until the next call.
    unsafe { CStr::from_ptr(fusedrnn_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn lstm_path() -> CString {
    let p: &Path = &root().join("tests/data/digits/digits-lstm.safetensors");
    cstr(p.to_str().unwrap())
}

#[test]
fn a_run_and_a_step_through_the_c_api_equal_the_rust_api() {
    let path = lstm_path();
    let mut model = null_mut();
    // SAFETY: in this test every pointer is a live local or a handle made
    // here, every length the buffer's own.
    unsafe {
        assert_eq!(
            fusedrnn_model_load_pytorch(
                path.as_ptr(),
                cstr("rnn.").as_ptr(),
                0,
                null(),
                &mut model
            ),
            FrStatus::FrOk
        );
        assert_eq!(last_error(), "");
        let mut info = FrModelInfo::default();
        assert_eq!(fusedrnn_model_info(model, &mut info), FrStatus::FrOk);
        assert_eq!((info.cell, info.num_layers, info.hidden_size), (1, 2, 64));
        let (t, b, i) = (8usize, 3usize, info.input_size);
        let x: Vec<f32> = (0..t * b * i)
            .map(|k| ((k * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let mut state = null_mut();
        assert_eq!(fusedrnn_state_new(model, b, &mut state), FrStatus::FrOk);
        let mut ws = null_mut();
        assert_eq!(fusedrnn_workspace_new(&mut ws), FrStatus::FrOk);
        let mut out = vec![0.0f32; t * b * info.output_features];
        let lengths = [8usize, 5, 0];
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                t,
                b,
                0,
                lengths.as_ptr(),
                state,
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrOk
        );
        // The same through the Rust API.
        let file =
            TensorFile::open(root().join("tests/data/digits/digits-lstm.safetensors")).unwrap();
        let rust = pytorch::from_state_dict(
            &file,
            &PytorchOptions {
                cell: Cell::Lstm,
                prefix: "rnn.".into(),
            },
        )
        .unwrap();
        let mut st = rust.new_state(b).unwrap();
        let mut want = vec![0.0f32; out.len()];
        let seq = Sequence {
            lengths: Some(&lengths),
            ..Sequence::new(&x, t, b)
        };
        rust.run(&seq, &mut st, &mut want, &mut Workspace::new())
            .unwrap();
        assert_eq!(out, want);
        let (mut hp, mut hl) = (null_mut(), 0usize);
        assert_eq!(
            fusedrnn_state_values(state, 0, &mut hp, &mut hl),
            FrStatus::FrOk
        );
        assert_eq!(std::slice::from_raw_parts(hp, hl), st.h());

        // A streaming step and the stream pool give the step's numbers.
        let mut one = null_mut();
        assert_eq!(fusedrnn_state_new(model, 1, &mut one), FrStatus::FrOk);
        let mut h1 = vec![0.0f32; info.output_size];
        assert_eq!(
            fusedrnn_step(model, x.as_ptr(), i, one, h1.as_mut_ptr(), h1.len(), ws),
            FrStatus::FrOk
        );
        let mut pool = null_mut();
        assert_eq!(fusedrnn_streams_new(model, 4, &mut pool), FrStatus::FrOk);
        let mut ids = [FrStreamId {
            pool: 0,
            slot: 0,
            generation: 0,
        }; 2];
        for id in ids.iter_mut() {
            assert_eq!(fusedrnn_streams_join(pool, id), FrStatus::FrOk);
        }
        let frames: Vec<f32> = x[..i].iter().chain(&x[..i]).copied().collect();
        let mut y = vec![0.0f32; 2 * info.output_size];
        assert_eq!(
            fusedrnn_streams_step(
                pool,
                model,
                ids.as_ptr(),
                2,
                frames.as_ptr(),
                frames.len(),
                y.as_mut_ptr(),
                y.len()
            ),
            FrStatus::FrOk
        );
        assert_eq!(&y[..info.output_size], &h1[..]);
        assert_eq!(&y[info.output_size..], &h1[..]);
        // A stream that left is a stale id; so is one made up.
        assert_eq!(fusedrnn_streams_leave(pool, ids[1]), FrStatus::FrOk);
        assert_eq!(
            fusedrnn_streams_step(
                pool,
                model,
                ids.as_ptr(),
                2,
                frames.as_ptr(),
                frames.len(),
                y.as_mut_ptr(),
                y.len()
            ),
            FrStatus::FrInvalidStream
        );
        assert!(last_error().contains("stream id 1"), "{}", last_error());
        let fake = FrStreamId {
            pool: 12345,
            slot: 99,
            generation: 7,
        };
        assert_eq!(
            fusedrnn_streams_leave(pool, fake),
            FrStatus::FrInvalidStream
        );

        let mut name = [0 as std::ffi::c_char; 64];
        assert_eq!(
            fusedrnn_model_kernel_name(model, name.as_mut_ptr(), name.len()),
            FrStatus::FrOk
        );
        assert_eq!(
            CStr::from_ptr(name.as_ptr()).to_str().unwrap(),
            rust.kernel_name()
        );
        assert_eq!(
            fusedrnn_model_kernel_name(model, name.as_mut_ptr(), 3),
            FrStatus::FrInvalidArgument
        );

        fusedrnn_streams_free(pool);
        fusedrnn_state_free(one);
        fusedrnn_state_free(state);
        fusedrnn_workspace_free(ws);
        fusedrnn_model_free(model);
    }
}

#[test]
fn an_onnx_file_loads_through_the_c_api() {
    let dir = root().join("tests/data/golden");
    let path = cstr(
        dir.join("onnx-lstm-fwd-init-peephole-h8-i5-b2-t7.onnx")
            .to_str()
            .unwrap(),
    );
    let mut model = null_mut();
    // SAFETY: in this test every pointer is a live local or a handle made
    // here.
    unsafe {
        assert_eq!(
            fusedrnn_model_load_onnx(path.as_ptr(), cstr("bf16").as_ptr(), &mut model),
            FrStatus::FrOk
        );
        let mut info = FrModelInfo::default();
        assert_eq!(fusedrnn_model_info(model, &mut info), FrStatus::FrOk);
        assert_eq!((info.cell, info.hidden_size, info.input_size), (1, 8, 5));
        fusedrnn_model_free(model);
        let mut other = null_mut();
        assert_eq!(
            fusedrnn_model_load_onnx(lstm_path().as_ptr(), null(), &mut other),
            FrStatus::FrBadFile
        );
        assert_eq!(
            fusedrnn_model_load_onnx(null(), null(), &mut other),
            FrStatus::FrNullPointer
        );
        assert!(other.is_null());
    }
}

#[test]
fn nulls_wrong_lengths_and_bad_files_are_statuses() {
    let path = lstm_path();
    // SAFETY: in this test pointers are null on purpose or live locals with
    // the lengths given; the library must check, not dereference, nulls.
    unsafe {
        let mut model = null_mut();
        assert_eq!(
            fusedrnn_model_load_pytorch(null(), null(), 0, null(), &mut model),
            FrStatus::FrNullPointer
        );
        assert!(last_error().contains("path"));
        assert_eq!(
            fusedrnn_model_load_pytorch(path.as_ptr(), null(), 0, null(), null_mut()),
            FrStatus::FrNullPointer
        );
        assert_eq!(
            fusedrnn_model_load_pytorch(
                cstr("/nonexistent.safetensors").as_ptr(),
                null(),
                0,
                null(),
                &mut model
            ),
            FrStatus::FrBadFile
        );
        // No `weight_ih_l0` without the prefix: a missing tensor, and a
        // failed call leaves `*out` null whatever it held before.
        model = std::ptr::NonNull::dangling().as_ptr();
        assert_eq!(
            fusedrnn_model_load_pytorch(path.as_ptr(), null(), 1, null(), &mut model),
            FrStatus::FrMissingTensor
        );
        assert!(model.is_null());
        assert_eq!(
            fusedrnn_model_load_pytorch(
                path.as_ptr(),
                cstr("rnn.").as_ptr(),
                7,
                null(),
                &mut model
            ),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_model_load_pytorch(
                path.as_ptr(),
                cstr("rnn.").as_ptr(),
                0,
                cstr("int4").as_ptr(),
                &mut model
            ),
            FrStatus::FrInvalidArgument
        );
        assert!(model.is_null(), "no model is handed out on failure");
        assert_eq!(
            fusedrnn_model_load_pytorch(
                path.as_ptr(),
                cstr("rnn.").as_ptr(),
                0,
                cstr("int8").as_ptr(),
                &mut model
            ),
            FrStatus::FrOk
        );
        let mut info = FrModelInfo::default();
        assert_eq!(
            fusedrnn_model_info(null(), &mut info),
            FrStatus::FrNullPointer
        );
        assert_eq!(
            fusedrnn_model_info(model, null_mut()),
            FrStatus::FrNullPointer
        );
        assert_eq!(fusedrnn_model_info(model, &mut info), FrStatus::FrOk);
        let mut state = null_mut();
        assert_eq!(fusedrnn_state_new(model, 1, &mut state), FrStatus::FrOk);
        let mut ws = null_mut();
        assert_eq!(fusedrnn_workspace_new(&mut ws), FrStatus::FrOk);
        let x = vec![0.5f32; 4 * info.input_size];
        let mut out = vec![0.0f32; 4 * info.output_features];
        // Null arrays with lengths, short buffers, the wrong batch.
        assert_eq!(
            fusedrnn_run(
                model,
                null(),
                x.len(),
                4,
                1,
                0,
                null(),
                state,
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrNullPointer
        );
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                4,
                1,
                0,
                null(),
                state,
                null_mut(),
                out.len(),
                ws
            ),
            FrStatus::FrNullPointer
        );
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                4,
                1,
                0,
                null(),
                null_mut(),
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrNullPointer
        );
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                4,
                1,
                0,
                null(),
                state,
                out.as_mut_ptr(),
                out.len(),
                null_mut()
            ),
            FrStatus::FrNullPointer
        );
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len() - 1,
                4,
                1,
                0,
                null(),
                state,
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                4,
                1,
                0,
                null(),
                state,
                out.as_mut_ptr(),
                out.len() - 1,
                ws
            ),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                2,
                2,
                0,
                null(),
                state,
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrInvalidArgument
        );
        let long = [5usize];
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                4,
                1,
                0,
                long.as_ptr(),
                state,
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrInvalidArgument
        );
        assert!(!last_error().is_empty());
        assert_eq!(
            fusedrnn_run(
                model,
                x.as_ptr(),
                x.len(),
                4,
                1,
                1,
                null(),
                state,
                out.as_mut_ptr(),
                out.len(),
                ws
            ),
            FrStatus::FrOk
        );
        assert_eq!(last_error(), "", "a success clears the message");
        let (mut p, mut l) = (null_mut(), 0usize);
        assert_eq!(
            fusedrnn_state_values(state, 2, &mut p, &mut l),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_state_values(state, 1, null_mut(), &mut l),
            FrStatus::FrNullPointer
        );
        assert_eq!(fusedrnn_state_reset(null_mut()), FrStatus::FrNullPointer);
        let mut pool = null_mut();
        assert_eq!(fusedrnn_streams_new(model, 1, &mut pool), FrStatus::FrOk);
        let mut id = FrStreamId {
            pool: 0,
            slot: 0,
            generation: 0,
        };
        assert_eq!(fusedrnn_streams_join(pool, &mut id), FrStatus::FrOk);
        assert_eq!(
            fusedrnn_streams_join(pool, &mut id),
            FrStatus::FrInvalidStream,
            "full"
        );
        assert_eq!(
            fusedrnn_streams_step(
                pool,
                model,
                null(),
                1,
                x.as_ptr(),
                info.input_size,
                out.as_mut_ptr(),
                info.output_size
            ),
            FrStatus::FrNullPointer
        );

        // Files: missing tensors, short buffers, small dims arrays.
        let mut file = null_mut();
        assert_eq!(fusedrnn_file_open(path.as_ptr(), &mut file), FrStatus::FrOk);
        let mut dims = [0usize; 1];
        let mut nd = 0usize;
        assert_eq!(
            fusedrnn_file_shape(
                file,
                cstr("fc.bias").as_ptr(),
                dims.as_mut_ptr(),
                1,
                &mut nd
            ),
            FrStatus::FrOk
        );
        assert_eq!(nd, 1);
        assert_eq!(
            fusedrnn_file_shape(
                file,
                cstr("fc.weight").as_ptr(),
                dims.as_mut_ptr(),
                1,
                &mut nd
            ),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_file_shape(file, cstr("nope").as_ptr(), dims.as_mut_ptr(), 1, &mut nd),
            FrStatus::FrMissingTensor
        );
        let mut bias = vec![0.0f32; dims[0]];
        assert_eq!(
            fusedrnn_file_f32(
                file,
                cstr("fc.bias").as_ptr(),
                bias.as_mut_ptr(),
                bias.len() - 1
            ),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_file_f32(
                file,
                cstr("fc.bias").as_ptr(),
                bias.as_mut_ptr(),
                bias.len()
            ),
            FrStatus::FrOk
        );
        let mut ints = [0i64; 1];
        assert_eq!(
            fusedrnn_file_i64(file, cstr("fc.bias").as_ptr(), ints.as_mut_ptr(), 1),
            FrStatus::FrInvalidArgument
        );
        assert_eq!(
            fusedrnn_file_f32(
                null(),
                cstr("fc.bias").as_ptr(),
                bias.as_mut_ptr(),
                bias.len()
            ),
            FrStatus::FrNullPointer
        );
        // Frees accept null.
        fusedrnn_file_free(null_mut());
        fusedrnn_model_free(null_mut());
        fusedrnn_state_free(null_mut());
        fusedrnn_workspace_free(null_mut());
        fusedrnn_streams_free(null_mut());
        fusedrnn_file_free(file);
        fusedrnn_streams_free(pool);
        fusedrnn_state_free(state);
        fusedrnn_workspace_free(ws);
        fusedrnn_model_free(model);
    }
}

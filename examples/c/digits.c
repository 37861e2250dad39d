/*
 * The digits classifiers through the C API: loads each model of
 * tests/data/digits (PyTorch state_dicts in safetensors) with
 * fusedrnn_model_load_pytorch, runs every test sample at batch 1 with
 * fusedrnn_run, applies the linear head in C and prints the same line as
 * the Rust example (`cargo run --release --example digits`):
 *
 *   <model>: accuracy A% on N test samples; predictions identical to PyTorch: K/N; max logit difference D
 *
 * Build and run (what .ci/run does):
 *   cargo rustc --release --lib --features capi --crate-type staticlib
 *   cc -O2 -Wall -Wextra -Iexamples/c examples/c/digits.c target/release/libfusedrnn.a -lpthread -ldl -lm -o target/c-digits
 *   target/c-digits [DIR]
 *
 * Exit status: 0 if every prediction equals PyTorch's and D <= 1e-4
 * (as the Rust example), 1 if not, 2 on an error.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fusedrnn.h"

#define CHECK(call)                                                              \
    do {                                                                         \
        FrStatus st_ = (call);                                                   \
        if (st_ != FR_OK) {                                                       \
            fprintf(stderr, "digits.c: %s: status %d: %s\n", #call, (int)st_,    \
                    fusedrnn_last_error());                                      \
            exit(2);                                                             \
        }                                                                        \
    } while (0)

/* A float tensor of a file, allocated; its element count in *n. */
static float *read_f32(const FrFile *f, const char *name, size_t *n, size_t *dims, size_t *ndim) {
    size_t d[8];
    size_t nd = 0, count = 1;
    CHECK(fusedrnn_file_shape(f, name, d, 8, &nd));
    for (size_t i = 0; i < nd; i++) count *= d[i];
    float *v = malloc(count * sizeof(float) + 1);
    if (!v) { fprintf(stderr, "digits.c: out of memory\n"); exit(2); }
    CHECK(fusedrnn_file_f32(f, name, v, count));
    if (dims) memcpy(dims, d, nd * sizeof(size_t));
    if (ndim) *ndim = nd;
    *n = count;
    return v;
}

static int64_t *read_i64(const FrFile *f, const char *name, size_t *n) {
    size_t d[8];
    size_t nd = 0, count = 1;
    CHECK(fusedrnn_file_shape(f, name, d, 8, &nd));
    for (size_t i = 0; i < nd; i++) count *= d[i];
    int64_t *v = malloc(count * sizeof(int64_t) + 1);
    if (!v) { fprintf(stderr, "digits.c: out of memory\n"); exit(2); }
    CHECK(fusedrnn_file_i64(f, name, v, count));
    *n = count;
    return v;
}

/* Rust's `{:.2e}`: "2.86e-6", "1.00e0" (no exponent padding or '+'). */
static void rust_e2(double v, char *out, size_t len) {
    if (isinf(v)) { snprintf(out, len, "inf"); return; }
    char buf[32];
    snprintf(buf, sizeof buf, "%.2e", v);
    char *e = strchr(buf, 'e');
    if (!e) { snprintf(out, len, "%s", buf); return; }
    *e = '\0';
    snprintf(out, len, "%se%d", buf, atoi(e + 1));
}

static size_t argmax(const float *v, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "tests/data/digits";
    char path[4096];
    snprintf(path, sizeof path, "%s/test.safetensors", dir);
    FrFile *test = NULL;
    CHECK(fusedrnn_file_open(path, &test));
    size_t xd[8];
    size_t xn, xnd, ln;
    float *x = read_f32(test, "x", &xn, xd, &xnd);
    int64_t *labels = read_i64(test, "label", &ln);
    if (xnd != 3 || xd[0] != ln) { fprintf(stderr, "digits.c: x is not [N, T, I]\n"); return 2; }
    size_t samples = xd[0], seq_len = xd[1], sample_len = xd[1] * xd[2];

    /* The model files: every *.safetensors but test.safetensors, sorted. */
    DIR *d = opendir(dir);
    if (!d) { fprintf(stderr, "digits.c: cannot open %s\n", dir); return 2; }
    char *names[64];
    size_t nmodels = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && nmodels < 64) {
        size_t l = strlen(ent->d_name);
        const char *ext = ".safetensors";
        size_t el = strlen(ext);
        if (l > el && strcmp(ent->d_name + l - el, ext) == 0 && strcmp(ent->d_name, "test.safetensors") != 0) {
            names[nmodels] = malloc(l - el + 1);
            memcpy(names[nmodels], ent->d_name, l - el);
            names[nmodels][l - el] = '\0';
            nmodels++;
        }
    }
    closedir(d);
    qsort(names, nmodels, sizeof names[0], cmp_str);
    if (nmodels == 0) { fprintf(stderr, "digits.c: no model files in %s\n", dir); return 2; }

    int all_ok = 1;
    FrWorkspace *ws = NULL;
    CHECK(fusedrnn_workspace_new(&ws));
    for (size_t mi = 0; mi < nmodels; mi++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, names[mi]);
        FrModel *model = NULL;
        CHECK(fusedrnn_model_load_pytorch(path, "rnn.", 0, NULL, &model));
        FrModelInfo info;
        CHECK(fusedrnn_model_info(model, &info));
        FrFile *mf = NULL;
        CHECK(fusedrnn_file_open(path, &mf));
        size_t wn, bn, en, pn;
        float *fc_w = read_f32(mf, "fc.weight", &wn, NULL, NULL);
        float *fc_b = read_f32(mf, "fc.bias", &bn, NULL, NULL);
        size_t classes = bn, feats = info.output_features;
        if (wn != classes * feats) { fprintf(stderr, "digits.c: fc.weight does not fit\n"); return 2; }
        char name[256];
        snprintf(name, sizeof name, "%s.logits", names[mi]);
        float *want = read_f32(test, name, &en, NULL, NULL);
        snprintf(name, sizeof name, "%s.pred", names[mi]);
        int64_t *pred = read_i64(test, name, &pn);
        if (en != samples * classes || pn != samples) { fprintf(stderr, "digits.c: PyTorch outputs do not fit\n"); return 2; }

        FrState *state = NULL;
        CHECK(fusedrnn_state_new(model, 1, &state));
        size_t out_len = seq_len * feats;
        float *out = malloc(out_len * sizeof(float));
        float *logits = malloc(classes * sizeof(float));
        size_t correct = 0, identical = 0;
        double max_diff = 0.0;
        for (size_t k = 0; k < samples; k++) {
            CHECK(fusedrnn_state_reset(state));
            CHECK(fusedrnn_run(model, x + k * sample_len, sample_len, seq_len, 1, 0, NULL, state, out, out_len, ws));
            float *h;
            size_t hl;
            CHECK(fusedrnn_state_values(state, 0, &h, &hl));
            /* h is [L*D, 1, Hout]: the last layer's directions are the last D*Hout values. */
            const float *f = h + hl - feats;
            for (size_t c = 0; c < classes; c++) {
                double dot = 0.0;
                for (size_t j = 0; j < feats; j++) dot += (double)fc_w[c * feats + j] * (double)f[j];
                logits[c] = (float)((double)fc_b[c] + dot);
                double diff = fabs((double)logits[c] - (double)want[k * classes + c]);
                if (isnan(diff)) diff = INFINITY;
                if (diff > max_diff) max_diff = diff;
            }
            int64_t p = (int64_t)argmax(logits, classes);
            correct += p == labels[k];
            identical += p == pred[k];
        }
        char dbuf[128];
        rust_e2((double)(float)max_diff, dbuf, sizeof dbuf);
        printf("%s: accuracy %.2f%% on %zu test samples; predictions identical to PyTorch: %zu/%zu; max logit difference %s\n",
               names[mi], 100.0 * (double)correct / (double)samples, samples, identical, samples, dbuf);
        char kname[128];
        CHECK(fusedrnn_model_kernel_name(model, kname, sizeof kname));
        printf("  (C API, kernel %s)\n", kname);
        all_ok &= identical == samples && max_diff <= 1e-4;
        free(out); free(logits); free(fc_w); free(fc_b); free(want); free(pred); free(names[mi]);
        fusedrnn_state_free(state);
        fusedrnn_file_free(mf);
        fusedrnn_model_free(model);
    }
    fusedrnn_workspace_free(ws);
    fusedrnn_file_free(test);
    free(x); free(labels);
    return all_ok ? 0 : 1;
}

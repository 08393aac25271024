// GGUF reader and writer: every value type, nested arrays and tensors of a crafted file read
// back exactly; the writer round-trips through the reader (copied metadata, every setter,
// alignment, padding, its own errors); the shared models read with their known facts.
#define _DEFAULT_SOURCE // mkdtemp
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf/gguf.h"
#include "engine/llamalite.h"
#include "tests/gguf_badfiles.h"
#include "tests/scratch_dir.h"
#include "tests/test_util.h"

static char dir[1024];

static void tmp_path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) { fprintf(stderr, "cannot write %s\n", path); exit(1); }
    fclose(f);
}

static gguf_file *open_ok(const char *path) {
    char err[512] = "";
    gguf_file *f = gguf_open(path, err, sizeof err);
    CHECK(f != NULL, "open %s: %s", path, err);
    return f;
}

static bool str_is(gguf_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

// ---- the crafted file: every value type as written by gb_good -----------------------------

static void check_good_values(const gguf_file *f, uint32_t version) {
    CHECK(gguf_version(f) == version, "version %u", gguf_version(f));
    CHECK(gguf_alignment(f) == 32, "alignment %zu", gguf_alignment(f));
    CHECK(gguf_n_kv(f) == GB_GOOD_N_KV, "n_kv %lld", (long long)gguf_n_kv(f));
    int64_t i = gguf_find_key(f, "t.u8");
    CHECK(i >= 0 && gguf_kv_type(f, i) == GGUF_TYPE_UINT8 && !strcmp(gguf_key(f, i), "t.u8"), "u8 key");
    CHECK(gguf_get_u32(f, "t.u8", 0) == 200, "u8");
    CHECK(gguf_get_i32(f, "t.i8", 0) == -100, "i8");
    CHECK(gguf_get_u32(f, "t.i8", 7) == 7, "negative i8 as u32 gives the default");
    CHECK(gguf_get_u32(f, "t.u16", 0) == 60000, "u16");
    CHECK(gguf_get_i32(f, "t.i16", 0) == -30000, "i16");
    CHECK(gguf_get_u32(f, "t.u32", 0) == 4000000000u, "u32");
    CHECK(gguf_get_i32(f, "t.u32", 7) == 7, "u32 beyond int32 gives the default");
    CHECK(gguf_get_u64(f, "t.u32", 0) == 4000000000u, "u32 as u64");
    CHECK(gguf_get_i32(f, "t.i32", 0) == -2000000000, "i32");
    CHECK(gguf_get_f32(f, "t.f32", 0) == 0.25f, "f32");
    CHECK(gguf_get_f32(f, "t.u16", 0) == 60000.0f, "integer as f32");
    CHECK(gguf_get_bool(f, "t.bool", false) == true, "bool");
    CHECK(gguf_get_bool(f, "t.bool0", true) == false, "bool false");
    CHECK(!strcmp(gguf_get_str(f, "t.str", ""), GB_GOOD_STR), "str '%s'", gguf_get_str(f, "t.str", ""));
    CHECK(str_is(gguf_kv_string(f, gguf_find_key(f, "t.str")), GB_GOOD_STR), "kv_string");
    CHECK(gguf_get_u64(f, "t.u64", 0) == 0xFFFFFFFFFFFFFFF0ull, "u64");
    CHECK(gguf_get_u32(f, "t.u64", 9) == 9, "u64 beyond u32 gives the default");
    CHECK(gguf_get_i32(f, "t.i64", 9) == 9, "i64 beyond int32 gives the default");
    CHECK(gguf_get_u64(f, "t.i64", 9) == 9, "negative i64 as u64 gives the default");
    CHECK(gguf_get_i32(f, "t.i32neg", 0) == -1 && gguf_get_u32(f, "t.i32neg", 5) == 5, "i32 -1");
    double x = 0;
    CHECK(gguf_kv_number(f, gguf_find_key(f, "t.i64"), &x) && x == -5000000000.0, "i64 number %g", x);
    CHECK(gguf_kv_number(f, gguf_find_key(f, "t.f64"), &x) && x == -1.5e300, "f64 number %g", x);
    int64_t k64 = gguf_find_key(f, "t.i64");
    const void *raw = gguf_kv_data(f, k64);
    int64_t i64 = 0;
    if (raw) memcpy(&i64, raw, 8);
    CHECK(raw && i64 == -5000000000ll, "kv_data i64");
    CHECK(gguf_kv_data(f, gguf_find_key(f, "t.str")) == NULL, "kv_data of a string");
    CHECK(!gguf_kv_number(f, gguf_find_key(f, "t.str"), &x), "string is not a number");
    // wrong types and absent keys give the default
    CHECK(gguf_get_u32(f, "t.str", 3) == 3 && !strcmp(gguf_get_str(f, "t.u32", "d"), "d"), "type mismatch");
    CHECK(gguf_find_key(f, "absent") == -1 && gguf_get_u32(f, "absent", 11) == 11, "absent key");
    CHECK(gguf_get_f32(f, "t.str", 1.5f) == 1.5f, "string as float");

    int64_t a = gguf_find_key(f, "t.arr_u32");
    CHECK(gguf_kv_type(f, a) == GGUF_TYPE_ARRAY && gguf_arr_type(f, a) == GGUF_TYPE_UINT32 &&
          gguf_arr_n(f, a) == 3, "arr_u32 shape");
    uint32_t u[3] = {0};
    if (gguf_arr_data(f, a)) memcpy(u, gguf_arr_data(f, a), sizeof u); // unaligned in the map
    CHECK(u[0] == 1 && u[1] == 2 && u[2] == 3, "arr_u32 data");
    CHECK(gguf_arr_number(f, a, 2) == 3, "arr_number");
    int64_t s = gguf_find_key(f, "t.arr_str");
    CHECK(gguf_arr_type(f, s) == GGUF_TYPE_STRING && gguf_arr_n(f, s) == 3, "arr_str shape");
    CHECK(str_is(gguf_arr_str(f, s, 0), "zero") && str_is(gguf_arr_str(f, s, 1), "") &&
          str_is(gguf_arr_str(f, s, 2), "two"), "arr_str elements");
    CHECK(gguf_arr_str(f, s, 3).len == 0, "arr_str out of range");
    CHECK(gguf_arr_data(f, s) == NULL, "no raw data for string arrays");
    int64_t e = gguf_find_key(f, "t.arr_empty");
    CHECK(gguf_arr_type(f, e) == GGUF_TYPE_FLOAT32 && gguf_arr_n(f, e) == 0, "empty array");
    int64_t i16 = gguf_find_key(f, "t.arr_i16");
    CHECK(gguf_arr_number(f, i16, 0) == -7 && gguf_arr_number(f, i16, 1) == 7, "arr_i16");
    int64_t n = gguf_find_key(f, "t.nested");
    CHECK(gguf_arr_type(f, n) == GGUF_TYPE_ARRAY && gguf_arr_n(f, n) == 3, "nested shape");
    CHECK(gguf_arr_data(f, n) == NULL && gguf_arr_str(f, n, 0).len == 0, "nested not exposed");
    CHECK(gguf_arr_n(f, gguf_find_key(f, "t.u8")) == 0 && gguf_arr_type(f, gguf_find_key(f, "t.u8")) == GGUF_TYPE_COUNT,
          "scalar is not an array");

    CHECK(gguf_n_tensors(f) == 2, "n_tensors");
    const gguf_tensor *ta = gguf_find_tensor(f, "a"), *tb = gguf_find_tensor(f, "b");
    CHECK(ta && ta == gguf_get_tensor(f, 0) && tb == gguf_get_tensor(f, 1), "find_tensor");
    CHECK(gguf_find_tensor(f, "c") == NULL && gguf_get_tensor(f, 2) == NULL, "absent tensor");
    if (ta) {
        CHECK(ta->type == GL_TYPE_F32 && ta->n_dims == 2 && ta->ne[0] == 4 && ta->ne[1] == 2 &&
              ta->ne[2] == 1 && ta->ne[3] == 1 && ta->size == 32 && ta->offset == 0, "tensor a info");
        const float *d = ta->data;
        CHECK(d[0] == 0 && d[7] == 7, "tensor a data");
        CHECK((uintptr_t)ta->data % 32 == 0, "tensor a aligned");
    }
    if (tb) {
        CHECK(tb->type == GL_TYPE_Q8_0 && tb->n_dims == 1 && tb->ne[0] == 32 && tb->size == 34 &&
              tb->offset == 32, "tensor b info");
        const uint8_t *d = tb->data;
        CHECK(d[0] == 0 && d[33] == 33, "tensor b data");
        CHECK(ta && (const uint8_t *)tb->data - (const uint8_t *)ta->data == 32, "data pointers into one map");
    }
}

static void crafted_file(void) {
    for (uint32_t version = 2; version <= 3; version++) {
        gbuf b = {0};
        gb_good(&b, version);
        char path[1100];
        snprintf(path, sizeof path, "%s/good-v%u.gguf", dir, version);
        write_file(path, b.p, b.n);
        gguf_file *f = open_ok(path);
        if (f) {
            CHECK(gguf_file_size(f) == b.n && !strcmp(gguf_path(f), path), "size/path");
            check_good_values(f, version);
            gguf_close(f);
        }
        gb_free(&b);
    }
}

// ---- writer ---------------------------------------------------------------------------------

// Copying every key and tensor of the crafted file gives a v3 file with the same content.
static void writer_copy(void) {
    char src[1100], dst[1100], err[512] = "";
    tmp_path(src, sizeof src, "good-v2.gguf");
    tmp_path(dst, sizeof dst, "copy.gguf");
    gguf_file *f = open_ok(src);
    if (!f) return;
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    gguf_writer_copy_kv(w, f, gguf_find_key(f, "t.u8")); // a second copy replaces the first
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
    }
    CHECK(gguf_writer_write(w, dst, err, sizeof err), "write copy: %s", err);
    gguf_writer_free(w);
    gguf_file *g = open_ok(dst);
    if (g) {
        check_good_values(g, 3); // same values, now version 3
        for (int64_t i = 0; i < gguf_n_kv(f); i++)
            CHECK(!strcmp(gguf_key(f, i), gguf_key(g, i)), "key order %lld", (long long)i);
        gguf_close(g);
    }
    gguf_close(f);
}

static void writer_setters(void) {
    char path[1100], err[512] = "";
    tmp_path(path, sizeof path, "setters.gguf");
    gguf_writer *w = gguf_writer_new();
    uint8_t u8 = 250; int8_t i8 = -5; uint16_t u16 = 65535; int16_t i16 = -32768;
    int64_t i64 = INT64_MIN; double f64 = 1.0 / 3.0;
    gguf_writer_set_scalar(w, "s.u8", GGUF_TYPE_UINT8, &u8);
    gguf_writer_set_scalar(w, "s.i8", GGUF_TYPE_INT8, &i8);
    gguf_writer_set_scalar(w, "s.u16", GGUF_TYPE_UINT16, &u16);
    gguf_writer_set_scalar(w, "s.i16", GGUF_TYPE_INT16, &i16);
    gguf_writer_set_scalar(w, "s.i64", GGUF_TYPE_INT64, &i64);
    gguf_writer_set_scalar(w, "s.f64", GGUF_TYPE_FLOAT64, &f64);
    gguf_writer_set_u32(w, "s.u32", 123456789u);
    gguf_writer_set_i32(w, "s.i32", -123456789);
    gguf_writer_set_u64(w, "s.u64", UINT64_MAX);
    gguf_writer_set_f32(w, "s.f32", -0.0078125f);
    gguf_writer_set_bool(w, "s.bool", true);
    gguf_writer_set_str(w, "s.str", "first");
    gguf_writer_set_str(w, "s.str", "replaced"); // same key: replaced, not added
    gguf_writer_set_str(w, "s.empty", "");
    const float fa[3] = {1.5f, -2.5f, 1e-30f};
    const int64_t ia[2] = {-1, INT64_MAX};
    const uint8_t ba[4] = {1, 0, 1, 1};
    const char *sa[4] = {"<unk>", "", "\xe2\x96\x81the", "a b"};
    gguf_writer_set_arr_data(w, "a.f32", GGUF_TYPE_FLOAT32, fa, 3);
    gguf_writer_set_arr_data(w, "a.i64", GGUF_TYPE_INT64, ia, 2);
    gguf_writer_set_arr_data(w, "a.bool", GGUF_TYPE_BOOL, ba, 4);
    gguf_writer_set_arr_data(w, "a.none", GGUF_TYPE_INT32, NULL, 0);
    gguf_writer_set_arr_str(w, "a.str", sa, 4);
    gguf_writer_set_u32(w, "general.alignment", 64);

    // Tensors of several types with odd sizes, so every one needs padding.
    enum gl_type types[5] = {GL_TYPE_F32, GL_TYPE_F16, GL_TYPE_Q4_0, GL_TYPE_Q8_0, GL_TYPE_Q4_K};
    int64_t ne[5][2] = {{3, 1}, {5, 3}, {32, 3}, {64, 1}, {256, 2}};
    uint8_t *data[5];
    size_t size[5];
    for (int t = 0; t < 5; t++) {
        size[t] = gl_row_size(types[t], ne[t][0]) * (size_t)ne[t][1];
        data[t] = malloc(size[t]);
        for (size_t k = 0; k < size[t]; k++) data[t][k] = (uint8_t)(k * 7 + t);
        char name[32];
        snprintf(name, sizeof name, "t%d.weight", t);
        gguf_writer_add_tensor(w, name, types[t], ne[t][1] == 1 ? 1 : 2, ne[t], data[t], size[t]);
    }
    CHECK(gguf_writer_write(w, path, err, sizeof err), "write: %s", err);
    gguf_writer_free(w);

    gguf_file *f = open_ok(path);
    if (f) {
        CHECK(gguf_version(f) == 3 && gguf_alignment(f) == 64, "v3, alignment 64");
        CHECK(gguf_n_kv(f) == 19, "n_kv %lld (a replaced key must not be added)", (long long)gguf_n_kv(f));
        CHECK(gguf_get_u32(f, "s.u8", 0) == 250 && gguf_kv_type(f, gguf_find_key(f, "s.u8")) == GGUF_TYPE_UINT8, "u8");
        CHECK(gguf_get_i32(f, "s.i8", 0) == -5 && gguf_kv_type(f, gguf_find_key(f, "s.i8")) == GGUF_TYPE_INT8, "i8");
        CHECK(gguf_get_u32(f, "s.u16", 0) == 65535, "u16");
        CHECK(gguf_get_i32(f, "s.i16", 0) == -32768, "i16");
        int64_t ki = gguf_find_key(f, "s.i64");
        int64_t vi = 0;
        if (gguf_kv_data(f, ki)) memcpy(&vi, gguf_kv_data(f, ki), 8);
        CHECK(gguf_kv_type(f, ki) == GGUF_TYPE_INT64 && vi == INT64_MIN, "i64");
        double d = 0;
        CHECK(gguf_kv_number(f, gguf_find_key(f, "s.f64"), &d) && d == 1.0 / 3.0, "f64");
        CHECK(gguf_get_u32(f, "s.u32", 0) == 123456789u, "u32");
        CHECK(gguf_get_i32(f, "s.i32", 0) == -123456789, "i32");
        CHECK(gguf_get_u64(f, "s.u64", 0) == UINT64_MAX, "u64");
        CHECK(gguf_get_f32(f, "s.f32", 0) == -0.0078125f, "f32");
        CHECK(gguf_get_bool(f, "s.bool", false), "bool");
        CHECK(!strcmp(gguf_get_str(f, "s.str", ""), "replaced"), "str");
        CHECK(!strcmp(gguf_get_str(f, "s.empty", "x"), ""), "empty str");
        int64_t a = gguf_find_key(f, "a.f32");
        CHECK(gguf_arr_n(f, a) == 3 && gguf_arr_number(f, a, 1) == -2.5 &&
              gguf_arr_number(f, a, 2) == (double)1e-30f, "a.f32");
        a = gguf_find_key(f, "a.i64");
        int64_t pi[2] = {0};
        if (gguf_arr_data(f, a)) memcpy(pi, gguf_arr_data(f, a), sizeof pi);
        CHECK(gguf_arr_type(f, a) == GGUF_TYPE_INT64 && pi[0] == -1 && pi[1] == INT64_MAX, "a.i64");
        a = gguf_find_key(f, "a.bool");
        CHECK(gguf_arr_type(f, a) == GGUF_TYPE_BOOL && gguf_arr_number(f, a, 1) == 0 && gguf_arr_number(f, a, 3) == 1, "a.bool");
        a = gguf_find_key(f, "a.none");
        CHECK(gguf_arr_type(f, a) == GGUF_TYPE_INT32 && gguf_arr_n(f, a) == 0, "a.none");
        a = gguf_find_key(f, "a.str");
        CHECK(gguf_arr_n(f, a) == 4, "a.str n");
        for (uint64_t j = 0; j < 4; j++) CHECK(str_is(gguf_arr_str(f, a, j), sa[j]), "a.str[%llu]", (unsigned long long)j);
        CHECK(gguf_n_tensors(f) == 5, "n_tensors");
        size_t end = 0;
        for (int t = 0; t < 5; t++) {
            const gguf_tensor *gt = gguf_get_tensor(f, t);
            if (!gt) continue;
            CHECK(gt->type == types[t] && gt->ne[0] == ne[t][0] && gt->ne[1] == ne[t][1], "tensor %d shape", t);
            CHECK(gt->size == size[t] && memcmp(gt->data, data[t], size[t]) == 0, "tensor %d data", t);
            CHECK(gt->offset % 64 == 0 && (uintptr_t)gt->data % 64 == 0, "tensor %d aligned", t);
            CHECK(gt->offset >= end, "tensor %d after the previous one", t);
            end = gt->offset + gt->size;
        }
        CHECK(gguf_file_size(f) % 64 == 0, "file padded to the alignment (%zu bytes)", gguf_file_size(f));
        gguf_close(f);
    }
    for (int t = 0; t < 5; t++) free(data[t]);
}

// Default alignment 32 and a file with no tensors and no metadata.
static void writer_minimal(void) {
    char path[1100], err[512] = "";
    tmp_path(path, sizeof path, "empty.gguf");
    gguf_writer *w = gguf_writer_new();
    CHECK(gguf_writer_write(w, path, err, sizeof err), "write empty: %s", err);
    gguf_writer_free(w);
    gguf_file *f = open_ok(path);
    if (f) {
        CHECK(gguf_n_kv(f) == 0 && gguf_n_tensors(f) == 0 && gguf_alignment(f) == 32, "empty file");
        CHECK(gguf_find_key(f, "x") == -1 && gguf_find_tensor(f, "x") == NULL, "lookups in an empty file");
        gguf_close(f);
    }
    float one[1] = {1};
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "one", GL_TYPE_F32, 1, (int64_t[]){1}, one, 4);
    CHECK(gguf_writer_write(w, path, err, sizeof err), "write one: %s", err);
    gguf_writer_free(w);
    f = open_ok(path);
    if (f) {
        const gguf_tensor *t = gguf_find_tensor(f, "one");
        CHECK(t && *(const float *)t->data == 1 && gguf_file_size(f) % 32 == 0, "one tensor, alignment 32");
        gguf_close(f);
    }
}

static void expect_write_error(gguf_writer *w, const char *path, const char *want, const char *what) {
    char err[512] = "";
    bool ok = gguf_writer_write(w, path, err, sizeof err);
    CHECK(!ok, "%s: written", what);
    CHECK(strstr(err, path) && strstr(err, want), "%s: error '%s' lacks '%s'", what, err, want);
    gguf_writer_free(w);
}

static void writer_errors(void) {
    char path[1100];
    tmp_path(path, sizeof path, "error.gguf");
    float data[64] = {0};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_add_tensor(w, "w", GL_TYPE_F32, 2, (int64_t[]){4, 4}, data, 60);
    expect_write_error(w, path, "do not match", "size mismatch");
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "w", GL_TYPE_Q4_0, 1, (int64_t[]){16}, data, 18);
    expect_write_error(w, path, "do not match", "row not a multiple of the block");
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "w", GL_TYPE_F32, 1, (int64_t[]){4}, data, 16);
    gguf_writer_add_tensor(w, "w", GL_TYPE_F32, 1, (int64_t[]){4}, data, 16);
    expect_write_error(w, path, "duplicate", "duplicate tensor");
    w = gguf_writer_new();
    gguf_writer_add_tensor(w, "w", GL_TYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, data, 4);
    expect_write_error(w, path, "dimensions", "5 dims");
    w = gguf_writer_new();
    gguf_writer_set_u32(w, "general.alignment", 3);
    expect_write_error(w, path, "alignment", "alignment 3");
    w = gguf_writer_new();
    gguf_writer_set_str(w, "general.alignment", "32");
    expect_write_error(w, path, "alignment", "alignment as a string");
    w = gguf_writer_new();
    gguf_writer_set_u32(w, "", 1);
    expect_write_error(w, path, "empty", "empty key");
    char bad[1200];
    snprintf(bad, sizeof bad, "%s/no-such-dir/x.gguf", dir);
    expect_write_error(gguf_writer_new(), bad, "No such file", "unwritable path");
}

// ---- ll_gguf_kv_format (llamalite info) ----------------------------------------------------

static void check_format(const ll_gguf *g, const char *key, size_t max_items, size_t max_str, const char *want) {
    int64_t i = -1;
    for (int64_t k = 0; k < ll_gguf_n_kv(g); k++)
        if (!strcmp(ll_gguf_key(g, k), key)) i = k;
    char *got = i >= 0 ? ll_gguf_kv_format(g, i, max_items, max_str) : NULL;
    CHECK(got && !strcmp(got, want), "format %s (%zu, %zu): got '%s', want '%s'", key, max_items, max_str,
          got ? got : "(null)", want);
    free(got);
}

static void formatting(void) {
    char path[1100], err[512] = "";
    tmp_path(path, sizeof path, "good-v3.gguf");
    ll_gguf *g = ll_gguf_open(path, err, sizeof err);
    CHECK(g != NULL, "ll_gguf_open: %s", err);
    if (!g) return;
    CHECK(ll_gguf_version(g) == 3 && ll_gguf_alignment(g) == 32 && ll_gguf_n_tensors(g) == 2, "ll_gguf header");
    check_format(g, "t.u8", 3, 100, "200");
    check_format(g, "t.i8", 3, 100, "-100");
    check_format(g, "t.i16", 3, 100, "-30000");
    check_format(g, "t.u32", 3, 100, "4000000000");
    check_format(g, "t.u64", 3, 100, "18446744073709551600");
    check_format(g, "t.i64", 3, 100, "-5000000000");
    check_format(g, "t.f32", 3, 100, "0.25");
    check_format(g, "t.f64", 3, 100, "-1.5e+300");
    check_format(g, "t.bool", 3, 100, "true");
    check_format(g, "t.bool0", 3, 100, "false");
    check_format(g, "t.str", 3, 100, "\"h\xc3\xa9llo \\\"world\\\"\\n\"");
    check_format(g, "t.str", 3, 2, "\"h...\""); // not inside the 2-byte character
    check_format(g, "t.str", 3, 3, "\"h\xc3\xa9...\"");
    check_format(g, "t.arr_u32", 2, 100, "[1, 2, ... 3 items]");
    check_format(g, "t.arr_u32", 3, 100, "[1, 2, 3]");
    check_format(g, "t.arr_u32", 0, 0, "[1, 2, 3]");
    check_format(g, "t.arr_str", 0, 0, "[\"zero\", \"\", \"two\"]");
    check_format(g, "t.arr_str", 1, 2, "[\"ze...\", ... 3 items]");
    check_format(g, "t.arr_empty", 3, 100, "[]");
    check_format(g, "t.arr_i16", 3, 100, "[-7, 7]");
    check_format(g, "t.nested", 3, 100, "[3 arrays]");
    // Type names for every key of the crafted file.
    static const char *const types[][2] = {
        {"t.u8", "u8"}, {"t.i8", "i8"}, {"t.u16", "u16"}, {"t.i16", "i16"}, {"t.u32", "u32"},
        {"t.i32", "i32"}, {"t.f32", "f32"}, {"t.bool", "bool"}, {"t.str", "str"}, {"t.u64", "u64"},
        {"t.i64", "i64"}, {"t.f64", "f64"}, {"t.arr_u32", "arr[u32]"}, {"t.arr_str", "arr[str]"},
        {"t.arr_empty", "arr[f32]"}, {"t.arr_i16", "arr[i16]"}, {"t.nested", "arr[arr]"}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int64_t ki = -1;
        for (int64_t j = 0; j < ll_gguf_n_kv(g); j++)
            if (!strcmp(ll_gguf_key(g, j), types[k][0])) ki = j;
        const char *got = ki >= 0 ? ll_gguf_kv_type(g, ki) : "(absent)";
        CHECK(!strcmp(got, types[k][1]), "type of %s: '%s', want '%s'", types[k][0], got, types[k][1]);
    }
    CHECK(!strcmp(ll_gguf_kv_type(g, -1), "?") && !strcmp(ll_gguf_kv_type(g, ll_gguf_n_kv(g)), "?"),
          "type out of range");
    ll_gguf_tensor_info t;
    CHECK(ll_gguf_tensor(g, 1, &t) && !strcmp(t.name, "b") && !strcmp(t.type, "Q8_0") && t.n_dims == 1 &&
          t.ne[0] == 32 && t.n_elements == 32 && t.size == 34 && t.offset == 32, "ll_gguf_tensor");
    CHECK(!ll_gguf_tensor(g, 2, &t), "ll_gguf_tensor out of range");
    ll_gguf_close(g);

    // Terminal control sequences in strings from a file are escaped.
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "esc", "\x1b[31m\xc2\x9bX\x7f\t");
    float f1 = 1e-5f, f2 = 0.1f;
    gguf_writer_set_f32(w, "eps", f1);
    gguf_writer_set_f32(w, "tenth", f2);
    tmp_path(path, sizeof path, "format.gguf");
    CHECK(gguf_writer_write(w, path, err, sizeof err), "write: %s", err);
    gguf_writer_free(w);
    g = ll_gguf_open(path, err, sizeof err);
    CHECK(g != NULL, "ll_gguf_open: %s", err);
    if (!g) return;
    check_format(g, "esc", 3, 100, "\"\\x1b[31m\\u009bX\\x7f\\t\"");
    check_format(g, "eps", 3, 100, "1e-05");
    check_format(g, "tenth", 3, 100, "0.1");
    ll_gguf_close(g);
    g = ll_gguf_open("/nonexistent.gguf", err, sizeof err);
    CHECK(!g && !strcmp(err, "/nonexistent.gguf: No such file or directory"), "ll_gguf_open error '%s'", err);
}

// ---- shared models --------------------------------------------------------------------------

static gguf_file *open_shared(const char *shared, const char *name) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", shared, name);
    return open_ok(path);
}

static void check_tensor(const gguf_file *f, const char *name, enum gl_type type, int64_t ne0, int64_t ne1) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    CHECK(t != NULL, "%s missing", name);
    if (!t) return;
    CHECK(t->type == type, "%s: type %s, want %s", name, gl_type_name(t->type), gl_type_name(type));
    CHECK(t->ne[0] == ne0 && t->ne[1] == ne1, "%s: ne [%lld, %lld], want [%lld, %lld]", name,
          (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1);
    CHECK(t->size == gl_row_size(type, ne0) * (size_t)ne1, "%s: size %zu", name, t->size);
}

// stories260K (README): 512-token vocab, dim 64, 5 layers, 8 heads / 4 KV heads, FFN 172.
static void stories(const char *shared, const char *file, enum gl_type wtype) {
    gguf_file *f = open_shared(shared, file);
    if (!f) return;
    CHECK(!strcmp(gguf_get_str(f, "general.architecture", ""), "llama"), "%s: architecture", file);
    CHECK(gguf_get_u32(f, "llama.embedding_length", 0) == 64, "%s: dim", file);
    CHECK(gguf_get_u32(f, "llama.block_count", 0) == 5, "%s: layers", file);
    CHECK(gguf_get_u32(f, "llama.attention.head_count", 0) == 8, "%s: heads", file);
    CHECK(gguf_get_u32(f, "llama.attention.head_count_kv", 0) == 4, "%s: kv heads", file);
    CHECK(gguf_get_u32(f, "llama.feed_forward_length", 0) == 172, "%s: ffn", file);
    int64_t tok = gguf_find_key(f, "tokenizer.ggml.tokens");
    CHECK(gguf_arr_type(f, tok) == GGUF_TYPE_STRING && gguf_arr_n(f, tok) == 512, "%s: 512 tokens", file);
    CHECK(str_is(gguf_arr_str(f, tok, 1), "<s>") && str_is(gguf_arr_str(f, tok, 2), "</s>"), "%s: <s> </s>", file);
    CHECK(gguf_arr_n(f, gguf_find_key(f, "tokenizer.ggml.scores")) == 512, "%s: scores", file);
    CHECK(!strcmp(gguf_get_str(f, "tokenizer.ggml.model", ""), "llama"), "%s: SentencePiece vocab", file);
    // token_embd, output_norm, output and 9 tensors per layer
    CHECK(gguf_n_tensors(f) == 3 + 9 * 5, "%s: %lld tensors", file, (long long)gguf_n_tensors(f));
    check_tensor(f, "token_embd.weight", wtype, 64, 512);
    check_tensor(f, "output_norm.weight", GL_TYPE_F32, 64, 1);
    for (int l = 0; l < 5; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        check_tensor(f, name, wtype, 64, 32); // 4 KV heads of 64/8 = 8
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        check_tensor(f, name, wtype, 172, 64);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        check_tensor(f, name, GL_TYPE_F32, 64, 1);
    }
    gguf_close(f);
}

// mixed-types (README): every layer in another type, token_embd Q8_0, tied output.
static void mixed(const char *shared) {
    static const enum gl_type layer_type[14] = {
        GL_TYPE_Q4_0, GL_TYPE_Q4_1, GL_TYPE_Q5_0, GL_TYPE_Q5_1, GL_TYPE_Q8_0, GL_TYPE_Q2_K, GL_TYPE_Q3_K,
        GL_TYPE_Q4_K, GL_TYPE_Q5_K, GL_TYPE_Q6_K, GL_TYPE_F16, GL_TYPE_BF16, GL_TYPE_IQ4_NL, GL_TYPE_IQ4_XS};
    gguf_file *f = open_shared(shared, "models/mixed-types.gguf");
    if (!f) return;
    CHECK(gguf_n_tensors(f) == 128, "mixed: %lld tensors", (long long)gguf_n_tensors(f));
    CHECK(gguf_get_u32(f, "llama.block_count", 0) == 14 && gguf_get_u32(f, "llama.embedding_length", 0) == 256,
          "mixed: layers, dim");
    CHECK(gguf_arr_n(f, gguf_find_key(f, "tokenizer.ggml.tokens")) == 32000, "mixed: 32000 tokens");
    check_tensor(f, "token_embd.weight", GL_TYPE_Q8_0, 256, 32000);
    CHECK(gguf_find_tensor(f, "output.weight") == NULL, "mixed: tied output");
    const char *mats[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    const int64_t shape[7][2] = {{256, 256}, {256, 64}, {256, 64}, {256, 256}, {256, 768}, {256, 768}, {768, 256}};
    for (int l = 0; l < 14; l++)
        for (int m = 0; m < 7; m++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, mats[m]);
            check_tensor(f, name, layer_type[l], shape[m][0], shape[m][1]);
        }
    gguf_close(f);
}

// The LoRA adapter (README): alpha 16, rank 8, lora_a [n_in, 8] and lora_b [8, n_out], F32.
static void lora(const char *shared) {
    gguf_file *f = open_shared(shared, "models/lora-rank8.gguf");
    if (!f) return;
    CHECK(!strcmp(gguf_get_str(f, "general.type", ""), "adapter"), "lora: general.type");
    CHECK(!strcmp(gguf_get_str(f, "adapter.type", ""), "lora"), "lora: adapter.type");
    CHECK(gguf_get_f32(f, "adapter.lora.alpha", 0) == 16, "lora: alpha");
    check_tensor(f, "blk.0.attn_q.weight.lora_a", GL_TYPE_F32, 256, 8);
    check_tensor(f, "blk.0.attn_q.weight.lora_b", GL_TYPE_F32, 8, 256);
    check_tensor(f, "blk.13.ffn_up.weight.lora_b", GL_TYPE_F32, 8, 768);
    gguf_close(f);
}

static void vocabs(const char *shared) {
    const char *names[5] = {"llama-spm", "llama-bpe", "gpt-2", "deepseek-llm", "falcon"};
    for (int i = 0; i < 5; i++) {
        char file[128];
        snprintf(file, sizeof file, "tokenizer/ggml-vocab-%s.gguf", names[i]);
        gguf_file *f = open_shared(shared, file);
        if (!f) continue;
        int64_t tok = gguf_find_key(f, "tokenizer.ggml.tokens");
        CHECK(gguf_arr_n(f, tok) > 1000 && gguf_n_tensors(f) == 0, "%s: a vocab, no weights", names[i]);
        uint64_t total = 0;
        for (uint64_t j = 0; j < gguf_arr_n(f, tok); j++) total += gguf_arr_str(f, tok, j).len;
        CHECK(total < gguf_file_size(f), "%s: token bytes within the file", names[i]);
        gguf_close(f);
    }
    gguf_file *f = open_shared(shared, "tokenizer/ggml-vocab-llama-bpe.gguf");
    if (f) {
        CHECK(!strcmp(gguf_get_str(f, "tokenizer.ggml.pre", ""), "llama-bpe"), "llama-bpe pre-tokenizer");
        gguf_close(f);
    }
}

// A real model copied through the writer reads back with identical metadata and tensors.
static void copy_model(const char *shared) {
    gguf_file *f = open_shared(shared, "models/stories260K.gguf");
    if (!f) return;
    char path[1100], err[512] = "";
    tmp_path(path, sizeof path, "stories-copy.gguf");
    gguf_writer *w = gguf_writer_new();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) gguf_writer_copy_kv(w, f, i);
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_get_tensor(f, i);
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, t->size);
    }
    CHECK(gguf_writer_write(w, path, err, sizeof err), "copy: %s", err);
    gguf_writer_free(w);
    gguf_file *g = open_ok(path);
    if (g) {
        CHECK(gguf_n_kv(g) == gguf_n_kv(f) && gguf_n_tensors(g) == gguf_n_tensors(f), "copy: counts");
        for (int64_t i = 0; i < gguf_n_kv(f) && i < gguf_n_kv(g); i++) {
            CHECK(!strcmp(gguf_key(f, i), gguf_key(g, i)) && gguf_kv_type(f, i) == gguf_kv_type(g, i),
                  "copy: key %s", gguf_key(f, i));
            enum gguf_vtype at = gguf_arr_type(f, i);
            uint64_t n = gguf_arr_n(f, i);
            CHECK(at == gguf_arr_type(g, i) && n == gguf_arr_n(g, i), "copy: array %s", gguf_key(f, i));
            for (uint64_t j = 0; at == GGUF_TYPE_STRING && j < n; j++) {
                gguf_str a = gguf_arr_str(f, i, j), b = gguf_arr_str(g, i, j);
                CHECK(a.len == b.len && !memcmp(a.ptr, b.ptr, a.len), "copy: %s[%llu]", gguf_key(f, i), (unsigned long long)j);
            }
            for (uint64_t j = 0; at != GGUF_TYPE_STRING && j < n; j++)
                CHECK(gguf_arr_number(f, i, j) == gguf_arr_number(g, i, j), "copy: %s[%llu]", gguf_key(f, i), (unsigned long long)j);
        }
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *a = gguf_get_tensor(f, i), *b = gguf_get_tensor(g, i);
            CHECK(b && !strcmp(a->name, b->name) && a->size == b->size && a->offset == b->offset &&
                  !memcmp(a->data, b->data, a->size), "copy: tensor %s", a->name);
        }
        // Same layout rules as the reference writer: the copy is byte-identical.
        CHECK(gguf_file_size(g) == gguf_file_size(f), "copy: %zu bytes, original %zu", gguf_file_size(g), gguf_file_size(f));
        gguf_close(g);
    }
    gguf_close(f);
}

// Test result; the scratch files are kept only when something failed.
static int finish(void) {
    if (test_failures) fprintf(stderr, "the files are in %s\n", dir);
    else scratch_dir_remove(dir);
    return test_result("test_gguf");
}

int main(void) {
    if (!scratch_dir_make(dir, sizeof dir, "gguf_test")) return 1;
    crafted_file();
    writer_copy();
    writer_setters();
    writer_minimal();
    writer_errors();
    formatting();
    const char *shared = test_shared_dir();
    if (!shared) {
        fprintf(stderr, "test_gguf: shared data not found, model checks skipped\n");
        return finish() ? 1 : TEST_SKIP;
    }
    stories(shared, "models/stories260K.gguf", GL_TYPE_F32);
    stories(shared, "models/stories260K-f16.gguf", GL_TYPE_F16);
    mixed(shared);
    lora(shared);
    vocabs(shared);
    copy_model(shared);
    return finish();
}

// Crafted GGUF files for the reader's tests and the fuzz harness: a byte builder, a valid file
// that uses every value type, nested arrays and two tensors, and a table of malformed files,
// each with a word its error message must contain.
#ifndef LLAMALITE_TESTS_GGUF_BADFILES_H
#define LLAMALITE_TESTS_GGUF_BADFILES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GB_MAX_MARKS 512

// A growing byte buffer. marks[] records the end of every field written, so tests can cut a
// file at each field boundary.
typedef struct {
    uint8_t *p;
    size_t n, cap;
    size_t marks[GB_MAX_MARKS];
    int n_marks;
} gbuf;

static void gb_free(gbuf *b) { free(b->p); memset(b, 0, sizeof *b); }

static void gb_bytes(gbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) abort(); // test helper: out of memory is fatal
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    if (b->n_marks < GB_MAX_MARKS) b->marks[b->n_marks++] = b->n;
}

static void gb_u8(gbuf *b, uint8_t v) { gb_bytes(b, &v, 1); }
static void gb_u16(gbuf *b, uint16_t v) { gb_bytes(b, &v, 2); }
static void gb_u32(gbuf *b, uint32_t v) { gb_bytes(b, &v, 4); }
static void gb_u64(gbuf *b, uint64_t v) { gb_bytes(b, &v, 8); }
static void gb_f32(gbuf *b, float v) { gb_bytes(b, &v, 4); }
static void gb_f64(gbuf *b, double v) { gb_bytes(b, &v, 8); }

// A GGUF string: u64 length then the bytes.
static void gb_strn(gbuf *b, const char *s, size_t n) { gb_u64(b, n); gb_bytes(b, s, n); }
static void gb_str(gbuf *b, const char *s) { gb_strn(b, s, strlen(s)); }

static void gb_pad(gbuf *b, size_t align) {
    static const uint8_t zeros[64];
    size_t pad = (align - b->n % align) % align;
    if (pad) gb_bytes(b, zeros, pad);
}

static void gb_header(gbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    gb_bytes(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}

// Key and value type; the caller writes the value.
static void gb_key(gbuf *b, const char *key, uint32_t type) { gb_str(b, key); gb_u32(b, type); }
static void gb_kv_u32(gbuf *b, const char *key, uint32_t v) { gb_key(b, key, 4); gb_u32(b, v); }

static void gb_tensor_info(gbuf *b, const char *name, uint32_t n_dims, const uint64_t *ne,
                           uint32_t type, uint64_t offset) {
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) gb_u64(b, ne[d]);
    gb_u32(b, type);
    gb_u64(b, offset);
}

// GGUF value type ids and the ggml type ids used below.
enum { GB_U8, GB_I8, GB_U16, GB_I16, GB_U32, GB_I32, GB_F32, GB_BOOL, GB_STR, GB_ARR, GB_U64, GB_I64, GB_F64 };
enum { GB_TYPE_F32 = 0, GB_TYPE_Q4_0 = 2, GB_TYPE_Q8_0 = 8 };

// The valid file: metadata of every type (values known to the tests), then tensors
//   "a" F32 [4, 2] at offset 0 (floats 0..7), "b" Q8_0 [32] at offset 32 (34 bytes),
// with b ending exactly at the end of the file, so every shorter prefix is invalid.
#define GB_GOOD_N_KV 20
#define GB_GOOD_STR "h\xc3\xa9llo \"world\"\n"
static inline void gb_good(gbuf *b, uint32_t version) {
    gb_header(b, version, 2, GB_GOOD_N_KV);
    gb_key(b, "t.u8", GB_U8); gb_u8(b, 200);
    gb_key(b, "t.i8", GB_I8); gb_u8(b, (uint8_t)-100);
    gb_key(b, "t.u16", GB_U16); gb_u16(b, 60000);
    gb_key(b, "t.i16", GB_I16); gb_u16(b, (uint16_t)-30000);
    gb_key(b, "t.u32", GB_U32); gb_u32(b, 4000000000u);
    gb_key(b, "t.i32", GB_I32); gb_u32(b, (uint32_t)-2000000000);
    gb_key(b, "t.f32", GB_F32); gb_f32(b, 0.25f);
    gb_key(b, "t.bool", GB_BOOL); gb_u8(b, 1);
    gb_key(b, "t.str", GB_STR); gb_str(b, GB_GOOD_STR);
    gb_key(b, "t.u64", GB_U64); gb_u64(b, 0xFFFFFFFFFFFFFFF0ull);
    gb_key(b, "t.i64", GB_I64); gb_u64(b, (uint64_t)-5000000000ll);
    gb_key(b, "t.f64", GB_F64); gb_f64(b, -1.5e300);
    gb_key(b, "t.arr_u32", GB_ARR); gb_u32(b, GB_U32); gb_u64(b, 3);
    gb_u32(b, 1); gb_u32(b, 2); gb_u32(b, 3);
    gb_key(b, "t.arr_str", GB_ARR); gb_u32(b, GB_STR); gb_u64(b, 3);
    gb_str(b, "zero"); gb_str(b, ""); gb_str(b, "two");
    gb_key(b, "t.arr_empty", GB_ARR); gb_u32(b, GB_F32); gb_u64(b, 0);
    gb_key(b, "t.arr_i16", GB_ARR); gb_u32(b, GB_I16); gb_u64(b, 2);
    gb_u16(b, (uint16_t)-7); gb_u16(b, 7);
    // [[1, 2], ["x"], [[]]]: arrays of arrays are walked and checked even if not exposed.
    gb_key(b, "t.nested", GB_ARR); gb_u32(b, GB_ARR); gb_u64(b, 3);
    gb_u32(b, GB_I32); gb_u64(b, 2); gb_u32(b, 1); gb_u32(b, 2);
    gb_u32(b, GB_STR); gb_u64(b, 1); gb_str(b, "x");
    gb_u32(b, GB_ARR); gb_u64(b, 1); gb_u32(b, GB_U8); gb_u64(b, 0);
    gb_key(b, "t.bool0", GB_BOOL); gb_u8(b, 0);
    gb_key(b, "t.i32neg", GB_I32); gb_u32(b, (uint32_t)-1);
    gb_kv_u32(b, "general.alignment", 32);
    uint64_t ne_a[2] = {4, 2}, ne_b[1] = {32};
    gb_tensor_info(b, "a", 2, ne_a, GB_TYPE_F32, 0);
    gb_tensor_info(b, "b", 1, ne_b, GB_TYPE_Q8_0, 32);
    gb_pad(b, 32);
    for (int i = 0; i < 8; i++) gb_f32(b, (float)i);
    uint8_t q8[34];
    for (int i = 0; i < 34; i++) q8[i] = (uint8_t)i;
    gb_bytes(b, q8, sizeof q8);
}

// ---- malformed files ----------------------------------------------------------------------

// One tensor (no metadata) with the given info and data_bytes of data after alignment 32.
static void gb_one_tensor(gbuf *b, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                          uint64_t offset, size_t data_bytes) {
    gb_header(b, 3, 1, 0);
    gb_tensor_info(b, "w", n_dims, ne, type, offset);
    gb_pad(b, 32);
    for (size_t i = 0; i < data_bytes; i++) gb_u8(b, (uint8_t)i);
}

// Two F32 [8] tensors (32 bytes each) at the given offsets, data_bytes of data.
static void gb_two_tensors(gbuf *b, const char *n1, uint64_t o1, const char *n2, uint64_t o2,
                           size_t data_bytes) {
    uint64_t ne[1] = {8};
    gb_header(b, 3, 2, 0);
    gb_tensor_info(b, n1, 1, ne, GB_TYPE_F32, o1);
    gb_tensor_info(b, n2, 1, ne, GB_TYPE_F32, o2);
    gb_pad(b, 32);
    for (size_t i = 0; i < data_bytes; i++) gb_u8(b, 0);
}

static void bad_empty(gbuf *b) { (void)b; }
static void bad_magic(gbuf *b) { gb_bytes(b, "GGUX", 4); gb_u32(b, 3); gb_u64(b, 0); gb_u64(b, 0); }
static void bad_v1(gbuf *b) { gb_header(b, 1, 0, 0); }
static void bad_v4(gbuf *b) { gb_header(b, 4, 0, 0); }
static void bad_v999(gbuf *b) { gb_header(b, 999, 0, 0); }
static void bad_big_endian(gbuf *b) { gb_header(b, 0x03000000u, 0, 0); }
static void bad_header_cut(gbuf *b) { gb_bytes(b, "GGUF", 4); gb_u32(b, 3); gb_u64(b, 0); gb_u32(b, 0); }
static void bad_kv_count_huge(gbuf *b) { gb_header(b, 3, 0, 1ull << 60); gb_kv_u32(b, "k", 1); }
static void bad_kv_count_max(gbuf *b) { gb_header(b, 3, 0, UINT64_MAX); gb_kv_u32(b, "k", 1); }
static void bad_tensor_count_huge(gbuf *b) { gb_header(b, 3, 1ull << 60, 0); gb_kv_u32(b, "k", 1); }
static void bad_kv_count_plus_one(gbuf *b) { gb_header(b, 3, 0, 2); gb_kv_u32(b, "some.key", 1); gb_key(b, "x", GB_U32); }
static void bad_key_len_huge(gbuf *b) { gb_header(b, 3, 0, 1); gb_u64(b, 1ull << 63); gb_bytes(b, "key.name", 8); }
static void bad_key_len_past_eof(gbuf *b) { gb_header(b, 3, 0, 1); gb_u64(b, 100); gb_bytes(b, "key.name.u32", 12); }
static void bad_key_empty(gbuf *b) { gb_header(b, 3, 0, 1); gb_kv_u32(b, "", 1); }
static void bad_key_nul(gbuf *b) { gb_header(b, 3, 0, 1); gb_strn(b, "a\0b", 3); gb_u32(b, GB_U32); gb_u32(b, 1); }
static void bad_value_type(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", 13); gb_u32(b, 0); }
static void bad_value_type_max(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", UINT32_MAX); gb_u32(b, 0); }
static void bad_scalar_cut(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", GB_U64); gb_u32(b, 0); }
static void bad_str_len_huge(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", GB_STR); gb_u64(b, UINT64_MAX); gb_bytes(b, "abc", 3); }
static void bad_str_past_eof(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", GB_STR); gb_u64(b, 9); gb_bytes(b, "abcdefgh", 8); }
static void bad_arr_elem_type(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, 13); gb_u64(b, 1); gb_u32(b, 0); }
static void bad_arr_count_huge(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_U32); gb_u64(b, 1ull << 60); gb_u32(b, 0); }
static void bad_arr_count_plus_one(gbuf *b) {
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_U32); gb_u64(b, 4);
    gb_u32(b, 1); gb_u32(b, 2); gb_u32(b, 3);
}
static void bad_arr_str_past_eof(gbuf *b) {
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_STR); gb_u64(b, 2);
    gb_str(b, "ok"); gb_u64(b, 1000); gb_bytes(b, "short", 5);
}
static void bad_arr_str_len_huge(gbuf *b) {
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_STR); gb_u64(b, 1);
    gb_u64(b, 1ull << 62); gb_bytes(b, "x", 1);
}
static void bad_nested_deep(gbuf *b) { // an array nested 100 deep
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR);
    for (int i = 0; i < 100; i++) { gb_u32(b, GB_ARR); gb_u64(b, 1); }
    gb_u32(b, GB_U8); gb_u64(b, 0);
}
static void bad_nested_count_huge(gbuf *b) { // 2^40 empty arrays claimed, 2 present
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_ARR); gb_u64(b, 1ull << 40);
    for (int i = 0; i < 2; i++) { gb_u32(b, GB_U8); gb_u64(b, 0); }
}
static void bad_nested_inner_count(gbuf *b) { // the inner array claims 2^50 elements
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_ARR); gb_u64(b, 2);
    gb_u32(b, GB_U8); gb_u64(b, 1); gb_u8(b, 7);
    gb_u32(b, GB_U64); gb_u64(b, 1ull << 50); gb_u64(b, 0);
}
static void bad_nested_inner_type(gbuf *b) {
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_ARR); gb_u64(b, 1);
    gb_u32(b, 77); gb_u64(b, 1); gb_u32(b, 0);
}
static void bad_nested_inner_str(gbuf *b) { // a string inside a nested array runs past EOF
    gb_header(b, 3, 0, 1); gb_key(b, "k", GB_ARR); gb_u32(b, GB_ARR); gb_u64(b, 1);
    gb_u32(b, GB_STR); gb_u64(b, 1); gb_u64(b, 64); gb_bytes(b, "abc", 3);
}
static void bad_dup_key(gbuf *b) { gb_header(b, 3, 0, 3); gb_kv_u32(b, "a.b", 1); gb_kv_u32(b, "c", 2); gb_kv_u32(b, "a.b", 3); }
static void bad_dup_key_controls(gbuf *b) { // a long key with terminal controls and UTF-8, twice
    char key[128] = "\x1b[2J\n\xc2\x9b" "31m";
    for (int i = 0; i < 30; i++) strcat(key, "\xc3\xa9");
    gb_header(b, 3, 0, 2); gb_kv_u32(b, key, 1); gb_kv_u32(b, key, 2);
}
static void bad_align_0(gbuf *b) { gb_header(b, 3, 0, 1); gb_kv_u32(b, "general.alignment", 0); }
static void bad_align_3(gbuf *b) { gb_header(b, 3, 0, 1); gb_kv_u32(b, "general.alignment", 3); }
static void bad_align_u64(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "general.alignment", GB_U64); gb_u64(b, 32); }
static void bad_align_str(gbuf *b) { gb_header(b, 3, 0, 1); gb_key(b, "general.alignment", GB_STR); gb_str(b, "32"); }
static void bad_ndims_0(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 0, ne, GB_TYPE_F32, 0, 32); }
static void bad_ndims_5(gbuf *b) { uint64_t ne[5] = {2, 2, 2, 2, 2}; gb_one_tensor(b, 5, ne, GB_TYPE_F32, 0, 128); }
static void bad_ndims_huge(gbuf *b) { uint64_t ne[1] = {8}; gb_header(b, 3, 1, 0); gb_str(b, "w"); gb_u32(b, UINT32_MAX); gb_u64(b, ne[0]); gb_u32(b, 0); gb_u64(b, 0); }
static void bad_dim_0(gbuf *b) { uint64_t ne[2] = {8, 0}; gb_one_tensor(b, 2, ne, GB_TYPE_F32, 0, 32); }
static void bad_dim_product(gbuf *b) { uint64_t ne[3] = {1ull << 32, 1ull << 32, 1ull << 32}; gb_one_tensor(b, 3, ne, GB_TYPE_F32, 0, 32); }
static void bad_dim_sign(gbuf *b) { uint64_t ne[1] = {1ull << 63}; gb_one_tensor(b, 1, ne, GB_TYPE_F32, 0, 32); }
static void bad_size_overflow(gbuf *b) { uint64_t ne[2] = {1ull << 31, 1ull << 31}; gb_one_tensor(b, 2, ne, GB_TYPE_F32, 0, 32); }
static void bad_row_bytes_overflow(gbuf *b) { uint64_t ne[1] = {1ull << 62}; gb_one_tensor(b, 1, ne, GB_TYPE_F32, 0, 32); }
static void bad_type_unknown(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 1, ne, 9999, 0, 32); }
static void bad_type_removed(gbuf *b) { uint64_t ne[1] = {32}; gb_one_tensor(b, 1, ne, 4, 0, 32); } // old Q4_2
static void bad_type_max(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 1, ne, UINT32_MAX, 0, 32); }
static void bad_row_block(gbuf *b) { uint64_t ne[2] = {33, 2}; gb_one_tensor(b, 2, ne, GB_TYPE_Q4_0, 0, 64); }
static void bad_offset_misaligned(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 1, ne, GB_TYPE_F32, 4, 64); }
static void bad_offset_range(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 1, ne, GB_TYPE_F32, 1ull << 40, 32); }
static void bad_offset_wrap(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 1, ne, GB_TYPE_F32, UINT64_MAX - 31, 32); }
static void bad_data_short(gbuf *b) { uint64_t ne[1] = {8}; gb_one_tensor(b, 1, ne, GB_TYPE_F32, 0, 31); }
static void bad_data_missing(gbuf *b) { uint64_t ne[1] = {8}; gb_header(b, 3, 1, 0); gb_tensor_info(b, "w", 1, ne, GB_TYPE_F32, 0); }
static void bad_overlap(gbuf *b) { gb_two_tensors(b, "x", 0, "y", 0, 64); }
static void bad_overlap_partial(gbuf *b) { // F32 [16] at 0 overlaps F32 [8] at 32
    uint64_t ne16[1] = {16}, ne8[1] = {8};
    gb_header(b, 3, 2, 0);
    gb_tensor_info(b, "x", 1, ne8, GB_TYPE_F32, 32);
    gb_tensor_info(b, "y", 1, ne16, GB_TYPE_F32, 0);
    gb_pad(b, 32);
    for (int i = 0; i < 64; i++) gb_u8(b, 0);
}
static void bad_dup_tensor(gbuf *b) { gb_two_tensors(b, "same", 0, "same", 32, 64); }
static void bad_tensor_name_empty(gbuf *b) { uint64_t ne[1] = {8}; gb_header(b, 3, 1, 0); gb_tensor_info(b, "", 1, ne, 0, 0); gb_pad(b, 32); gb_bytes(b, ne, 8); gb_bytes(b, ne, 8); gb_bytes(b, ne, 8); gb_bytes(b, ne, 8); }
static void bad_tensor_name_huge(gbuf *b) { gb_header(b, 3, 1, 0); gb_u64(b, UINT64_MAX - 3); gb_bytes(b, "name", 4); gb_u32(b, 1); gb_u64(b, 8); gb_u32(b, 0); gb_u64(b, 0); }
static void bad_tensor_info_cut(gbuf *b) { gb_header(b, 3, 1, 0); gb_str(b, "w"); gb_u32(b, 2); gb_u64(b, 8); gb_u64(b, 8); gb_u32(b, 0); gb_u32(b, 0); }
static void bad_tensor_count_after_kv(gbuf *b) { // the count fits the file, not what follows the metadata
    gb_header(b, 3, 3, 1); gb_key(b, "pad", GB_STR);
    char filler[80];
    memset(filler, 'x', sizeof filler);
    gb_strn(b, filler, sizeof filler);
}
static void bad_alignment_breaks_offset(gbuf *b) { // offset 32 is valid at 32 but not at 64
    uint64_t ne[1] = {8};
    gb_header(b, 3, 2, 1);
    gb_kv_u32(b, "general.alignment", 64);
    gb_tensor_info(b, "x", 1, ne, GB_TYPE_F32, 0);
    gb_tensor_info(b, "y", 1, ne, GB_TYPE_F32, 32);
    gb_pad(b, 64);
    for (int i = 0; i < 64; i++) gb_u8(b, 0);
}

typedef struct {
    const char *name;   // file name stem
    const char *expect; // a word the error message must contain (case-sensitive)
    void (*build)(gbuf *b);
} gb_case;

static const gb_case gb_bad_cases[] = {
    {"empty", "too small", bad_empty},
    {"bad-magic", "magic", bad_magic},
    {"version-1", "version 1", bad_v1},
    {"version-4", "version 4", bad_v4},
    {"version-999", "version 999", bad_v999},
    {"big-endian", "big-endian", bad_big_endian},
    {"header-cut", "too small", bad_header_cut},
    {"kv-count-2^60", "metadata count", bad_kv_count_huge},
    {"kv-count-max", "metadata count", bad_kv_count_max},
    {"tensor-count-2^60", "tensor count", bad_tensor_count_huge},
    {"kv-count-plus-one", "truncated", bad_kv_count_plus_one},
    {"key-len-2^63", "string length", bad_key_len_huge},
    {"key-len-past-eof", "string length", bad_key_len_past_eof},
    {"key-empty", "empty", bad_key_empty},
    {"key-nul", "NUL", bad_key_nul},
    {"value-type-13", "invalid value type", bad_value_type},
    {"value-type-max", "invalid value type", bad_value_type_max},
    {"scalar-cut", "truncated", bad_scalar_cut},
    {"str-len-max", "string length", bad_str_len_huge},
    {"str-past-eof", "string length", bad_str_past_eof},
    {"arr-elem-type", "array element type", bad_arr_elem_type},
    {"arr-count-2^60", "exceeds", bad_arr_count_huge},
    {"arr-count-plus-one", "exceeds", bad_arr_count_plus_one},
    {"arr-str-past-eof", "string length", bad_arr_str_past_eof},
    {"arr-str-len-2^62", "string length", bad_arr_str_len_huge},
    {"nested-100-deep", "nested deeper", bad_nested_deep},
    {"nested-count-2^40", "exceeds", bad_nested_count_huge},
    {"nested-inner-count", "exceeds", bad_nested_inner_count},
    {"nested-inner-type", "array element type", bad_nested_inner_type},
    {"nested-inner-str", "string length", bad_nested_inner_str},
    {"dup-key", "duplicate metadata key", bad_dup_key},
    {"dup-key-controls", "duplicate metadata key", bad_dup_key_controls},
    {"alignment-0", "alignment", bad_align_0},
    {"alignment-3", "alignment", bad_align_3},
    {"alignment-u64", "alignment", bad_align_u64},
    {"alignment-str", "alignment", bad_align_str},
    {"ndims-0", "dimensions", bad_ndims_0},
    {"ndims-5", "dimensions", bad_ndims_5},
    {"ndims-max", "dimensions", bad_ndims_huge},
    {"dim-0", "is 0", bad_dim_0},
    {"dim-product-overflow", "overflows", bad_dim_product},
    {"dim-2^63", "overflows", bad_dim_sign},
    {"size-overflow", "overflows", bad_size_overflow},
    {"row-bytes-overflow", "overflows", bad_row_bytes_overflow},
    {"type-9999", "tensor type", bad_type_unknown},
    {"type-removed-q4_2", "tensor type", bad_type_removed},
    {"type-max", "tensor type", bad_type_max},
    {"row-not-block-multiple", "block size", bad_row_block},
    {"offset-misaligned", "alignment", bad_offset_misaligned},
    {"offset-out-of-range", "outside the file", bad_offset_range},
    {"offset-size-wrap", "outside the file", bad_offset_wrap},
    {"data-short", "outside the file", bad_data_short},
    {"data-missing", "truncated", bad_data_missing},
    {"overlap-same-offset", "overlap", bad_overlap},
    {"overlap-partial", "overlap", bad_overlap_partial},
    {"dup-tensor", "duplicate tensor name", bad_dup_tensor},
    {"tensor-name-empty", "empty name", bad_tensor_name_empty},
    {"tensor-name-len-max", "string length", bad_tensor_name_huge},
    {"tensor-info-cut", "truncated", bad_tensor_info_cut},
    {"tensor-count-after-kv", "tensor count", bad_tensor_count_after_kv},
    {"alignment-64-offset", "alignment", bad_alignment_breaks_offset},
};
#define GB_N_BAD_CASES (sizeof gb_bad_cases / sizeof gb_bad_cases[0])

#endif

// GGUF v2/v3 reader (memory-mapped, zero copy, or read into memory; hostile-input safe) and writer.
#ifndef LLAMALITE_GGUF_H
#define LLAMALITE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ggml-lite.h"

#ifdef __cplusplus
extern "C" {
#endif

enum gguf_vtype {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12, GGUF_TYPE_COUNT = 13,
};

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

typedef struct { const char *ptr; uint64_t len; } gguf_str; // not NUL-terminated; points into the map

typedef struct gguf_file gguf_file;

typedef struct {
    char *name;             // NUL-terminated copy
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; // ggml order: ne[0] is the row length; unused dims are 1
    enum gl_type type;
    uint64_t offset;        // relative to the data section
    size_t size;            // bytes
    const void *data;       // into the mapping
} gguf_tensor;

// Opens and validates the whole file. On failure returns NULL and writes a one-line message
// (naming the file and the problem) into err.
gguf_file *gguf_open(const char *path, char *err, size_t errlen);

// How gguf_open_with brings the file's bytes in.
typedef struct {
    bool read_in; // read the whole file into memory instead of mapping it (--no-mmap)
    // Called while reading in: bytes read of total (NULL: none).
    void (*progress)(void *ud, uint64_t done, uint64_t total);
    void *progress_ud;
} gguf_load;

// gguf_open, the bytes mapped (how NULL) or read in; the same checks either way.
gguf_file *gguf_open_with(const char *path, const gguf_load *how, char *err, size_t errlen);
void gguf_close(gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
const char *gguf_path(const gguf_file *f);
size_t gguf_alignment(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);

// ---- metadata ----------------------------------------------------------------------------
int64_t gguf_n_kv(const gguf_file *f);
int64_t gguf_find_key(const gguf_file *f, const char *key); // -1 if absent
const char *gguf_key(const gguf_file *f, int64_t i);        // NUL-terminated copy
enum gguf_vtype gguf_kv_type(const gguf_file *f, int64_t i);

// Typed getters by key: return def when absent. Integer getters accept any integer type
// whose value fits (and bool); float getters accept f32/f64 and integers.
uint32_t gguf_get_u32(const gguf_file *f, const char *key, uint32_t def);
int32_t gguf_get_i32(const gguf_file *f, const char *key, int32_t def);
uint64_t gguf_get_u64(const gguf_file *f, const char *key, uint64_t def);
float gguf_get_f32(const gguf_file *f, const char *key, float def);
bool gguf_get_bool(const gguf_file *f, const char *key, bool def);
// Returns a NUL-terminated copy owned by the file (valid until gguf_close), or def.
const char *gguf_get_str(const gguf_file *f, const char *key, const char *def);

// Scalar value of kv i as a double / string (for printing); false if the type does not match.
bool gguf_kv_number(const gguf_file *f, int64_t i, double *out);
gguf_str gguf_kv_string(const gguf_file *f, int64_t i);
// Raw little-endian bytes of scalar kv i (not a string or array), into the map (unaligned);
// else NULL.
const void *gguf_kv_data(const gguf_file *f, int64_t i);

// Arrays: element type and count; 0 / GGUF_TYPE_COUNT when key i is not an array.
enum gguf_vtype gguf_arr_type(const gguf_file *f, int64_t i);
uint64_t gguf_arr_n(const gguf_file *f, int64_t i);
// Raw little-endian elements of a fixed-size array (not strings, not nested), into the map.
// Not aligned in general: read elements with memcpy (or use gguf_arr_number).
const void *gguf_arr_data(const gguf_file *f, int64_t i);
// Element j of a string array, O(1).
gguf_str gguf_arr_str(const gguf_file *f, int64_t i, uint64_t j);
// Element j of a numeric array as a double (any numeric element type).
double gguf_arr_number(const gguf_file *f, int64_t i, uint64_t j);

// ---- tensors ------------------------------------------------------------------------------
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_get_tensor(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); // NULL if absent

// ---- writer --------------------------------------------------------------------------------
// Collects metadata and tensors in memory and writes a v3 file. Copies keys and strings;
// tensor data is referenced (must stay valid until gguf_writer_write returns).
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
// Any scalar type (u8 .. f64, bool); v points to its value in the type's C representation.
void gguf_writer_set_scalar(gguf_writer *w, const char *key, enum gguf_vtype type, const void *v);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_arr_data(gguf_writer *w, const char *key, enum gguf_vtype type,
                              const void *data, uint64_t n);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
// Copies key i of an open file (any type, arrays included); replaces a key of the same name.
void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, int64_t i);
void gguf_writer_add_tensor(gguf_writer *w, const char *name, enum gl_type type,
                            uint32_t n_dims, const int64_t *ne, const void *data, size_t size);
// A tensor's size must match its type and dims. Problems met while building (bad tensor,
// out of memory, invalid general.alignment) are reported here.
// Returns false and fills err on failure.
bool gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif

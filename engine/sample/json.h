// A small JSON DOM: parse a document into a tree, look values up, write them back compactly.
// Strict RFC 8259 (no comments, no trailing commas), nesting limited to JV_MAX_DEPTH, object
// members kept in document order (duplicates kept too; lookups find the first).
// Internal to the engine (JSON Schema translation); the cli has its own reader (cli/json.h).
// Prefixed jv_ so the two never clash in one binary.
#ifndef LLAMALITE_ENGINE_JSON_H
#define LLAMALITE_ENGINE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JV_MAX_DEPTH 512

typedef enum { JV_NULL, JV_BOOL, JV_NUMBER, JV_STRING, JV_ARRAY, JV_OBJECT } jv_type;

typedef struct jv_value jv_value;
struct jv_value {
    jv_type type;
    bool boolean;
    double number;
    char *text;          // strings: the decoded bytes (NUL-terminated; may hold NULs)
                         // numbers: the literal as written
    size_t len;          // length of text
    jv_value **items;  // arrays and objects: n values
    char **keys;         // objects: n decoded keys (NUL-terminated)
    size_t *key_lens;
    size_t n;
};

// Parses text[0..len). On error returns NULL and writes "LINE:COL: reason" to err.
jv_value *jv_parse(const char *text, size_t len, char *err, size_t errlen);
void jv_free(jv_value *v);

// The first member named key of an object (NULL if v is not an object or has none).
const jv_value *jv_get(const jv_value *v, const char *key);
// Whether a number is an integer value (no fraction, within +-2^53).
bool jv_is_integer(const jv_value *v);
// Deep equality (numbers by value, objects member by member in order).
bool jv_equal(const jv_value *a, const jv_value *b);

// Appends v's compact serialization (no spaces; strings escaped as JSON requires, non-ASCII
// kept as UTF-8) to *buf (malloc'd, grown as needed; *len/*cap track it). False on OOM.
bool jv_write(const jv_value *v, char **buf, size_t *len, size_t *cap);
// Appends s[0..n) as a JSON string literal, quotes included.
bool jv_write_string(const char *s, size_t n, char **buf, size_t *len, size_t *cap);

#endif

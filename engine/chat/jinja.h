// A Jinja interpreter for chat templates: the subset of Jinja2 that real chat templates use,
// with the settings Hugging Face transformers renders them with (trim_blocks, lstrip_blocks,
// loop controls, an immutable sandbox, its own tojson, raise_exception and strftime_now).
//
//   jinja_lex.c      template text -> tokens (text, tags, expression tokens), with line:column
//   jinja_parse.c    tokens -> a small tree of statements and expressions
//   jinja_value.c    values (none/bool/int/float/string/list/dict/macro/namespace), the arena
//                    they live in, equality, ordering, printing, JSON in and out
//   jinja_eval.c     runs the tree: scopes, loops, macros, operators
//   jinja_filters.c  filters (`x|trim`), tests (`x is string`), methods (`s.split()`) and globals
//
// The template comes from a downloaded file, so nothing is trusted: recursion depth, loop
// iterations, output size and memory are bounded, and every failure is one message naming the
// template's line:column. Errors unwind with longjmp to jinja_parse/jinja_render, and all memory
// of a parse or a render lives in one arena, freed at once.
#ifndef LLAMALITE_ENGINE_CHAT_JINJA_H
#define LLAMALITE_ENGINE_CHAT_JINJA_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

// ---- arena -------------------------------------------------------------------------------------
typedef struct jinja_chunk jinja_chunk;
typedef struct {
    jinja_chunk *head;
    size_t used, limit;     // bytes handed out / at most
    jmp_buf *fail;          // where to go when the limit is reached (or malloc fails)
    bool over;              // ... which sets this, for the catcher to say so
    bool too_deep;          // or a list or dict nested more than JV_MAX_DEPTH deep was made
} jinja_arena;

void *jinja_alloc(jinja_arena *a, size_t n); // zeroed; longjmps on the limit or out of memory
void jinja_arena_free(jinja_arena *a);

// ---- values ------------------------------------------------------------------------------------
typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS, JV_MACRO, JV_LOOP,
    JV_FUNC,   // a global function (range, namespace, raise_exception, ...)
} jv_type;

typedef struct jv_list jv_list;
typedef struct jv_dict jv_dict;
struct jinja_node;
struct jinja_loop;

typedef struct jv {
    jv_type t;
    bool markup;   // JV_STR: a Markup string (from |safe or |escape): `+` HTML-escapes plain strings into it
    union {
        bool b;
        int64_t i;
        double f;
        struct { const char *p; size_t n; } s;   // UTF-8, not NUL-terminated
        jv_list *l;
        jv_dict *d;                             // JV_DICT and JV_NS (a namespace is a mutable dict)
        const struct jinja_node *m;             // JV_MACRO
        struct jinja_loop *loop;                // JV_LOOP
        const char *undef_name;                 // JV_UNDEF: the name that was missing, or NULL
        const char *func;                       // JV_FUNC: its name
    };
} jv;

// tuple: prints as (a, b), never equals a list. generator: what Jinja2's map/select/... return,
// a one-pass iterator: always true, no length, no index, not JSON (|list makes a list of it).
// depth: how deeply lists and dicts nest in it (bounded, so that printing and comparing, which
// recurse, stay within the stack).
struct jv_list { size_t n, cap; jv *v; bool tuple, generator; unsigned depth; };
struct jv_dict { size_t n, cap; jv *k, *v; unsigned depth; };
enum { JV_MAX_DEPTH = 256 };

static inline jv jv_undef(const char *name) { jv v = {.t = JV_UNDEF}; v.undef_name = name; return v; }
static inline jv jv_none(void) { jv v = {.t = JV_NONE}; return v; }
static inline jv jv_bool(bool b) { jv v = {.t = JV_BOOL}; v.b = b; return v; }
static inline jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.f = f; return v; }
static inline jv jv_strn(const char *p, size_t n) { jv v = {.t = JV_STR}; v.s.p = p; v.s.n = n; return v; }

jv jv_str(jinja_arena *a, const char *s);             // copies s
jv jv_new_list(jinja_arena *a, size_t cap);
jv jv_new_dict(jinja_arena *a, size_t cap);
void jv_list_push(jinja_arena *a, jv_list *l, jv v);
void jv_dict_set(jinja_arena *a, jv_dict *d, jv key, jv v);   // replaces an equal key
const jv *jv_dict_find(const jv_dict *d, const char *key, size_t n);
const jv *jv_dict_get(const jv_dict *d, jv key);

bool jv_truthy(jv v);
bool jv_eq(jv a, jv b);
// -2 when a and b cannot be ordered (Python's TypeError), else -1/0/1.
int jv_compare(jv a, jv b);
const char *jv_type_name(jv v);       // Python's name: 'NoneType', 'str', 'list', 'dict', ...
bool jv_is_number(jv v);              // int, float or bool (as Python's numbers)
double jv_as_double(jv v);

// A growable byte buffer in the arena (or plain malloc for the output, see jinja_eval.c).
// a == NULL: plain realloc'd memory (the output); over: a write past limit was dropped (the
// evaluator checks it after each statement that writes).
typedef struct {
    char *p;
    size_t n, cap, limit;
    jinja_arena *a;
    bool over;
} jinja_buf;
void jinja_buf_put(jinja_buf *b, const char *s, size_t n);
static inline void jinja_buf_puts(jinja_buf *b, const char *s) { jinja_buf_put(b, s, strlen(s)); }

// Printing as Jinja2 does ({{ v }}): None, True/False, Python's float repr, lists and dicts as
// Python's repr.
void jv_print(jinja_buf *b, jv v);
void jv_repr(jinja_buf *b, jv v);
jv jv_to_str(jinja_arena *a, jv v);   // the string jv_print writes

// JSON as Python's json.dumps(v, ensure_ascii=False, indent, separators, sort_keys). Returns
// false (with *bad set to the offending value) for a value JSON cannot hold.
typedef struct {
    int indent;             // < 0: no newlines
    const char *item_sep, *key_sep;
    bool sort_keys;
    bool ensure_ascii;      // non-ASCII as \uXXXX escapes
} jv_json_opts;
bool jv_to_json(jinja_buf *b, jv v, const jv_json_opts *o, int depth, jv *bad);
// Parses JSON text (as Python's json.loads: integers stay integers). NULL on success, else a
// static message; *pos is the byte where it failed.
const char *jv_from_json(jinja_arena *a, const char *s, size_t n, jv *out, size_t *pos);

// ---- tokens and tree ---------------------------------------------------------------------------
typedef enum {
    TK_TEXT, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP, TK_EOF,
} jinja_tok_type;

typedef struct {
    jinja_tok_type t;
    const char *p;   // TK_TEXT/TK_NAME/TK_OP: the text; TK_STRING: unescaped value
    size_t n;
    int64_t i;       // TK_INT
    double f;        // TK_FLOAT
    int line, col;
} jinja_tok;

typedef struct {
    int max_depth;          // nesting of the tree, and of evaluation (macro calls included)
    int64_t max_steps;      // statements and loop iterations run, in all
    size_t max_output;      // bytes of rendered text
    size_t max_memory;      // bytes of the arena
} jinja_limits;
jinja_limits jinja_default_limits(void);

// Lexes src (newlines already normalized to \n) into tokens in the arena, ending with TK_EOF.
// Returns the count; on an error writes "line L, column C: ..." to err and longjmps through
// a->fail.
size_t jinja_lex(jinja_arena *a, const char *src, size_t len, jinja_tok **out, char *err, size_t errlen);

typedef enum {
    // statements
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_BLOCK, N_MACRO, N_CALL_BLOCK, N_FILTER_BLOCK,
    N_BREAK, N_CONTINUE, N_BODY, N_WITH,
    // expressions
    N_CONST, N_NAME, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_NOT, N_NEG, N_POS,
    N_BINARY, N_AND, N_OR, N_COMPARE, N_COND, N_LIST, N_TUPLE, N_DICT, N_CONCAT,
} jinja_node_type;

typedef struct jinja_node jinja_node;
typedef struct { jinja_node **v; size_t n; } jinja_nodes;

struct jinja_node {
    jinja_node_type t;
    int line, col;
    const char *name;        // N_NAME, N_ATTR, N_FILTER, N_TEST, N_MACRO, N_SET target name
    size_t name_n;
    char op[3];              // N_BINARY/N_COMPARE operator ("+", "//", "==", "in", "ni" = not in)
    jv value;                // N_CONST; N_TEXT (a string)
    jinja_node *a, *b, *c;   // operands; N_IF: cond/then/else; N_FOR: iter/body/else; ...
    jinja_node *d;           // N_FOR: the `if` filter; N_SLICE: step
    jinja_nodes args;        // call/filter/test arguments; N_LIST/N_TUPLE/N_DICT items; N_BODY
                             // statements; N_MACRO/N_CALL_BLOCK parameters (N_NAME)
    jinja_nodes kw;          // keyword arguments (N_NAME nodes whose .a is the value); macro defaults
    jinja_nodes targets;     // N_FOR/N_SET: names to unpack into; N_SET with .name: namespace attr
    jinja_nodes ops;         // N_COMPARE: the further operands (a < b < c)
    bool negate;             // N_TEST: `is not`
};

typedef struct {
    jinja_arena arena;
    jinja_node *root;        // N_BODY
} jinja_template;

// Parses a template. NULL with "line L, column C: problem" in err.
jinja_template *jinja_parse(const char *src, size_t len, const jinja_limits *lim, char *err, size_t errlen);
void jinja_free(jinja_template *t);

// Renders t with the variables of vars (a dict) into *out (malloc'd, NUL-terminated). Returns
// false with "line L, column C: problem" in err. vars and its values live in arena `a`, which the
// render uses for its own values too.
bool jinja_render(const jinja_template *t, jinja_arena *a, jv vars, const jinja_limits *lim,
                  char **out, size_t *out_n, char *err, size_t errlen);

// ---- evaluation state (shared by jinja_eval.c and jinja_filters.c) -----------------------------
typedef struct jinja_scope jinja_scope;
typedef struct jinja_eval {
    jinja_arena *a;
    jinja_limits lim;
    int depth;
    int64_t steps;
    jinja_scope *globals;
    jmp_buf fail;
    char *err;
    size_t errlen;
    int64_t now;             // strftime_now's time (seconds since the epoch)
    jinja_scope *caller_scope; // where the innermost {% call %} is, for its body (caller())
} jinja_eval;

struct jinja_loop {
    jv_list *items;
    size_t index;
    int depth;
};

// Makes an error message one line: control characters (a template's own text may hold
// newlines) become spaces.
void jinja_one_line(char *msg);

// Reports an error at node n (or the line:column given) and unwinds. printf-style.
_Noreturn void jinja_fail(jinja_eval *e, const jinja_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// jinja_filters.c: each returns false when it does not know the name.
bool jinja_filter(jinja_eval *e, const jinja_node *n, const char *name, jv in, const jv *args,
                  size_t nargs, const jv *kw_names, const jv *kw_vals, size_t nkw, jv *out);
bool jinja_test(jinja_eval *e, const jinja_node *n, const char *name, jv in, const jv *args,
                size_t nargs, bool *out);
bool jinja_method(jinja_eval *e, const jinja_node *n, jv obj, const char *name, const jv *args,
                  size_t nargs, const jv *kw_names, const jv *kw_vals, size_t nkw, jv *out);
// Whether name is one of the globals (so that `strftime_now is defined` holds).
bool jinja_is_global(const char *name, size_t n);
bool jinja_global(jinja_eval *e, const jinja_node *n, const char *name, const jv *args, size_t nargs,
                  const jv *kw_names, const jv *kw_vals, size_t nkw, jv *out);

// Helpers the evaluator and the filters share.
jv jinja_getattr(jinja_eval *e, const jinja_node *n, jv obj, jv key);   // obj.key / obj[key]
jv_list *jinja_iterable(jinja_eval *e, const jinja_node *n, jv v);      // items to loop over
size_t jinja_utf8_len(const char *p, size_t n);                           // code points
jv jinja_escape(jinja_eval *e, jv s);                                     // HTML-escaped, as Markup
void jinja_step(jinja_eval *e, const jinja_node *n);                      // counts toward max_steps
// Work that scans a value (a search in a long string, the length of one, a sort): one step per
// 64 bytes, so that no template can spend long on values it does not make bigger (growing ones hit
// the memory bound).
void jinja_work(jinja_eval *e, const jinja_node *n, size_t bytes);
size_t jinja_size(jv v);                                                  // bytes jinja_work counts for v

#endif

// BPE pre-tokenizers: split text into words before merging, one splitter per
// tokenizer.ggml.pre value. Each is a pipeline of stages; a stage re-splits every piece the
// previous one produced. The stages are hand-written matchers that give the same pieces as the
// regexes the reference uses (a leftmost-first search, std::regex semantics, where the text
// between two matches becomes a piece of its own). Every matcher runs in time linear in the
// text.
//
// Most reference regexes are evaluated on a "collapsed" text in which each non-ASCII code
// point stands for its category: whitespace, letter, number, punctuation, mark, symbol, or
// other. Classes like \p{L} then mean "ASCII letter or a non-ASCII letter that is not
// whitespace"; the coll_* helpers below encode exactly that. Regexes without \p{..} run on
// the code points themselves, where \s is ASCII whitespace plus non-ASCII White_Space.
#include <stdlib.h>
#include <string.h>

#include "vocab/pretokenize.h"
#include "vocab/unicode.h"

// The splitter families (several tokenizer.ggml.pre names share one).
typedef enum {
    LL_PRE_DEFAULT, LL_PRE_LLAMA3, LL_PRE_QWEN2, LL_PRE_GPT2, LL_PRE_STARCODER, LL_PRE_FALCON,
    LL_PRE_DEEPSEEK_LLM, LL_PRE_DEEPSEEK_CODER, LL_PRE_DEEPSEEK3, LL_PRE_PORO, LL_PRE_VIKING,
    LL_PRE_TEKKEN,
} ll_pre_type;

typedef struct {
    const uint32_t *cpt;
    const uint16_t *flags;
} pt_text;

// A matcher returns the length of the match starting at pos (0: none), pos < end.
typedef size_t (*pt_matcher)(const pt_text *t, size_t pos, size_t end);

// ---- character classes ----------------------------------------------------------------------

static int ascii_space(uint32_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }
static int ascii_alpha(uint32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int ascii_digit(uint32_t c) { return c >= '0' && c <= '9'; }

// \s, both on code points (non-ASCII whitespace is replaced by \v there) and collapsed.
static int is_ws(const pt_text *t, size_t i) {
    return t->cpt[i] < 0x80 ? ascii_space(t->cpt[i]) : (t->flags[i] & LL_CPT_WHITESPACE) != 0;
}

// A non-ASCII code point's collapsed category (0 when it is whitespace or ASCII).
static uint16_t coll_cat(const pt_text *t, size_t i) {
    if (t->cpt[i] < 0x80 || (t->flags[i] & LL_CPT_WHITESPACE)) return 0;
    return t->flags[i] & 0xFF;
}

static int coll_L(const pt_text *t, size_t i) {
    return t->cpt[i] < 0x80 ? ascii_alpha(t->cpt[i]) : coll_cat(t, i) == LL_CPT_LETTER;
}
static int coll_N(const pt_text *t, size_t i) {
    return t->cpt[i] < 0x80 ? ascii_digit(t->cpt[i]) : coll_cat(t, i) == LL_CPT_NUMBER;
}
static int coll_M(const pt_text *t, size_t i) {
    return t->cpt[i] >= 0x80 && coll_cat(t, i) == LL_CPT_MARK;
}
// The reference's ASCII stand-ins for \p{P} and \p{S} ('~' is in neither).
static int coll_P(const pt_text *t, size_t i) {
    uint32_t c = t->cpt[i];
    if (c >= 0x80) return coll_cat(t, i) == LL_CPT_PUNCTUATION;
    return c && strchr("!\"#%&'()*,-./:;?@[\\]_{}", (int)c) != NULL;
}
static int coll_S(const pt_text *t, size_t i) {
    uint32_t c = t->cpt[i];
    if (c >= 0x80) return coll_cat(t, i) == LL_CPT_SYMBOL;
    return c && strchr("$+<=>^`|", (int)c) != NULL;
}

// Flags as the reference's hand-written gpt2/llama3 splitters see them: 0 outside the piece.
static uint16_t fl(const pt_text *t, size_t i, size_t end) { return i < end ? t->flags[i] : 0; }
static uint32_t cp(const pt_text *t, size_t i, size_t end) { return i < end ? t->cpt[i] : 0xFFFFFFFFu; }
#define F_L(f) ((f) & LL_CPT_LETTER)
#define F_N(f) ((f) & LL_CPT_NUMBER)
#define F_WS(f) ((f) & LL_CPT_WHITESPACE)

static uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's 't 're 've 'm 'll 'd at pos (case-insensitive when ci): the match length, or 0.
static size_t contraction(const pt_text *t, size_t pos, size_t end, int ci) {
    if (t->cpt[pos] != '\'' || pos + 1 >= end) return 0;
    uint32_t a = t->cpt[pos + 1];
    if (ci) a = ascii_lower(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= end) return 0;
    uint32_t b = t->cpt[pos + 2];
    if (ci) b = ascii_lower(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

// Whitespace tail shared by the gpt2/llama3 families: \s+(?!\S)|\s+ (and, with crlf,
// \s*[\r\n]+ first). Returns the match length at pos, at least 1.
static size_t ws_tail(const pt_text *t, size_t pos, size_t end, int crlf) {
    size_t n = 0, last_nl = 0;
    while (pos + n < end && F_WS(t->flags[pos + n])) {
        uint32_t c = t->cpt[pos + n];
        if (c == '\r' || c == '\n') last_nl = n + 1;
        n++;
    }
    if (crlf && last_nl) return last_nl;
    if (n > 1 && pos + n < end) return n - 1; // leave one space to start the next word
    return n ? n : 1;
}

// ---- the matchers -------------------------------------------------------------------------

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
static size_t m_gpt2(const pt_text *t, size_t pos, size_t end) {
    size_t n = contraction(t, pos, end, 0);
    if (n) return n;
    const int sp = t->cpt[pos] == ' ';
    uint16_t f = sp ? fl(t, pos + 1, end) : t->flags[pos];
    size_t p = pos + sp;
    if (F_L(f)) {
        while (F_L(fl(t, p, end))) p++;
        return p - pos;
    }
    if (F_N(f)) {
        while (F_N(fl(t, p, end))) p++;
        return p - pos;
    }
    if (f && !(F_WS(f) || F_L(f) || F_N(f))) {
        for (uint16_t g; (g = fl(t, p, end)) && !(F_WS(g) || F_L(g) || F_N(g));) p++;
        return p - pos;
    }
    return ws_tail(t, pos, end, 0);
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
static size_t llama3_like(const pt_text *t, size_t pos, size_t end, size_t max_digits) {
    size_t n = contraction(t, pos, end, 1);
    if (n) return n;
    const uint32_t c = t->cpt[pos];
    const uint16_t f = t->flags[pos];
    if (!(c == '\r' || c == '\n' || F_N(f)) && (F_L(f) || F_L(fl(t, pos + 1, end)))) {
        size_t p = pos + 1;
        while (F_L(fl(t, p, end))) p++;
        return p - pos;
    }
    if (F_N(f)) {
        size_t p = pos;
        while (p - pos < max_digits && F_N(fl(t, p, end))) p++;
        return p - pos;
    }
    const int sp = c == ' ';
    uint16_t f2 = sp ? fl(t, pos + 1, end) : f;
    if (!(F_WS(f2) || F_L(f2) || F_N(f2))) {
        size_t p = pos + sp;
        for (uint16_t g; (g = fl(t, p, end)) && !(F_WS(g) || F_L(g) || F_N(g));) p++;
        while (cp(t, p, end) == '\r' || cp(t, p, end) == '\n') p++;
        return p - pos;
    }
    return ws_tail(t, pos, end, 1);
}
static size_t m_llama3(const pt_text *t, size_t pos, size_t end) { return llama3_like(t, pos, end, 3); }
static size_t m_qwen2(const pt_text *t, size_t pos, size_t end) { return llama3_like(t, pos, end, 1); }

// A run of code points of one class, from pos.
#define RUN_MATCHER(name, cond)                                             \
    static size_t name(const pt_text *t, size_t pos, size_t end) {          \
        size_t p = pos;                                                     \
        while (p < end && (cond)) p++;                                      \
        return p - pos;                                                     \
    }

// [\p{P}\$\+<=>\^~\|]+ and the same with ` (falcon)
static int punct_ext(const pt_text *t, size_t i) {
    uint32_t c = t->cpt[i];
    return coll_P(t, i) || (c < 0x80 && c && strchr("$+<=>^~|", (int)c));
}
RUN_MATCHER(m_punct_default, punct_ext(t, p))
RUN_MATCHER(m_punct_falcon, punct_ext(t, p) || t->cpt[p] == '`')
RUN_MATCHER(m_numbers, coll_N(t, p))                 // \p{N}+

static size_t m_number(const pt_text *t, size_t pos, size_t end) { return coll_N(t, pos) ? 1 : 0; } // \p{N}

static size_t m_three_digits(const pt_text *t, size_t pos, size_t end) { // [0-9][0-9][0-9]
    if (pos + 3 > end) return 0;
    return ascii_digit(t->cpt[pos]) && ascii_digit(t->cpt[pos + 1]) && ascii_digit(t->cpt[pos + 2]) ? 3 : 0;
}

static size_t m_crlf(const pt_text *t, size_t pos, size_t end) { // [\r\n]
    return t->cpt[pos] == '\r' || t->cpt[pos] == '\n';
}

// \s?X+ for a class X that never contains whitespace.
#define WS_OPT_RUN_MATCHER(name, X)                                         \
    static size_t name(const pt_text *t, size_t pos, size_t end) {          \
        size_t p = pos;                                                     \
        if (is_ws(t, p) && p + 1 < end && X(t, p + 1)) p++;                 \
        if (!X(t, p)) return 0;                                             \
        while (p < end && X(t, p)) p++;                                     \
        return p - pos;                                                     \
    }

// deepseek-llm's explicit letter ranges (on code points).
static const uint32_t ds_letters[][2] = {
    {'A', 'Z'}, {'a', 'z'}, {0xB5, 0xB5}, {0xC0, 0xD6}, {0xD8, 0xF6}, {0xF8, 0x1BA}, {0x1BC, 0x1BF},
    {0x1C4, 0x293}, {0x295, 0x2AF}, {0x370, 0x373}, {0x376, 0x377}, {0x37B, 0x37D}, {0x37F, 0x37F},
    {0x386, 0x386}, {0x388, 0x38A}, {0x38C, 0x38C}, {0x38E, 0x3A1}, {0x3A3, 0x3F5}, {0x3F7, 0x481},
    {0x48A, 0x52F}, {0x531, 0x556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A},
    {0x1E00, 0x1F15}, {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57},
    {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B}, {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4},
    {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4}, {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC}, {0x2102, 0x2102},
    {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124},
    {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139},
    {0x213C, 0x213F}, {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE}, {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B},
    {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E}, {0xAB70, 0xABBF}, {0xFB00, 0xFB06},
    {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F}, {0x104B0, 0x104D3},
    {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
    {0x1E900, 0x1E943},
};
static const uint32_t ds_punct[][2] = {
    {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002},
};
static const uint32_t cjk[][2] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
static const uint32_t ds3_cjk[][2] = {{0x4E00, 0x9FA5}, {0x3040, 0x309F}, {0x30A0, 0x30FF}};

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c) {
    for (size_t i = 0; i < n; i++)
        if (c >= r[i][0] && c <= r[i][1]) return 1;
    return 0;
}
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

// Classes on code points: non-ASCII whitespace was replaced by \v before matching.
static uint32_t wcp(const pt_text *t, size_t i) {
    return (t->cpt[i] >= 0x80 && (t->flags[i] & LL_CPT_WHITESPACE)) ? 0x0B : t->cpt[i];
}
static int ds_letter(const pt_text *t, size_t i) { return in_ranges(ds_letters, N_OF(ds_letters), wcp(t, i)); }
static int ds_punc(const pt_text *t, size_t i) { return in_ranges(ds_punct, N_OF(ds_punct), wcp(t, i)); }
static int is_cjk(const pt_text *t, size_t i) { return in_ranges(cjk, N_OF(cjk), wcp(t, i)); }
static int is_ds3_cjk(const pt_text *t, size_t i) { return in_ranges(ds3_cjk, N_OF(ds3_cjk), wcp(t, i)); }

WS_OPT_RUN_MATCHER(m_ds_letters, ds_letter) // \s?[A-Za-zµÀ-Ö...]+
WS_OPT_RUN_MATCHER(m_ds_punct, ds_punc)     // \s?[!-/:-~！-／：-～‘-‟　-。]+
WS_OPT_RUN_MATCHER(m_ws_letters, coll_L)    // \s?\p{L}+
WS_OPT_RUN_MATCHER(m_ws_punct, coll_P)      // \s?\p{P}+
RUN_MATCHER(m_cjk, is_cjk(t, p))            // [一-龥ࠀ-一가-퟿]+
RUN_MATCHER(m_ds3_cjk, is_ds3_cjk(t, p))    // [一-龥぀-ゟ゠-ヿ]+

static size_t m_numbers3(const pt_text *t, size_t pos, size_t end) { // \p{N}{1,3}
    size_t p = pos;
    while (p < end && p - pos < 3 && coll_N(t, p)) p++;
    return p - pos;
}

// deepseek-v3: [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
//  ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
static int coll_LM(const pt_text *t, size_t i) { return coll_L(t, i) || coll_M(t, i); }
static int coll_PS(const pt_text *t, size_t i) { return coll_P(t, i) || coll_S(t, i); }
static size_t m_deepseek3(const pt_text *t, size_t pos, size_t end) {
    const uint32_t c = t->cpt[pos];
    size_t p;
    if (c >= 0x21 && c <= 0x7E && !ascii_alpha(c) && !ascii_digit(c) && pos + 1 < end &&
        ascii_alpha(t->cpt[pos + 1])) {
        for (p = pos + 1; p < end && t->cpt[p] < 0x80 && ascii_alpha(t->cpt[p]); p++) {}
        return p - pos;
    }
    int opt = c != '\r' && c != '\n' && !coll_L(t, pos) && !coll_PS(t, pos);
    if ((opt && pos + 1 < end && coll_LM(t, pos + 1)) || coll_LM(t, pos)) {
        for (p = pos + 1; p < end && coll_LM(t, p); p++) {}
        return p - pos;
    }
    p = pos + (c == ' ' && pos + 1 < end && coll_PS(t, pos + 1));
    if (coll_PS(t, p)) {
        while (p < end && coll_PS(t, p)) p++;
        while (p < end && (t->cpt[p] == '\r' || t->cpt[p] == '\n')) p++;
        return p - pos;
    }
    if (!is_ws(t, pos)) return 0;
    size_t n = 0, last_nl = 0;
    while (pos + n < end && is_ws(t, pos + n)) {
        if (t->cpt[pos + n] == '\r' || t->cpt[pos + n] == '\n') last_nl = n + 1;
        n++;
    }
    if (last_nl) return last_nl;
    if (n > 1 && pos + n < end) return n - 1;
    return n;
}

// tekken (Mistral Nemo), in the reference's lookahead form:
// [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|
// [^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}|
//  ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// A letter is "upper" unless it is a-z and "lower" unless it is A-Z: non-ASCII letters are both.
static int tk_up(const pt_text *t, size_t i) { return coll_L(t, i) && !(t->cpt[i] >= 'a' && t->cpt[i] <= 'z'); }
static int tk_lo(const pt_text *t, size_t i) { return coll_L(t, i) && !(t->cpt[i] >= 'A' && t->cpt[i] <= 'Z'); }
static size_t tk_lower_run(const pt_text *t, size_t p, size_t end) {
    while (p < end && tk_lo(t, p)) p++;
    return p;
}
// The letter alternatives from q: upper* lower+ (backtracking into the uppers for a letter that
// is also lower), else upper+ lower*. Returns the end of the match, or 0.
static size_t tk_letters(const pt_text *t, size_t q, size_t end) {
    size_t k = q;
    while (k < end && tk_up(t, k)) k++;
    if (k < end && tk_lo(t, k)) return tk_lower_run(t, k, end);
    for (size_t j = k; j > q; j--)
        if (tk_lo(t, j - 1)) return tk_lower_run(t, j - 1, end);
    return k > q ? tk_lower_run(t, k, end) : 0;
}
static size_t m_tekken(const pt_text *t, size_t pos, size_t end) {
    const uint32_t c = t->cpt[pos];
    const int opt = c != '\r' && c != '\n' && !coll_L(t, pos) && !coll_N(t, pos);
    const size_t q = pos + (size_t)opt;
    size_t e = q < end ? tk_letters(t, q, end) : 0;
    if (e) return e - pos;
    if (coll_N(t, pos)) return 1;
#define TK_OTHER(i) (!is_ws(t, i) && !coll_L(t, i) && !coll_N(t, i))
    size_t p = pos + (c == ' ' && pos + 1 < end && TK_OTHER(pos + 1));
    if (TK_OTHER(p)) {
        while (p < end && TK_OTHER(p)) p++;
        while (p < end && (t->cpt[p] == '\r' || t->cpt[p] == '\n' || t->cpt[p] == '/')) p++;
        return p - pos;
    }
#undef TK_OTHER
    size_t n = 0, last_nl = 0;
    while (pos + n < end && is_ws(t, pos + n)) {
        if (t->cpt[pos + n] == '\r' || t->cpt[pos + n] == '\n') last_nl = n + 1;
        n++;
    }
    if (last_nl) return last_nl;
    if (n > 1 && pos + n < end) return n - 1;
    return n;
}

//  ?[^(\s|.,!?…。，、।۔،)]+
static int poro_class(const pt_text *t, size_t i) {
    uint32_t c = wcp(t, i);
    if (c < 0x80) return !ascii_space(c) && !strchr("(|.,!?)", (int)c);
    switch (c) {
    case 0x2026: case 0x3002: case 0xFF0C: case 0x3001: case 0x0964: case 0x06D4: case 0x060C:
        return 0;
    default:
        return 1;
    }
}
static size_t m_poro(const pt_text *t, size_t pos, size_t end) {
    size_t p = pos + (t->cpt[pos] == ' ' && pos + 1 < end && poro_class(t, pos + 1));
    if (!poro_class(t, p)) return 0;
    while (p < end && poro_class(t, p)) p++;
    return p - pos;
}

// ---- pipelines ----------------------------------------------------------------------------

typedef struct {
    size_t *len;
    size_t n, cap;
} pt_pieces;

static bool push(pt_pieces *o, size_t len) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        size_t *p = realloc(o->len, cap * sizeof *p);
        if (!p) return false;
        o->len = p;
        o->cap = cap;
    }
    o->len[o->n++] = len;
    return true;
}

// Leftmost-first search over [start, end): matches and the text between them become pieces.
static bool split_search(const pt_text *t, size_t start, size_t end, pt_matcher m, pt_pieces *o) {
    size_t gap = start;
    for (size_t p = start; p < end;) {
        size_t n = m(t, p, end);
        if (!n) {
            p++;
            continue;
        }
        if (p > gap && !push(o, p - gap)) return false;
        if (!push(o, n)) return false;
        p += n;
        gap = p;
    }
    return end > gap ? push(o, end - gap) : true;
}

// \s+$ : only the trailing whitespace of a piece can match.
static bool split_trailing_ws(const pt_text *t, size_t start, size_t end, pt_pieces *o) {
    size_t q = end;
    while (q > start && is_ws(t, q - 1)) q--;
    if (q > start && !push(o, q - start)) return false;
    return q < end ? push(o, end - q) : true;
}

// Marks the \s+$ stage in a pipeline (handled by split_trailing_ws, never called).
static size_t m_trailing_ws(const pt_text *t, size_t pos, size_t end) { return 0; }

static const pt_matcher *stages_for(ll_pre_type type) {
    static const pt_matcher s_default[] = {m_punct_default, m_gpt2, m_numbers, m_three_digits, NULL};
    static const pt_matcher s_llama3[] = {m_llama3, NULL};
    static const pt_matcher s_qwen2[] = {m_qwen2, NULL};
    static const pt_matcher s_gpt2[] = {m_gpt2, NULL};
    static const pt_matcher s_starcoder[] = {m_number, m_gpt2, NULL};
    static const pt_matcher s_falcon[] = {m_punct_falcon, m_gpt2, m_three_digits, NULL};
    static const pt_matcher s_ds_llm[] = {m_crlf, m_ds_letters, m_ds_punct, m_trailing_ws, m_cjk, m_numbers, NULL};
    static const pt_matcher s_ds_coder[] = {m_crlf, m_ws_letters, m_ws_punct, m_cjk, m_number, NULL};
    static const pt_matcher s_ds3[] = {m_numbers3, m_ds3_cjk, m_deepseek3, NULL};
    static const pt_matcher s_poro[] = {m_poro, NULL};
    static const pt_matcher s_viking[] = {m_poro, m_number, NULL};
    static const pt_matcher s_tekken[] = {m_tekken, NULL};
    switch (type) {
    case LL_PRE_LLAMA3: return s_llama3;
    case LL_PRE_QWEN2: return s_qwen2;
    case LL_PRE_GPT2: return s_gpt2;
    case LL_PRE_STARCODER: return s_starcoder;
    case LL_PRE_FALCON: return s_falcon;
    case LL_PRE_DEEPSEEK_LLM: return s_ds_llm;
    case LL_PRE_DEEPSEEK_CODER: return s_ds_coder;
    case LL_PRE_DEEPSEEK3: return s_ds3;
    case LL_PRE_PORO: return s_poro;
    case LL_PRE_VIKING: return s_viking;
    case LL_PRE_TEKKEN: return s_tekken;
    case LL_PRE_DEFAULT: default: return s_default;
    }
}

static bool split(ll_pre_type type, const uint32_t *cpts, const uint16_t *flags, size_t n,
                  pt_words *out) {
    pt_text t = {cpts, flags};
    pt_pieces cur = {0}, next = {0};
    if (n && !push(&cur, n)) return false;
    const pt_matcher *st = stages_for(type);
    for (size_t s = 0; st[s]; s++) {
        next.n = 0;
        size_t start = 0;
        for (size_t i = 0; i < cur.n; i++) {
            size_t end = start + cur.len[i];
            bool ok = st[s] == m_trailing_ws ? split_trailing_ws(&t, start, end, &next)
                                           : split_search(&t, start, end, st[s], &next);
            if (!ok) {
                free(cur.len);
                free(next.len);
                return false;
            }
            start = end;
        }
        pt_pieces tmp = cur;
        cur = next;
        next = tmp;
    }
    free(next.len);
    out->len = cur.len;
    out->n = cur.n;
    out->cap = cur.cap;
    return true;
}

static const struct {
    const char *name;
    ll_pre_type type;
    bool ignore_merges; // whole words that are tokens skip the merges
} pre_names[] = {
    {"default", LL_PRE_DEFAULT, false},
    {"llama3", LL_PRE_LLAMA3, true}, {"llama-v3", LL_PRE_LLAMA3, true}, {"llama-bpe", LL_PRE_LLAMA3, true},
    {"falcon3", LL_PRE_LLAMA3, true}, {"dbrx", LL_PRE_LLAMA3, false}, {"smaug-bpe", LL_PRE_LLAMA3, false},
    {"chatglm-bpe", LL_PRE_LLAMA3, false},
    {"deepseek-llm", LL_PRE_DEEPSEEK_LLM, false},
    {"deepseek-coder", LL_PRE_DEEPSEEK_CODER, false},
    {"deepseek-v3", LL_PRE_DEEPSEEK3, false},
    {"falcon", LL_PRE_FALCON, false},
    {"gpt-2", LL_PRE_GPT2, false}, {"phi-2", LL_PRE_GPT2, false}, {"jina-es", LL_PRE_GPT2, false},
    {"jina-de", LL_PRE_GPT2, false}, {"gigachat", LL_PRE_GPT2, false}, {"jina-v1-en", LL_PRE_GPT2, false},
    {"jina-v2-es", LL_PRE_GPT2, false}, {"jina-v2-de", LL_PRE_GPT2, false},
    {"jina-v2-code", LL_PRE_GPT2, false}, {"roberta-bpe", LL_PRE_GPT2, false},
    {"mpt", LL_PRE_GPT2, false}, {"olmo", LL_PRE_GPT2, false}, {"jais", LL_PRE_GPT2, false},
    {"starcoder", LL_PRE_STARCODER, false}, {"refact", LL_PRE_STARCODER, false},
    {"command-r", LL_PRE_STARCODER, false}, {"smollm", LL_PRE_STARCODER, false},
    {"codeshell", LL_PRE_STARCODER, false}, {"exaone", LL_PRE_STARCODER, false},
    {"minerva-7b", LL_PRE_STARCODER, false},
    {"qwen2", LL_PRE_QWEN2, false}, {"deepseek-r1-qwen", LL_PRE_QWEN2, false},
    {"stablelm2", LL_PRE_QWEN2, false}, {"megrez", LL_PRE_QWEN2, false},
    {"poro-chat", LL_PRE_PORO, false}, {"bloom", LL_PRE_PORO, false}, {"gpt3-finnish", LL_PRE_PORO, false},
    {"viking", LL_PRE_VIKING, false},
    {"tekken", LL_PRE_TEKKEN, true},
};

int pt_find(const char *name) {
    if (!name || !*name) return 0; // no tokenizer.ggml.pre: the default splitter
    for (size_t i = 0; i < N_OF(pre_names); i++)
        if (strcmp(pre_names[i].name, name) == 0) return (int)i;
    return -1;
}

bool pt_ignore_merges(int id) {
    return id >= 0 && (size_t)id < N_OF(pre_names) && pre_names[id].ignore_merges;
}

bool pt_split(int id, const uint32_t *cpts, size_t n, pt_words *out) {
    out->len = NULL;
    out->n = out->cap = 0;
    ll_pre_type type = (id >= 0 && (size_t)id < N_OF(pre_names)) ? pre_names[id].type : LL_PRE_DEFAULT;
    uint16_t *flags = malloc((n ? n : 1) * sizeof *flags);
    if (!flags) return false;
    for (size_t i = 0; i < n; i++) flags[i] = ll_cpt_flags(cpts[i]);
    bool ok = split(type, cpts, flags, n, out);
    free(flags);
    return ok;
}
